// Small helpers shared by every page: escaping (every value from the API goes into HTML
// through esc), formatting, and the status vocabulary (colour is never the only signal).

const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(value) {
  if (value === null || value === undefined) return "";
  return String(value).replace(/[&<>"']/g, (c) => ESC[c]);
}

export const $ = (sel, root = document) => root.querySelector(sel);

// Text and icon for each integrity colour, so the board reads without colour vision too.
export const COLOURS = {
  red: { icon: "✖", label: "Red" },
  amber: { icon: "⚠", label: "Amber" },
  green: { icon: "✔", label: "Green" },
  unassessed: { icon: "◌", label: "Not assessed" },
  none: { icon: "?", label: "No status" },
};

// What the board shows for a well: its colour, or "not assessed" while data a full
// assessment needs is missing (an envelope without elements, an annulus without MAASP),
// since such a colour is not a verdict and a green one would read as "all is well".
export function displayColour(colour, assessed) {
  if (assessed === false) return "unassessed";
  return colour || "none";
}

export function colourBadge(colour) {
  const key = colour || "none";
  const c = COLOURS[key] || COLOURS.none;
  return `<span class="badge colour-${key}"><span aria-hidden="true">${c.icon}</span> ${c.label}</span>`;
}

export function pct(fraction) {
  if (fraction === null || fraction === undefined) return "–";
  return `${(fraction * 100).toFixed(0)} %`;
}

export function num(value, digits = 1) {
  if (value === null || value === undefined) return "–";
  return Number(value).toFixed(digits);
}

export function when(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return esc(ts);
  return d.toISOString().replace("T", " ").slice(0, 19) + "Z";
}

export function ago(ts) {
  const s = (Date.now() - new Date(ts).getTime()) / 1000;
  if (s < 90) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function isOverdue(task) {
  return Boolean(task.due_date) && new Date(task.due_date).getTime() < Date.now();
}

export const PRIORITY_RANK = { critical: 0, high: 1, normal: 2, low: 3 };
export const TASK_STATUSES = ["open", "in_progress", "done", "cancelled"];

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

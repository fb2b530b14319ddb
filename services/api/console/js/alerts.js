// The live alert list: newest first, one entry per alert (event_id), history from
// GET /alerts at start and live ones from the stream. Engineers acknowledge from the list.

import { ApiError, get, post } from "./api.js";
import { wellName } from "./fleet.js";
import { $, esc, when } from "./util.js";

const SEVERITY_ICON = { critical: "✖", warning: "⚠", info: "ℹ" };

const byEventId = new Map(); // event_id -> alert (record fields once known)
const order = []; // event ids, oldest first (new ones are pushed, so newest is last)
let canAck = false;
// Entries in the page at once: the newest; older ones on request (laying out 10,000 took
// seconds, measured in tests/browser).
const PAGE_ALERTS = 200;
let shown = PAGE_ALERTS;
let onCritical = () => {};

export function configure({ engineer, critical }) {
  canAck = engineer;
  onCritical = critical;
}

export function reset() {
  shown = PAGE_ALERTS;
  byEventId.clear();
  order.length = 0;
  const list = $("#alert-list");
  if (list) list.textContent = "";
}

function normalise(a) {
  // A stream alert and a history record share kind, severity, well, annulus, ts, message;
  // the record adds its id and acknowledgement, the stream its numbers at the top level.
  const p = a.payload || a;
  return {
    event_id: a.event_id,
    id: a.id ?? null,
    kind: a.kind,
    severity: a.severity,
    well_id: a.well_id,
    annulus_id: a.annulus_id ?? null,
    ts: a.ts,
    tms: Date.parse(a.ts) || 0,
    message: a.message,
    pressure_bar: p.pressure_bar ?? null,
    maasp_bar: p.maasp_bar ?? null,
    acknowledged_at: a.acknowledged_at ?? null,
  };
}

export function rowHtml(a) {
  const sev = ["critical", "warning", "info"].includes(a.severity) ? a.severity : "info";
  const acked = a.acknowledged_at
    ? `<span class="acked">acknowledged ${esc(when(a.acknowledged_at))}</span>`
    : canAck
      ? `<button type="button" class="ack" data-ack="${esc(a.event_id)}">Acknowledge</button>`
      : "";
  const annulus = a.annulus_id
    ? ` · <a href="#/wells/${esc(a.well_id)}?annulus=${esc(a.annulus_id)}">annulus ${esc(a.annulus_id)}</a>`
    : "";
  return (
    `<li class="alert sev-${sev}${a.acknowledged_at ? " is-acked" : ""}" data-event="${esc(a.event_id)}">` +
    `<div class="alert-head"><span class="sev"><span aria-hidden="true">${SEVERITY_ICON[sev]}</span> ${sev}</span>` +
    ` <span class="kind">${esc(a.kind)}</span> <time>${esc(when(a.ts))}</time></div>` +
    `<div class="alert-msg">${esc(a.message)}</div>` +
    `<div class="alert-links"><a href="#/wells/${esc(a.well_id)}">${esc(wellName(a.well_id))}</a>${annulus} ${acked}</div>` +
    "</li>"
  );
}

function updateCount() {
  $("#alert-count").textContent = `(${order.length})`;
  const list = $("#alert-list");
  const more = $("#alert-more");
  const inPage = list.children.length;
  more.hidden = inPage >= order.length;
  more.textContent = `${order.length - inPage} older alerts: show more`;
}

// Renders the whole list at once: one innerHTML of escaped strings, newest first.
export function renderAll() {
  const n = Math.min(order.length, shown);
  const parts = new Array(n);
  for (let j = 0; j < n; j++) parts[j] = rowHtml(byEventId.get(order[order.length - 1 - j]));
  $("#alert-list").innerHTML = parts.join("");
  updateCount();
}

// Merges these alerts (history records, any order) into the list, newest first by ts; an
// alert already shown keeps its place and gains the record's id and acknowledgement.
export function load(alerts) {
  for (const raw of alerts) {
    const a = normalise(raw);
    const known = byEventId.get(a.event_id);
    if (!known) order.push(a.event_id);
    byEventId.set(a.event_id, known ? { ...known, id: a.id, acknowledged_at: a.acknowledged_at } : a);
  }
  order.sort((x, y) => {
    return byEventId.get(x).tms - byEventId.get(y).tms;
  });
  renderAll();
}

// One alert from the stream: at the top of the list (or updated in place when replayed).
export function add(raw) {
  const a = normalise(raw);
  const list = $("#alert-list");
  const known = byEventId.get(a.event_id);
  if (known) {
    a.id = known.id;
    a.acknowledged_at = known.acknowledged_at;
    byEventId.set(a.event_id, a);
    const li = list.querySelector(`li[data-event="${CSS.escape(a.event_id)}"]`);
    if (li) li.outerHTML = rowHtml(a);
    return a;
  }
  byEventId.set(a.event_id, a);
  order.push(a.event_id);
  list.insertAdjacentHTML("afterbegin", rowHtml(a));
  if (list.children.length > shown) list.lastElementChild.remove();
  updateCount();
  if (a.severity === "critical" && !a.acknowledged_at) onCritical(a);
  return a;
}

export function get_(eventId) {
  return byEventId.get(eventId);
}

async function recordId(a) {
  // A live alert has no record id until the API's history consumer has stored it (moments
  // after it is streamed): look it up by its event id, waiting a little if needed.
  if (a.id) return a.id;
  for (let attempt = 0; attempt < 10; attempt++) {
    const rows = await get("/alerts", { well_id: a.well_id, kind: a.kind, limit: 100 });
    const found = rows.find((r) => r.event_id === a.event_id);
    if (found) return found.id;
    await new Promise((resolve) => setTimeout(resolve, 300 * (attempt + 1)));
  }
  throw new ApiError(404, "this alert is not in the alert history yet: try again in a moment");
}

export async function acknowledge(eventId) {
  const a = byEventId.get(eventId);
  if (!a) return null;
  const id = await recordId(a);
  const rec = await post(`/alerts/${id}/ack`);
  a.id = rec.id;
  a.acknowledged_at = rec.acknowledged_at;
  const li = $("#alert-list").querySelector(`li[data-event="${CSS.escape(eventId)}"]`);
  if (li) li.outerHTML = rowHtml(a);
  return a;
}

export function install(showError) {
  $("#alert-more").addEventListener("click", () => {
    shown = $("#alert-list").children.length + PAGE_ALERTS;
    renderAll();
  });
  $("#alert-list").addEventListener("click", async (e) => {
    const button = e.target.closest("button[data-ack]");
    if (!button) return;
    button.disabled = true;
    button.textContent = "Acknowledging…";
    try {
      await acknowledge(button.dataset.ack);
    } catch (err) {
      button.disabled = false;
      button.textContent = "Acknowledge";
      showError(`Could not acknowledge: ${err.message}`);
    }
  });
}

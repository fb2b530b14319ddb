// A pressure trend as SVG, drawn by hand (no chart library to ship or fetch): raw points as
// a line, or min/max buckets as a band with the average as a line; the MAASP line, the
// warning band (warning threshold to MAASP) and a marker on every point over MAASP.

import { esc } from "./util.js";

const W = 760;
const H = 240;
const PAD = { l: 48, r: 12, t: 12, b: 28 };
const MAX_MARKERS = 200;

function ticks(lo, hi, n) {
  const step = (hi - lo) / n;
  return Array.from({ length: n + 1 }, (_, i) => lo + i * step);
}

function timeLabel(ms, spanMs) {
  const iso = new Date(ms).toISOString();
  return spanMs > 2 * 86400000 ? iso.slice(5, 10) + " " + iso.slice(11, 13) + "h" : iso.slice(11, 16);
}

// series: {from, to (Date), points: [{t, v}] | null, buckets: [{t, min, max, avg}] | null,
//          maasp, warning (fraction), exceeded (fraction)}
export function trendSvg(series) {
  const from = series.from.getTime();
  const to = series.to.getTime();
  const values = [];
  for (const p of series.points || []) values.push(p.v);
  for (const b of series.buckets || []) values.push(b.max);
  const maasp = series.maasp;
  let top = Math.max(1, ...values);
  if (maasp) top = Math.max(top, maasp * 1.15);
  top *= 1.05;
  const x = (t) => PAD.l + ((t - from) / (to - from)) * (W - PAD.l - PAD.r);
  const y = (v) => H - PAD.b - (v / top) * (H - PAD.t - PAD.b);
  const out = [
    `<svg class="trend" viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(series.label || "pressure trend")}">`,
  ];
  for (const v of ticks(0, top, 4)) {
    out.push(`<line class="grid" x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(v)}" y2="${y(v)}"/>`);
    out.push(`<text class="axis" x="${PAD.l - 4}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>`);
  }
  for (const t of ticks(from, to, 4)) {
    out.push(`<text class="axis" x="${x(t)}" y="${H - 8}" text-anchor="middle">${timeLabel(t, to - from)}</text>`);
  }
  if (maasp) {
    const warn = maasp * (series.warning ?? 0.8);
    const lim = maasp * (series.exceeded ?? 1.0);
    out.push(
      `<rect class="warning-band" x="${PAD.l}" width="${W - PAD.l - PAD.r}" y="${y(lim)}" height="${Math.max(0, y(warn) - y(lim))}"><title>warning band ${warn.toFixed(1)}–${lim.toFixed(1)} bar</title></rect>`,
    );
    out.push(`<line class="maasp-line" x1="${PAD.l}" x2="${W - PAD.r}" y1="${y(maasp)}" y2="${y(maasp)}"/>`);
    out.push(`<text class="maasp-label" x="${W - PAD.r - 4}" y="${y(maasp) - 4}" text-anchor="end">MAASP ${maasp.toFixed(1)} bar</text>`);
  }
  const limit = maasp ? maasp * (series.exceeded ?? 1.0) : null;
  const over = [];
  if (series.points && series.points.length) {
    const pts = series.points.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(" ");
    out.push(`<polyline class="series" points="${pts}"/>`);
    if (limit !== null) for (const p of series.points) if (p.v >= limit) over.push([p.t, p.v]);
  }
  if (series.buckets && series.buckets.length) {
    const b = series.buckets;
    const upper = b.map((k) => `${x(k.t).toFixed(1)},${y(k.max).toFixed(1)}`);
    const lower = b.map((k) => `${x(k.t).toFixed(1)},${y(k.min).toFixed(1)}`).reverse();
    out.push(`<polygon class="minmax" points="${upper.concat(lower).join(" ")}"/>`);
    out.push(`<polyline class="series" points="${b.map((k) => `${x(k.t).toFixed(1)},${y(k.avg).toFixed(1)}`).join(" ")}"/>`);
    if (limit !== null) for (const k of b) if (k.max >= limit) over.push([k.t, k.max]);
  }
  const step = Math.max(1, Math.ceil(over.length / MAX_MARKERS));
  for (let i = 0; i < over.length; i += step) {
    const [t, v] = over[i];
    out.push(`<circle class="exceedance" cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="3.5"><title>${v.toFixed(1)} bar over MAASP</title></circle>`);
  }
  if (!values.length) {
    out.push(`<text class="axis" x="${W / 2}" y="${H / 2}" text-anchor="middle">no readings in this range</text>`);
  }
  out.push("</svg>");
  return out.join("");
}

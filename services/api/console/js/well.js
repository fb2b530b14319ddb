// The well page (#/wells/{id}): why a well has its colour. Architecture, annuli with their
// pressure trend against MAASP, MAASP history, barriers, integrity timeline, tasks.

import { get, patch } from "./api.js";
import { trendSvg } from "./chart.js";
import { $, colourBadge, displayColour, esc, isOverdue, num, pct, when } from "./util.js";
import { taskStatusControl } from "./tasks.js";

// Range buttons: raw readings for the short one, min/max/avg buckets (computed in SQL) for
// the long ones, a few hundred points each.
export const RANGES = {
  "1h": { ms: 3600e3, resolution: "raw" },
  "24h": { ms: 86400e3, resolution: "5m" },
  "7d": { ms: 7 * 86400e3, resolution: "1h" },
  "30d": { ms: 30 * 86400e3, resolution: "2h" },
};
const FALLBACK_RESOLUTION = "10s"; // 1 h of raw readings over the raw limit

const ELEMENT_STATUS_ICON = { ok: "✔", degraded: "⚠", failed: "✖", unknown: "?" };
let current = null; // {wellId, root, engineer}

function elementBadge(status) {
  return `<span class="badge el-${esc(status)}"><span aria-hidden="true">${ELEMENT_STATUS_ICON[status] || "?"}</span> ${esc(status)}</span>`;
}

function schematicSvg(strings, elements) {
  // A sketch, not a drawing to scale in width: each string a pair of walls down to its
  // shoe, wider strings further out; the barrier elements as status-coloured markers.
  const W = 300;
  const H = 360;
  const deepest = Math.max(1, ...strings.map((s) => s.bottom_md), ...elements.map((e) => e.depth_md || 0));
  const y = (md) => 20 + (md / deepest) * (H - 40);
  const sorted = [...strings].sort((a, b) => b.outer_diameter_in - a.outer_diameter_in);
  const maxOd = Math.max(1, ...sorted.map((s) => s.outer_diameter_in));
  const cx = 110;
  const out = [`<svg class="schematic" viewBox="0 0 ${W} ${H}" role="img" aria-label="barrier schematic">`];
  for (const s of sorted) {
    const half = 12 + (s.outer_diameter_in / maxOd) * 80;
    const cls = s.kind === "tubing" ? "tubing" : "casing";
    out.push(`<line class="${cls}" x1="${cx - half}" x2="${cx - half}" y1="${y(s.top_md)}" y2="${y(s.bottom_md)}"/>`);
    out.push(`<line class="${cls}" x1="${cx + half}" x2="${cx + half}" y1="${y(s.top_md)}" y2="${y(s.bottom_md)}"/>`);
    out.push(`<title>${esc(s.name)} ${esc(s.outer_diameter_in)}" to ${esc(s.bottom_md)} m</title>`);
  }
  elements.forEach((e, i) => {
    const ey = e.depth_md !== null && e.depth_md !== undefined ? y(e.depth_md) : 24 + i * 16;
    out.push(
      `<rect class="element el-${esc(e.status)}" x="${cx - 8}" y="${ey - 5}" width="16" height="10"><title>${esc(e.name)}: ${esc(e.status)}</title></rect>`,
    );
    out.push(`<text class="element-label" x="${cx + 100}" y="${ey + 4}">${esc(e.name)} (${esc(e.envelope_type)}, ${esc(e.status)})</text>`);
    out.push(`<line class="leader" x1="${cx + 8}" x2="${cx + 96}" y1="${ey}" y2="${ey}"/>`);
  });
  out.push("</svg>");
  return out.join("");
}

function findingsHtml(findings) {
  if (!findings || !findings.length) return '<span class="muted">no findings</span>';
  return (
    "<ul class=\"findings\">" +
    findings
      .map((f) => `<li class="sev-${esc(f.severity)}"><b>${esc(f.code)}</b> ${esc(f.message || "")} <span class="muted">${esc(f.subject || "")}</span></li>`)
      .join("") +
    "</ul>"
  );
}

async function annulusTrend(annulus, config, range) {
  const r = RANGES[range];
  const to = new Date();
  // Whole-hour buckets starting on a whole UTC hour are read from the hourly roll-ups
  // (a row per hour, and kept longer than the raw readings): start on the hour.
  const hourly = /^[0-9]+h$/.test(r.resolution);
  const start = to.getTime() - r.ms;
  const from = new Date(hourly ? Math.floor(start / 3600e3) * 3600e3 : start);
  const q = { from: from.toISOString(), to: to.toISOString(), resolution: r.resolution };
  let m = await get(`/annuli/${annulus.id}/measurements`, q);
  if (m.truncated) m = await get(`/annuli/${annulus.id}/measurements`, { ...q, resolution: FALLBACK_RESOLUTION });
  const series = {
    from,
    to,
    maasp: annulus.maasp_bar,
    warning: config ? config.warning_threshold : 0.8,
    exceeded: config ? config.exceeded_threshold : 1.0,
    label: `annulus ${annulus.name} pressure, ${range}`,
    points: m.points
      ? m.points.filter((p) => p.quality !== "bad" && p.pressure_bar !== null).map((p) => ({ t: new Date(p.timestamp).getTime(), v: p.pressure_bar }))
      : null,
    buckets: m.buckets
      ? m.buckets.map((b) => ({ t: new Date(b.bucket_start).getTime(), min: b.min, max: b.max, avg: b.avg }))
      : null,
  };
  return { svg: trendSvg(series), resolution: m.resolution };
}

async function drawTrend(section, annulus, config, range) {
  const holder = section.querySelector(".trend-holder");
  for (const b of section.querySelectorAll("button[data-range]")) b.classList.toggle("active", b.dataset.range === range);
  holder.setAttribute("aria-busy", "true");
  try {
    const t = await annulusTrend(annulus, config, range);
    holder.innerHTML = t.svg;
    section.querySelector(".trend-note").textContent =
      t.resolution === "raw" ? "raw readings" : `min / max band and average per ${t.resolution}`;
  } catch (e) {
    holder.innerHTML = `<p class="message">Could not load readings: ${esc(e.message)}</p>`;
  } finally {
    holder.removeAttribute("aria-busy");
  }
}

function annulusSection(a) {
  const reading = a.latest_reading;
  return `<section class="card annulus" data-annulus="${a.id}">
    <h3>Annulus ${esc(a.name)} <span class="util level-${esc(a.level)}">${esc(a.level)} ${pct(a.utilisation)}</span></h3>
    <p>Latest: ${reading ? `${num(reading.pressure_bar)} bar at ${esc(when(reading.timestamp))} (${esc(reading.quality)})` : "no reading yet"}
      · MAASP ${a.maasp_bar === null ? "unknown" : `${num(a.maasp_bar)} bar`}
      ${a.limiting_point_name ? `· limited by <b>${esc(a.limiting_point_name)}</b>` : ""}</p>
    <div class="ranges">${Object.keys(RANGES).map((r) => `<button type="button" data-range="${r}">${r}</button>`).join("")}
      <span class="trend-note muted"></span></div>
    <div class="trend-holder"></div>
    <details class="maasp-history"><summary>MAASP history</summary><div class="maasp-body muted">loading…</div></details>
    <details class="critical-points"><summary>Critical points: why this limit</summary><div class="points-body muted">loading…</div></details>
  </section>`;
}

// Each point's allowable pressure and where it comes from: typed in by an engineer, or
// derived from the well's architecture (its formula, inputs and source, as the API keeps them).
function pointsTable(points) {
  if (!points.length) return '<p class="muted">no critical points: no MAASP</p>';
  const why = (p) => {
    const d = p.derivation;
    if (!d) return `<span class="muted">${esc(p.origin)}</span>`;
    const inputs = Object.entries(d.inputs || {})
      .map(([k, v]) => `${esc(k)} = ${esc(typeof v === "number" ? num(v) : v)}`)
      .join(", ");
    return `${esc(p.origin)}: <code>${esc(d.formula)}</code><br><span class="muted">${inputs}${d.source ? ` (${esc(d.source)})` : ""}</span>`;
  };
  return `<table><thead><tr><th>point</th><th>TVD (m)</th><th>limit (bar)</th><th>why</th></tr></thead><tbody>${points
    .map((p) => `<tr data-point="${p.id}"><td>${esc(p.label)}</td><td>${num(p.tvd_m, 0)}</td><td>${num(p.pressure_limit_bar)}</td><td>${why(p)}</td></tr>`)
    .join("")}</tbody></table>`;
}

function maaspTable(h) {
  if (!h.history.length) return '<p class="muted">no MAASP computed yet (no critical points?)</p>';
  return `<table><thead><tr><th>version</th><th>MAASP (bar)</th><th>limiting point</th><th>computed</th></tr></thead><tbody>${h.history
    .map((m) => `<tr><td>${esc(m.config_version)}</td><td>${num(m.maasp_bar)}</td><td>${esc(m.limiting_point_name || "–")}</td><td>${esc(when(m.computed_at))}</td></tr>`)
    .join("")}</tbody></table>`;
}

function tasksTable(tasks, engineer) {
  if (!tasks.length) return '<p class="muted">No open tasks.</p>';
  return `<table class="tasks"><thead><tr><th>priority</th><th>title</th><th>due</th><th>status</th></tr></thead><tbody>${tasks
    .map(
      (t) => `<tr class="${isOverdue(t) ? "is-overdue" : ""}" data-task="${t.id}"><td><span class="prio prio-${esc(t.priority)}">${esc(t.priority)}</span></td>
        <td>${esc(t.title)}<div class="muted">${esc(t.description)}</div></td>
        <td>${esc(when(t.due_date))}${isOverdue(t) ? ' <span class="overdue"><span aria-hidden="true">⚑</span> overdue</span>' : ""}</td>
        <td>${taskStatusControl(t, engineer)}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

// An engineer marks a well as being commissioned while configuring and testing it: its
// snapshots still record the truth, but it raises no colour alerts until cleared.
function commissioningHtml(w, engineer) {
  const text = w.commissioning
    ? "<b>Being commissioned</b>: this well raises no colour alerts."
    : "In service: colour changes are alerted.";
  const button = engineer
    ? ` <button type="button" id="commissioning-toggle">${w.commissioning ? "End commissioning" : "Mark as being commissioned"}</button>`
    : "";
  return `<p class="commissioning-state">${text}${button}</p>`;
}

export async function render(root, wellId, engineer, params) {
  current = { wellId, root };
  root.innerHTML = '<p class="muted">Loading the well…</p>';
  const [state, annuliCfg, envelopes, history] = await Promise.all([
    get(`/wells/${wellId}/state`),
    get(`/wells/${wellId}/annuli`, { limit: 100 }),
    get(`/wells/${wellId}/barrier-envelopes`, { limit: 100 }),
    get(`/wells/${wellId}/integrity/history`, { limit: 50 }),
  ]);
  const elementsByEnvelope = await Promise.all(
    envelopes.map((env) => get(`/barrier-envelopes/${env.id}/barrier-elements`, { limit: 500 })),
  );
  if (!current || current.root !== root || current.wellId !== wellId) return;
  const w = state.well;
  const i = state.integrity;
  const cfg = new Map(annuliCfg.map((a) => [a.id, a]));
  const allElements = [];
  envelopes.forEach((env, k) => {
    for (const e of elementsByEnvelope[k]) allElements.push({ ...e, envelope_type: env.type });
  });
  root.innerHTML = `
    <div class="page-head"><h1>${esc(w.name)}</h1>${colourBadge(i ? displayColour(i.overall_status, i.assessed) : null)}
      <span class="muted">${esc(w.field)} · ${esc(w.type)} · ${esc(w.status)} · MD ${num(w.measured_depth, 0)} m</span></div>
    ${commissioningHtml(w, engineer)}
    ${i && i.assessed === false ? `<section class="card not-assessed"><h2>Not assessed</h2>
      <p>The colour below is what the evidence so far shows, not a verdict; this well raises no colour alerts until:</p>
      <ul>${(i.assessment_gaps || []).map((g) => `<li>${esc(g)}</li>`).join("")}</ul></section>` : ""}
    ${i ? `<section class="card why"><h2>Why ${esc(i.overall_status)}</h2>
      <p>Risk <b>${esc(i.risk_category)}</b> (${esc(i.risk_score)}: probability ${esc(i.probability)} × consequence ${esc(i.consequence)}),
      primary envelope ${esc(i.primary_status)}, secondary ${esc(i.secondary_status)}${i.sap_detected ? ", <b>SAP detected</b>" : ""}, as of ${esc(when(i.created_at))}</p>
      ${findingsHtml(i.findings)}</section>` : '<section class="card"><p class="muted">No integrity snapshot yet.</p></section>'}
    <div class="two-col">
      <section class="card"><h2>Strings</h2><table><thead><tr><th>string</th><th>OD (in)</th><th>top–shoe (m MD)</th></tr></thead><tbody>
        ${state.strings.map((s) => `<tr><td>${esc(s.name)} <span class="muted">${esc(s.casing_type || s.kind)}</span></td><td>${num(s.outer_diameter_in, 3)}</td><td>${num(s.top_md, 0)}–${num(s.bottom_md, 0)}</td></tr>`).join("")}
      </tbody></table></section>
      <section class="card"><h2>Barrier schematic</h2>${schematicSvg(state.strings, allElements)}</section>
    </div>
    <h2>Annuli</h2>
    ${state.annuli.map(annulusSection).join("") || '<p class="muted">No annuli.</p>'}
    <section class="card"><h2>Barrier envelopes</h2>
      ${envelopes.map((env, k) => `<h3>${esc(env.type)}: ${esc(env.name)}${i ? ` <span class="muted">${esc(i[`${env.type}_status`] || "")}</span>` : ""}</h3>
        <table><thead><tr><th>element</th><th>type</th><th>status</th><th>last test</th><th>next test due</th></tr></thead><tbody>
        ${elementsByEnvelope[k].map((e) => `<tr class="${e.next_test_due && new Date(e.next_test_due) < new Date() ? "is-overdue" : ""}"><td>${esc(e.name)}</td><td>${esc(e.element_type)}</td><td>${elementBadge(e.status)}</td><td>${esc(when(e.last_tested_at))}</td><td>${esc(when(e.next_test_due))}</td></tr>`).join("")}
        </tbody></table>`).join("") || '<p class="muted">No barrier envelopes.</p>'}
    </section>
    <section class="card"><h2>Open tasks</h2><div id="well-tasks">${tasksTable(state.open_tasks, engineer)}</div></section>
    <section class="card"><h2>Integrity history</h2>
      <ol class="timeline">${history.map((h) => `<li class="tl-${esc(h.overall_status)}"><div>${colourBadge(h.overall_status)} <time>${esc(when(h.created_at))}</time>
        risk ${esc(h.risk_category)} (${esc(h.risk_score)}) · utilisation ${pct(h.highest_annulus_utilisation)}${h.sap_detected ? " · SAP" : ""}${h.assessed === false ? " · not assessed" : ""}</div>${findingsHtml(h.findings)}</li>`).join("") || '<li class="muted">No snapshots yet.</li>'}</ol>
    </section>`;
  root.querySelector("#commissioning-toggle")?.addEventListener("click", async (e) => {
    e.target.disabled = true;
    try {
      await patch(`/wells/${wellId}`, { commissioning: !w.commissioning });
      await render(root, wellId, engineer, params);
    } catch (err) {
      e.target.disabled = false;
      e.target.insertAdjacentText("afterend", ` Could not change: ${err.message}`);
    }
  });
  const wanted = params.get("range") in RANGES ? params.get("range") : "24h";
  for (const a of state.annuli) {
    const section = root.querySelector(`section[data-annulus="${a.id}"]`);
    section.querySelector(".ranges").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-range]");
      if (b) drawTrend(section, a, cfg.get(a.id), b.dataset.range);
    });
    drawTrend(section, a, cfg.get(a.id), wanted);
    get(`/annuli/${a.id}/maasp`, { limit: 20 })
      .then((h) => {
        section.querySelector(".maasp-body").innerHTML = maaspTable(h);
      })
      .catch((e) => {
        section.querySelector(".maasp-body").textContent = `Could not load: ${e.message}`;
      });
    get(`/annuli/${a.id}/critical-points`, { limit: 100 })
      .then((points) => {
        section.querySelector(".points-body").innerHTML = pointsTable(points);
      })
      .catch((e) => {
        section.querySelector(".points-body").textContent = `Could not load: ${e.message}`;
      });
  }
  const focus = params.get("annulus");
  if (focus) root.querySelector(`section[data-annulus="${CSS.escape(focus)}"]`)?.scrollIntoView();
}

export function leave() {
  current = null;
}

export function currentWell() {
  return current ? current.wellId : null;
}

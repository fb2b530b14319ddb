// Tasks across the fleet (#/tasks): open and in progress, by priority then due date,
// overdue marked; engineers change a task's status in place (PATCH /tasks/{id}).

import { get, patch } from "./api.js";
import { isLoaded, loadFleet, wellName } from "./fleet.js";
import { PRIORITY_RANK, TASK_STATUSES, esc, isOverdue, when } from "./util.js";

const PAGE = 500;

export function taskStatusControl(t, engineer) {
  if (!engineer) return `<span class="status status-${esc(t.status)}">${esc(t.status)}</span>`;
  const opts = TASK_STATUSES.map((s) => `<option value="${s}"${s === t.status ? " selected" : ""}>${s}</option>`).join("");
  return `<select class="task-status" data-task-id="${t.id}" aria-label="status of task ${t.id}">${opts}</select>`;
}

async function openTasks() {
  const out = [];
  for (const status of ["open", "in_progress"]) {
    for (let offset = 0; ; offset += PAGE) {
      const page = await get("/tasks", { status, limit: PAGE, offset, sort: "due_date" });
      out.push(...page);
      if (page.length < PAGE) break;
    }
  }
  return out.sort(
    (a, b) =>
      (PRIORITY_RANK[a.priority] ?? 9) - (PRIORITY_RANK[b.priority] ?? 9) ||
      (a.due_date ? new Date(a.due_date).getTime() : Infinity) - (b.due_date ? new Date(b.due_date).getTime() : Infinity) ||
      a.id - b.id,
  );
}

// Any select.task-status under root: a change PATCHes the task, and on failure puts it back.
export function wireStatusChanges(root, showError) {
  root.addEventListener("change", async (e) => {
    const sel = e.target.closest("select.task-status");
    if (!sel) return;
    const before = sel.dataset.was || [...sel.options].find((o) => o.defaultSelected)?.value;
    sel.disabled = true;
    try {
      const t = await patch(`/tasks/${sel.dataset.taskId}`, { status: sel.value });
      sel.dataset.was = t.status;
      sel.closest("tr")?.classList.toggle("is-closed", t.status === "done" || t.status === "cancelled");
    } catch (err) {
      if (before) sel.value = before;
      showError(`Could not change the task: ${err.message}`);
    } finally {
      sel.disabled = false;
    }
  });
}

export async function render(root, engineer) {
  root.innerHTML = '<p class="muted">Loading tasks…</p>';
  const [tasks] = await Promise.all([openTasks(), isLoaded() ? null : loadFleet()]);
  const overdue = tasks.filter(isOverdue).length;
  root.innerHTML = `<div class="page-head"><h1>Open tasks</h1>
      <span class="counts"><span class="count">${tasks.length} open</span>
      <span class="count overdue"><span aria-hidden="true">⚑</span> ${overdue} overdue</span></span></div>
    <table class="tasks"><thead><tr><th>priority</th><th>due</th><th>well</th><th>title</th><th>trigger</th><th>status</th></tr></thead>
    <tbody>${tasks
      .map(
        (t) => `<tr class="${isOverdue(t) ? "is-overdue" : ""}" data-task="${t.id}">
        <td><span class="prio prio-${esc(t.priority)}">${esc(t.priority)}</span></td>
        <td>${esc(when(t.due_date))}${isOverdue(t) ? ' <span class="overdue"><span aria-hidden="true">⚑</span> overdue</span>' : ""}</td>
        <td><a href="#/wells/${t.well_id}">${esc(wellName(t.well_id))}</a></td>
        <td>${esc(t.title)}</td><td>${esc(t.trigger_type)}</td><td>${taskStatusControl(t, engineer)}</td></tr>`,
      )
      .join("")}</tbody></table>
    ${tasks.length ? "" : '<p class="muted">No open tasks.</p>'}`;
}

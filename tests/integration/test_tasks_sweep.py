"""`wims sweep` against real PostgreSQL and Kafka: reminders before a barrier test falls due,
escalation when it is overdue, nothing new on a second run."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, text

from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.integration.test_tasks_worker import find_task_event
from tests.support.factories import make_barrier_element, make_well
from tests.support.stack import Stack


def sweep(stack: Stack) -> str:
    """Run the operator's command as a process with the test stack's environment."""
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "sweep"],
        env=stack.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"wims sweep failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def reminders(engine: Engine, element_id: int) -> list[Any]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                text(
                    "SELECT id, priority::text AS priority, status::text AS status, title,"
                    " description, due_date, well_id, target, auto_generated FROM task"
                    " WHERE barrier_element_id = :e AND trigger_type = 'test_due' ORDER BY id"
                ),
                {"e": element_id},
            ).all()
        )


def test_sweep_reminds_before_due_escalates_when_overdue_and_is_idempotent(
    stack: Stack, settings: Settings, db_engine: Engine
) -> None:
    now = datetime.now(UTC)
    well_id = make_well(db_engine, f"W-{uuid.uuid4().hex[:8]}")
    due_soon = make_barrier_element(
        db_engine, well_id, "SSSV-1", "sssv", "primary", next_test_due=now + timedelta(days=10)
    )
    overdue = make_barrier_element(
        db_engine,
        well_id,
        "Tree valve",
        "tree_valve",
        "secondary",
        next_test_due=now - timedelta(days=3),
    )
    # No explicit due date: last test 175 days ago + the SSSV default of 182 days = 7 days.
    from_last_test = make_barrier_element(
        db_engine,
        well_id,
        "SSSV-2",
        "sssv",
        "secondary",
        last_tested_at=now - timedelta(days=175),
    )
    far_off = make_barrier_element(
        db_engine,
        well_id,
        "WH seal",
        "wellhead_seal",
        "secondary",
        next_test_due=now + timedelta(days=60),
    )

    out = sweep(stack)
    assert "created" in out

    [soon] = reminders(db_engine, due_soon)
    assert (soon.priority, soon.status, soon.target) == ("normal", "open", f"element:{due_soon}")
    assert soon.auto_generated and soon.well_id == well_id
    assert "Barrier test due: SSSV-1" in soon.title
    assert abs((soon.due_date - (now + timedelta(days=10))).total_seconds()) < 1
    [late] = reminders(db_engine, overdue)
    assert late.priority == "high" and "overdue" in late.title
    [counted] = reminders(db_engine, from_last_test)
    assert counted.priority == "normal"
    assert abs((counted.due_date - (now + timedelta(days=7))).total_seconds()) < 1
    assert reminders(db_engine, far_off) == []
    assert f"task {soon.id}" in out and f"task {late.id}" in out

    created = find_task_event(settings, lambda e: e.task_id == soon.id and e.action == "created")
    assert created.trigger_type == "test_due" and created.priority == "normal"

    # A second sweep with nothing changed creates and changes nothing.
    again = sweep(stack)
    assert [t.id for t in reminders(db_engine, due_soon)] == [soon.id]
    assert [t.id for t in reminders(db_engine, overdue)] == [late.id]
    assert f"task {soon.id}" not in again and f"task {late.id}" not in again

    # Time passes without a test: the same open reminder is escalated, not duplicated.
    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE barrier_element SET next_test_due = :d WHERE id = :e"),
            {"d": now - timedelta(days=1), "e": due_soon},
        )
    escalated_out = sweep(stack)
    [escalated] = reminders(db_engine, due_soon)
    assert escalated.id == soon.id
    assert (escalated.priority, escalated.status) == ("high", "open")
    assert "overdue" in escalated.title and "overdue" in escalated.description
    assert f"escalated task {soon.id}" in " ".join(escalated_out.split())
    find_task_event(settings, lambda e: e.task_id == soon.id and e.action == "escalated")

    # And once the reminder is done, the next sweep opens a fresh one for the still
    # overdue test: a closed task is never reopened.
    with db_engine.begin() as conn:
        conn.execute(text("UPDATE task SET status = 'done' WHERE id = :id"), {"id": soon.id})
    sweep(stack)
    statuses = [(t.status, t.priority) for t in reminders(db_engine, due_soon)]
    assert statuses == [("done", "high"), ("open", "high")]

"""A tasks worker SIGKILLed while it consumes, then restarted: no duplicate open task and
no task missing. The events it had written but whose offsets were not yet committed are
delivered again; the database and the applied-event ledger make them no-ops."""

from __future__ import annotations

import signal
import uuid

import httpx
from sqlalchemy import Engine, text

from shared.contracts import topics
from shared.contracts.enums import AlertKind
from shared.infrastructure.settings import Settings
from tests.integration.test_tasks_worker import alert, produce, wait_for
from tests.support.factories import make_annulus, make_well
from tests.support.stack import Stack, start_service

WELLS = 20
ANNULI_PER_WELL = 10  # 200 annuli, spread over the partitions by well id


def open_exceed_tasks(engine: Engine, well_ids: list[int]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                text(
                    "SELECT count(*) FROM task WHERE well_id = ANY(:w)"
                    " AND trigger_type = 'maasp_exceed' AND status = 'open'"
                ),
                {"w": well_ids},
            ).scalar_one()
        )


def test_worker_killed_mid_batch_and_restarted_opens_no_duplicate(
    stack: Stack, settings: Settings, db_engine: Engine
) -> None:
    annuli: dict[int, list[int]] = {}
    for _ in range(WELLS):
        well_id = make_well(db_engine, f"K-{uuid.uuid4().hex[:8]}")
        annuli[well_id] = [
            make_annulus(db_engine, well_id, f"A{i}") for i in range(ANNULI_PER_WELL)
        ]
    well_ids = list(annuli)
    expected = {a for ids in annuli.values() for a in ids}

    # Small batches so the kill lands between many commits, not after one big one.
    env = {"WIMS_TASKS_BATCH_SIZE": "5"}
    worker = start_service(stack, "tasks", extra_env=env)
    worker.wait_ready(timeout_s=90)
    for well_id, ids in annuli.items():
        # Each exceedance twice, as an at-least-once producer may deliver it.
        events = [alert(AlertKind.maasp_exceeded, well_id, a, 210.0 + i) for i, a in enumerate(ids)]
        produce(settings, topics.ALERTS.name, [e for e in events for _ in range(2)], well_id)

    at_kill = wait_for(
        lambda: open_exceed_tasks(db_engine, well_ids),
        "the worker to start writing tasks",
        timeout_s=120,
    )
    worker.terminate(signal.SIGKILL)
    assert worker.proc.returncode == -signal.SIGKILL
    assert at_kill < len(expected), "the worker finished before it could be killed mid-way"

    restarted = start_service(stack, "tasks", extra_env=env)
    restarted.wait_ready(timeout_s=90)
    wait_for(
        lambda: open_exceed_tasks(db_engine, well_ids) >= len(expected),
        "every annulus's task after the restart",
        timeout_s=180,
    )
    # Events delivered again after their first application (the killed worker's uncommitted
    # offsets, or a duplicate in a later batch) were recognised by id and changed nothing.
    wait_for(lambda: _replayed(restarted.base_url) > 0, "replayed events to be recognised", 30)

    with db_engine.connect() as conn:
        duplicates = conn.execute(
            text(
                "SELECT trigger_type, target, count(*) FROM task"
                " WHERE auto_generated AND status IN ('open', 'in_progress')"
                " GROUP BY trigger_type, target HAVING count(*) > 1"
            )
        ).all()
        rows = conn.execute(
            text(
                "SELECT annulus_id FROM task WHERE well_id = ANY(:w)"
                " AND trigger_type = 'maasp_exceed'"
            ),
            {"w": well_ids},
        ).all()
    assert duplicates == []
    assert sorted(r.annulus_id for r in rows) == sorted(expected)
    restarted.terminate()


def _replayed(base_url: str) -> float:
    try:
        body = httpx.get(f"{base_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("wims_tasks_events_replayed_total{")
    )

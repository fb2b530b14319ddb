"""The tasks service's SQL: the task table as it writes it, and the daily findings sweep's
reads and its ``finding_state`` (``findings.py`` judges; every statement it runs is here).

One open auto task per (trigger, target): the partial unique index ``uq_task_open_trigger_target`` is the guarantee; this code
follows it: INSERT ... ON CONFLICT DO NOTHING on that index, and when a task is already
open, lock it (SELECT ... FOR UPDATE) and fold the new facts in with merge().
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import Row, delete, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from services.tasks import metrics
from services.tasks.core import task_event
from shared.contracts.enums import OPEN_TASK_STATUSES, TaskStatus
from shared.contracts.events import TaskEvent, derived_id
from shared.domain.task_rules import OpenTask, TaskSpec, merge
from shared.persistence.models import AnnulusMeasurement, FindingState, Task, TaskSourceEvent

log = logging.getLogger(__name__)

TASK = Task.__table__
LEDGER = TaskSourceEvent.__table__
# Must imply the predicate of uq_task_open_trigger_target for PostgreSQL to pick that
# index as the ON CONFLICT arbiter: keep it the same text as in the model.
OPEN_AUTO_TASK = text("auto_generated AND status IN ('open', 'in_progress')")

_RETURNED = (
    TASK.c.id,
    TASK.c.well_id,
    TASK.c.trigger_type,
    TASK.c.target,
    TASK.c.priority,
    TASK.c.status,
    TASK.c.due_date,
    TASK.c.title,
    TASK.c.description,
)


@dataclass(frozen=True)
class Applied:
    """What applying one TaskSpec did. action is None when the open task already said it all."""

    task_id: int
    action: str | None
    row: Row

    def event(self, event_id: UUID) -> TaskEvent:
        assert self.action is not None
        return event_from_row(self.row, self.action, event_id)


def event_from_row(row: Row, action: str, event_id: UUID) -> TaskEvent:
    return task_event(
        event_id=event_id,
        action=action,
        task_id=row.id,
        well_id=row.well_id,
        trigger_type=row.trigger_type,
        target=row.target,
        priority=row.priority,
        status=row.status,
        due_date=row.due_date,
        title=row.title,
    )


async def apply_spec(
    conn: AsyncConnection, spec: TaskSpec, source_event_id: UUID | None
) -> Applied:
    """Open the task the spec asks for, or update the one already open for its key.

    Under READ COMMITTED a concurrent insert of the same key makes our INSERT wait for it
    and then do nothing; the SELECT that follows sees the committed row. If that task was
    closed in between, the loop inserts again.
    """
    for _ in range(5):
        created = (
            await conn.execute(
                pg_insert(TASK)
                .values(
                    well_id=spec.well_id,
                    annulus_id=spec.annulus_id,
                    barrier_element_id=spec.barrier_element_id,
                    title=spec.title,
                    description=spec.description,
                    trigger_type=spec.trigger_type,
                    target=spec.target,
                    auto_generated=True,
                    priority=spec.priority,
                    status=TaskStatus.open,
                    due_date=spec.due_date,
                    source_event_id=source_event_id,
                )
                .on_conflict_do_nothing(
                    index_elements=[TASK.c.trigger_type, TASK.c.target],
                    index_where=OPEN_AUTO_TASK,
                )
                .returning(*_RETURNED)
            )
        ).first()
        if created is not None:
            return Applied(created.id, "created", created)

        existing = (
            await conn.execute(
                select(*_RETURNED)
                .where(
                    TASK.c.trigger_type == spec.trigger_type,
                    TASK.c.target == spec.target,
                    TASK.c.auto_generated.is_(True),
                    TASK.c.status.in_(OPEN_TASK_STATUSES),
                )
                .with_for_update()
            )
        ).first()
        if existing is None:
            continue  # closed between our INSERT and SELECT: open a new one
        change = merge(
            OpenTask(
                priority=existing.priority,
                due_date=existing.due_date,
                description=existing.description,
            ),
            spec,
        )
        if change is None:
            return Applied(existing.id, None, existing)
        updated = (
            await conn.execute(
                update(TASK)
                .where(TASK.c.id == existing.id)
                .values(
                    priority=change.priority,
                    due_date=change.due_date,
                    description=change.description,
                    # The title is made from the same facts as the description (a due test
                    # becomes "overdue"), so it follows the latest event too.
                    title=spec.title,
                    updated_at=text("now()"),
                )
                .returning(*_RETURNED)
            )
        ).one()
        return Applied(updated.id, "escalated" if change.escalated else "updated", updated)
    raise RuntimeError(f"task {spec.dedupe_key} kept closing under us; giving up this event")


async def remember_events(
    conn: AsyncConnection, topic: str, event_ids: Sequence[UUID]
) -> set[UUID]:
    """Record event ids as applied; returns those not seen before (the rest are replays)."""
    if not event_ids:
        return set()
    result = await conn.execute(
        pg_insert(LEDGER)
        .values([{"event_id": e, "topic": topic} for e in event_ids])
        .on_conflict_do_nothing(index_elements=[LEDGER.c.event_id])
        .returning(LEDGER.c.event_id)
    )
    return set(result.scalars())


async def forget_event(conn: AsyncConnection, event_id: UUID) -> None:
    """Take an event out of the ledger: the database refused it, so it was not applied, and
    a replay after a fix (``wims dead-letters replay``) must apply it, not skip it."""
    await conn.execute(LEDGER.delete().where(LEDGER.c.event_id == event_id))


async def note_outcome(conn: AsyncConnection, event_id: UUID, applied: Applied) -> None:
    await conn.execute(
        update(LEDGER)
        .where(LEDGER.c.event_id == event_id)
        .values(task_id=applied.task_id, action=applied.action)
    )


async def replayed_task_events(conn: AsyncConnection, event_ids: Sequence[UUID]) -> list[TaskEvent]:
    """The TaskEvents that applying these (already applied) events produced, re-made from
    the task's current state with their original event ids.

    The worker may have died after the database commit and before it sent them; sending
    again is safe because consumers deduplicate by event id.
    """
    if not event_ids:
        return []
    rows = await conn.execute(
        select(LEDGER.c.event_id, LEDGER.c.action, *_RETURNED)
        .join(TASK, TASK.c.id == LEDGER.c.task_id)
        .where(LEDGER.c.event_id.in_(event_ids), LEDGER.c.action.is_not(None))
    )
    return [event_from_row(row, row.action, task_event_id(row.event_id)) for row in rows.all()]


async def forget_events_before(conn: AsyncConnection, days: int) -> int:
    """Drop ledger entries older than ``days``: a replay that old no longer comes from a
    consumer's uncommitted offsets."""
    result = await conn.execute(
        LEDGER.delete().where(
            LEDGER.c.processed_at
            < text("now() - make_interval(days => :days)").bindparams(days=days)
        )
    )
    return int(result.rowcount or 0)


def task_event_id(source_event_id: UUID) -> UUID:
    """The TaskEvent an applied source event produced has an id derived from that event, so
    a re-send after a crash carries the same id."""
    return derived_id("task-event", source_event_id)


def count_committed(events: Sequence[TaskEvent]) -> None:
    """Count what a committed transaction did (after the commit, so a retried transaction
    is not counted twice)."""
    for e in events:
        trigger = str(e.trigger_type)
        if e.action == "created":
            metrics.TASKS_CREATED.labels(trigger).inc()
        elif e.action == "escalated":
            metrics.TASKS_ESCALATIONS.labels(trigger).inc()
        elif e.action == "updated":
            metrics.TASKS_UPDATED.labels(trigger).inc()


def log_skipped(topic: str, event_id: UUID, exc: Exception) -> None:
    # The database's own message, not the statement: parameters never reach a log.
    orig = getattr(exc, "orig", None) or exc
    log.warning("tasks: the database refused event %s from %s: %s", event_id, topic, orig)


# --------------------------------------------------------------------------- daily findings
# The findings sweep's statements (services/tasks/findings.py judges what they return). It reads
# tables other services own (docs/architecture.md, "Who writes which table") and writes
# finding_state, the findings raised and not cleared.

STATE = FindingState.__table__
# The reading's event-time column, named once so the queries follow the model.
TS = AnnulusMeasurement.__table__.c.timestamp.name
GOOD = "quality = 'good' AND pressure_bar IS NOT NULL"
RETEST_MAX_READINGS = 20_000
"""Newest readings after a test that the re-test judges (a rise is recent by nature)."""

_MONITORED = f"""
SELECT a.id AS annulus_id, a.name AS annulus_name, a.well_id, w.name AS well_name,
       w.data_stale_after_s, min(t.created_at) AS mapped_at,
       (SELECT m.{TS} FROM annulus_measurement m
         WHERE m.annulus_id = a.id AND m.{GOOD} ORDER BY m.{TS} DESC LIMIT 1) AS last_good
  FROM annulus a JOIN well w ON w.id = a.well_id JOIN scada_tag t ON t.annulus_id = a.id
 WHERE w.status <> 'abandoned'
 GROUP BY a.id, w.id
"""

_ANNULI = """
SELECT a.id AS annulus_id, a.name AS annulus_name, a.well_id, w.name AS well_name,
       a.created_at, r.config_version, r.maasp_bar
  FROM annulus a JOIN well w ON w.id = a.well_id
  LEFT JOIN LATERAL (SELECT config_version, maasp_bar FROM maasp_result
                      WHERE annulus_id = a.id ORDER BY config_version DESC LIMIT 1) r ON true
 WHERE w.status <> 'abandoned'
"""

# The last diagnostic test of each annulus: the newest bleed-down/build-up the SAP detector
# recognised (shared/domain/retest.py says why), from the alert history.
_LAST_TESTS = """
SELECT DISTINCT ON (al.annulus_id) al.annulus_id, al.well_id, a.name AS annulus_name,
       w.name AS well_name, al.payload -> 'details' ->> 'episode_start' AS episode_start
  FROM alert al JOIN annulus a ON a.id = al.annulus_id JOIN well w ON w.id = a.well_id
 WHERE al.kind = 'sap_detected' AND w.status <> 'abandoned'
 ORDER BY al.annulus_id, al.ts DESC
"""
_TEST_PRESSURE = f"""
SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY pressure_bar) FROM annulus_measurement
 WHERE annulus_id = :a AND {GOOD} AND {TS} <= :t AND {TS} > :t - make_interval(secs => :held)
"""
_AFTER_TEST = f"""
SELECT extract(epoch FROM {TS}) AS at_s, pressure_bar AS p FROM annulus_measurement
 WHERE annulus_id = :a AND {GOOD} AND {TS} > :t ORDER BY {TS} DESC LIMIT {RETEST_MAX_READINGS}
"""

_NEWEST = f"""
SELECT a.id AS annulus_id, a.name AS annulus_name, a.well_id, w.name AS well_name, n.newest
  FROM annulus a JOIN well w ON w.id = a.well_id
  JOIN LATERAL (SELECT m.{TS} AS newest FROM annulus_measurement m
                 WHERE m.annulus_id = a.id AND m.{GOOD} ORDER BY m.{TS} DESC LIMIT 1) n ON true
 WHERE w.status <> 'abandoned'
"""
_WINDOW = f"""
SELECT annulus_id, extract(epoch FROM {TS}) AS at_s, pressure_bar AS p
  FROM annulus_measurement
 WHERE annulus_id = ANY(:ids) AND {GOOD} AND {TS} >= :since ORDER BY annulus_id, {TS}
"""

_WELL_KEY_SHARE = "SELECT 1 FROM well WHERE id = :w FOR KEY SHARE"


async def monitored_annuli(conn: AsyncConnection) -> Sequence[Row]:
    """The annuli with a SCADA tag on wells not abandoned: when the first tag was mapped
    (``mapped_at``), the newest good reading (``last_good``) and the well's own staleness time."""
    return (await conn.execute(text(_MONITORED))).all()


async def annuli_latest_maasp(conn: AsyncConnection) -> Sequence[Row]:
    """Every annulus of a well not abandoned with its newest MAASP result (``config_version``
    and ``maasp_bar`` None when it has none)."""
    return (await conn.execute(text(_ANNULI))).all()


async def last_diagnostic_tests(conn: AsyncConnection) -> Sequence[Row]:
    """Each annulus' newest ``sap_detected`` alert on a well not abandoned, its
    ``episode_start`` the time of that diagnostic test."""
    return (await conn.execute(text(_LAST_TESTS))).all()


async def pressure_at_test(
    conn: AsyncConnection, annulus_id: int, test_at: datetime, held_s: float
) -> float | None:
    """The median good pressure over the ``held_s`` seconds up to ``test_at`` (None: no
    reading)."""
    params = {"a": annulus_id, "t": test_at, "held": held_s}
    return (await conn.execute(text(_TEST_PRESSURE), params)).scalar()


async def readings_after_test(
    conn: AsyncConnection, annulus_id: int, test_at: datetime
) -> Sequence[Row]:
    """The newest ``RETEST_MAX_READINGS`` good readings after ``test_at``, newest first, as
    (``at_s`` epoch seconds, ``p`` bar)."""
    params = {"a": annulus_id, "t": test_at}
    return (await conn.execute(text(_AFTER_TEST), params)).all()


async def annuli_newest_good(conn: AsyncConnection) -> Sequence[Row]:
    """Every annulus of a well not abandoned that has a good reading, with the newest one's
    time (``newest``)."""
    return (await conn.execute(text(_NEWEST))).all()


async def good_readings_since(
    conn: AsyncConnection, annulus_ids: list[int], since: datetime
) -> Sequence[Row]:
    """The good readings of these annuli from ``since`` on, by annulus and time, as
    (``annulus_id``, ``at_s`` epoch seconds, ``p`` bar)."""
    params = {"ids": annulus_ids, "since": since}
    return (await conn.execute(text(_WINDOW), params)).all()


async def finding_states(conn: AsyncConnection) -> Sequence[Row]:
    """Every finding raised and not cleared: (``kind``, ``subject``, ``episode``)."""
    return (await conn.execute(select(STATE.c.kind, STATE.c.subject, STATE.c.episode))).all()


async def delete_finding_state(conn: AsyncConnection, kind: str, subject: str) -> None:
    """Clear a finding: drop its row."""
    key = (STATE.c.kind == kind) & (STATE.c.subject == subject)
    await conn.execute(delete(STATE).where(key))


async def lock_well_key_share(conn: AsyncConnection, well_id: int) -> bool:
    """Whether the well exists; if so, it is locked FOR KEY SHARE (not deleted) until the
    transaction ends."""
    return (await conn.execute(text(_WELL_KEY_SHARE), {"w": well_id})).first() is not None


async def upsert_finding_state(
    conn: AsyncConnection,
    kind: str,
    subject: str,
    episode: str,
    raised_at: datetime,
    well_id: int,
) -> None:
    """Record a finding as raised in this episode (its row replaced if it has one)."""
    values = {"episode": episode, "raised_at": raised_at, "well_id": well_id}
    stmt = pg_insert(STATE).values(kind=kind, subject=subject, **values)
    stmt = stmt.on_conflict_do_update(index_elements=["kind", "subject"], set_=values)
    await conn.execute(stmt)

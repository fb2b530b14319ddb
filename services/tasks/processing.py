"""One batch of source events -> task rows in one transaction -> TaskEvents to send.

Order of effects, and why it is safe to die anywhere:
1. the batch's tasks are written and its event ids recorded in one transaction;
2. after the commit the TaskEvents are sent;
3. the consumer offsets are committed after that (faust acks the batch when the agent
   asks for the next one).
A crash before 1 commits redelivers the batch and nothing was written. A crash after 1 and
before 3 redelivers events whose ids are already recorded: they change nothing, and their
TaskEvents are sent again with their original ids (consumers deduplicate by event id).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tasks import metrics, store
from services.tasks.core import Prepared, prepare_batch
from shared.contracts.events import TaskEvent
from shared.domain.task_rules import TaskRules
from shared.infrastructure.retry import retry_transient

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    events: list[TaskEvent]
    """TaskEvents to send now that the batch is committed."""
    dead: list[tuple[int, str, str]]
    """(index in the batch, reason, error) of each message that can never be applied."""


async def process_batch(
    engine: AsyncEngine, topic: str, values: Sequence[bytes | None], rules: TaskRules
) -> BatchResult:
    """Apply one batch of raw messages from ``topic``. The database away is waited for
    (a batch is acknowledged whatever the agent does with it, so it must not return before
    the batch is applied); a message that can never be applied is handed back as dead."""
    batch = prepare_batch(topic, values, rules)
    dead = [(bad.index, bad.reason, bad.error) for bad in batch.rejected]
    for bad in batch.rejected:
        metrics.EVENTS_FAILED.labels(topic, bad.reason).inc()
    metrics.EVENTS_PROCESSED.labels(topic).inc(batch.handled)
    if not batch.tasks:
        return BatchResult([], dead)
    try:
        fresh, resent, refused = await retry_transient(
            "tasks", f"apply {topic}", _apply, engine, topic, batch.tasks
        )
    except Exception:
        # Not a value the savepoints catch, not an unreachable database: an unexpected
        # failure. Apply the events one by one so only the one that fails is dead.
        log.exception("tasks: a batch from %s failed; applying its events one by one", topic)
        fresh, resent, refused = [], [], []
        for p in batch.tasks:
            try:
                one = await retry_transient("tasks", f"apply {topic}", _apply, engine, topic, [p])
            except Exception as exc:
                log.exception("tasks: event %s from %s failed", p.event_id, topic)
                refused.append((p, f"{type(exc).__name__}: {exc}"))
                continue
            fresh += one[0]
            resent += one[1]
            refused += one[2]
    for p, error in refused:
        metrics.EVENTS_FAILED.labels(topic, "unprocessable").inc()
        dead.append((p.index, "unprocessable", error))
    store.count_committed(fresh)
    return BatchResult([*resent, *fresh], dead)


async def _apply(
    engine: AsyncEngine, topic: str, prepared: Sequence[Prepared]
) -> tuple[list[TaskEvent], list[TaskEvent], list[tuple[Prepared, str]]]:
    """One transaction: (TaskEvents of events applied now, TaskEvents to re-send for
    events applied before, events the database refused with why)."""
    fresh: list[TaskEvent] = []
    refused: list[tuple[Prepared, str]] = []
    async with engine.begin() as conn:
        new_ids = await store.remember_events(conn, topic, [p.event_id for p in prepared])
        replayed = [p.event_id for p in prepared if p.event_id not in new_ids]
        resent = await store.replayed_task_events(conn, replayed)
        for p in prepared:
            if p.event_id not in new_ids:
                continue
            try:
                # A savepoint per event: one the database refuses (a well deleted since,
                # a value out of range) is skipped without taking the batch with it.
                async with conn.begin_nested():
                    applied = await store.apply_spec(conn, p.spec, p.event_id)
                    await store.note_outcome(conn, p.event_id, applied)
            except (IntegrityError, DataError) as exc:
                store.log_skipped(topic, p.event_id, exc)
                await store.forget_event(conn, p.event_id)
                refused.append((p, f"{type(exc).__name__}: {str(exc.orig or exc).splitlines()[0]}"))
                continue
            if applied.action is not None:
                fresh.append(applied.event(store.task_event_id(p.event_id)))
    if replayed:
        metrics.EVENTS_REPLAYED.labels(topic).inc(len(replayed))
    return fresh, resent, refused

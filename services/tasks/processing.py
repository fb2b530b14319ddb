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

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tasks import metrics, store
from services.tasks.triggers import Prepared, prepare_batch
from shared.domain.task_rules import TaskRules
from shared.events import TaskEvent

log = logging.getLogger(__name__)

RETRY_MAX_DELAY_S = 5.0
P = ParamSpec("P")
T = TypeVar("T")


def is_transient(exc: BaseException) -> bool:
    """The database could not be reached (restart, failover, network): retry, never skip."""
    if isinstance(exc, (OperationalError, InterfaceError, ConnectionError, OSError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def retrying(
    what: str, attempt_fn: Callable[P, Awaitable[T]], *args: P.args, **kw: P.kwargs
) -> T:
    """Run ``attempt_fn`` until it succeeds or fails for a reason other than reachability.

    Skipping a batch because the database is briefly down would lose it: faust acks a
    batch whatever the agent does with it, so the agent must not return until it is applied.
    """
    delay = 0.2
    while True:
        try:
            return await attempt_fn(*args, **kw)
        except Exception as exc:
            if not is_transient(exc):
                raise
            metrics.DATABASE_RETRIES.inc()
            log.warning(
                "tasks: %s: database unreachable (%s); retrying in %.1f s", what, exc, delay
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_DELAY_S)


async def process_batch(
    engine: AsyncEngine, topic: str, values: Sequence[bytes | None], rules: TaskRules
) -> list[TaskEvent]:
    """Apply one batch of raw messages from ``topic``; returns the TaskEvents to send once
    it is committed. Bad messages are logged, counted and skipped."""
    batch = prepare_batch(topic, values, rules)
    for bad in batch.rejected:
        log.warning("tasks: skipped message %d of a batch from %s: %s", bad.index, topic, bad.error)
        metrics.EVENTS_FAILED.labels(topic, bad.reason).inc()
    metrics.EVENTS_PROCESSED.labels(topic).inc(batch.handled)
    if not batch.tasks:
        return []
    try:
        fresh, resent = await retrying(f"batch from {topic}", _apply, engine, topic, batch.tasks)
    except Exception:
        # Not a bad value the savepoints catch, not an unreachable database: an unexpected
        # failure. Apply the events one by one so only the one that fails is skipped.
        log.exception("tasks: a batch from %s failed; applying its events one by one", topic)
        fresh, resent = [], []
        for p in batch.tasks:
            try:
                one_fresh, one_resent = await retrying(
                    f"event from {topic}", _apply, engine, topic, [p]
                )
            except Exception:
                log.exception("tasks: skipped event %s from %s", p.event_id, topic)
                metrics.EVENTS_FAILED.labels(topic, "error").inc()
                continue
            fresh += one_fresh
            resent += one_resent
    store.count_committed(fresh)
    return [*resent, *fresh]


async def _apply(
    engine: AsyncEngine, topic: str, prepared: Sequence[Prepared]
) -> tuple[list[TaskEvent], list[TaskEvent]]:
    """One transaction: (TaskEvents of events applied now, TaskEvents to re-send for
    events applied before)."""
    fresh: list[TaskEvent] = []
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
                continue
            if applied.action is not None:
                fresh.append(applied.event(store.task_event_id(p.event_id)))
    if replayed:
        metrics.EVENTS_REPLAYED.labels(topic).inc(len(replayed))
    return fresh, resent

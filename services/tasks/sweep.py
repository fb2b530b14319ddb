"""The reminder and escalation sweep over barrier elements' periodic tests.

Used by the worker's timer and by ``wims sweep``. Idempotent: a reminder's text depends
only on the element's state (due soon / overdue), so a second sweep finds the open task
already saying it and changes nothing; an overdue test escalates that same task to high.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from services.tasks import metrics, store
from shared.contracts.enums import ElementType
from shared.contracts.events import TaskEvent, derived_id, utcnow
from shared.domain.task_rules import TaskRules, next_test_due, reminder_for_element
from shared.infrastructure.retry import retry_transient
from shared.infrastructure.settings import Settings
from shared.persistence.models import BarrierElement, BarrierEnvelope

log = logging.getLogger(__name__)

ELEMENT = BarrierElement.__table__
ENVELOPE = BarrierEnvelope.__table__
CHUNK = 200
"""Elements per transaction: row locks are held briefly even on a large field."""

T = TypeVar("T")
Emit = Callable[[Sequence[TaskEvent]], Awaitable[None]]


@dataclass
class SweepReport:
    checked: int = 0
    """Elements whose periodic test is due within the reminder window or overdue."""
    created: list[TaskEvent] = field(default_factory=list)
    escalated: list[TaskEvent] = field(default_factory=list)
    updated: list[TaskEvent] = field(default_factory=list)
    forgotten_events: int = 0
    seconds: float = 0.0

    @property
    def events(self) -> list[TaskEvent]:
        return [*self.created, *self.escalated, *self.updated]

    def lines(self) -> list[str]:
        out = [
            f"sweep: {self.checked} element(s) due within the reminder window or overdue; "
            f"{len(self.created)} created, {len(self.escalated)} escalated, "
            f"{len(self.updated)} updated ({self.seconds:.2f} s)"
        ]
        for e in self.events:
            due = e.due_date.isoformat() if e.due_date else "-"
            out.append(
                f"  {e.action:<9} task {e.task_id}  {e.target}  {e.priority}  due {due}  {e.title}"
            )
        return out


async def _candidates(engine: AsyncEngine, now: datetime, rules: TaskRules) -> list[Row]:
    """Elements that may need a reminder: a cheap filter in SQL, the exact rule in Python."""
    horizon = now + timedelta(days=rules.reminder_days)
    # The shortest configured interval: an element counted with it and not due by the
    # horizon is not due with its own (longer) interval either.
    shortest = min(rules.interval_days(t) for t in ElementType)
    interval = func.make_interval(0, 0, 0, func.coalesce(ELEMENT.c.test_interval_days, shortest))
    stmt = (
        select(
            ELEMENT.c.id,
            ELEMENT.c.name,
            ELEMENT.c.element_type,
            ELEMENT.c.test_interval_days,
            ELEMENT.c.last_tested_at,
            ELEMENT.c.next_test_due,
            ENVELOPE.c.well_id,
        )
        .join(ENVELOPE, ENVELOPE.c.id == ELEMENT.c.envelope_id)
        .where(
            or_(
                ELEMENT.c.next_test_due <= horizon,
                and_(
                    ELEMENT.c.next_test_due.is_(None),
                    ELEMENT.c.last_tested_at.is_not(None),
                    ELEMENT.c.last_tested_at + interval <= horizon,
                ),
            )
        )
        .order_by(ELEMENT.c.id)
    )
    async with engine.connect() as conn:
        return list((await conn.execute(stmt)).all())


async def _apply_chunk(
    engine: AsyncEngine, rows: Sequence[Row], now: datetime, rules: TaskRules
) -> list[TaskEvent]:
    out: list[TaskEvent] = []
    async with engine.begin() as conn:
        for row in rows:
            due = row.next_test_due or next_test_due(
                row.element_type, row.last_tested_at, rules, interval_days=row.test_interval_days
            )
            if due is None:
                continue
            spec = reminder_for_element(
                row.id, row.well_id, row.element_type, row.name, due, now, rules
            )
            if spec is None:
                continue
            try:
                async with conn.begin_nested():
                    applied = await store.apply_spec(conn, spec, None)
            except (IntegrityError, DataError) as exc:
                log.warning("tasks: sweep skipped element %s: %s", row.id, exc)
                continue
            if applied.action is None:
                continue
            r = applied.row
            # Deterministic per state change, so a re-run that re-sends it is recognised.
            event_id = derived_id(
                "task-event", "sweep", r.id, applied.action, r.priority, r.due_date.isoformat()
            )
            out.append(applied.event(event_id))
    return out


async def run_sweep(
    engine: AsyncEngine,
    rules: TaskRules,
    emit: Emit,
    *,
    ledger_days: int,
    now: datetime | None = None,
    wait_for_database: bool = True,
) -> SweepReport:
    """Open reminders for tests coming due, escalate overdue ones; send the TaskEvents of
    each committed chunk. Also forgets applied-event ids older than ``ledger_days``.

    wait_for_database: retry while the database is unreachable (the worker's timer);
    False fails at once instead, for a person at a terminal.
    """
    started = time.perf_counter()
    now = now or utcnow()
    report = SweepReport()

    async def call(fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await (
            retry_transient("tasks", "sweep", fn, *args) if wait_for_database else fn(*args)
        )

    try:
        rows = await call(_candidates, engine, now, rules)
        report.checked = len(rows)
        for i in range(0, len(rows), CHUNK):
            events = await call(_apply_chunk, engine, rows[i : i + CHUNK], now, rules)
            store.count_committed(events)
            for e in events:
                {"created": report.created, "escalated": report.escalated}.get(
                    e.action, report.updated
                ).append(e)
            if events:
                await emit(events)
        report.forgotten_events = await call(_forget, engine, ledger_days)
    finally:
        report.seconds = time.perf_counter() - started
        metrics.SWEEP_DURATION.observe(report.seconds)
    return report


async def _forget(engine: AsyncEngine, days: int) -> int:
    async with engine.begin() as conn:
        return await store.forget_events_before(conn, days)


async def sweep_once(settings: Settings) -> SweepReport:
    """One sweep now against the database and Kafka (``wims sweep``)."""
    from aiokafka import AIOKafkaProducer

    from services.tasks.core import rules_from_settings
    from shared.contracts.topics import TASK_EVENTS
    from shared.infrastructure.db import make_async_engine

    rules = rules_from_settings(settings)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    # Kafka first: if it is not reachable, fail before changing any task, so no TaskEvent
    # is left unsent.
    await producer.start()
    engine = make_async_engine(settings, pool_size=2)
    try:

        async def emit(events: Sequence[TaskEvent]) -> None:
            futures = [
                await producer.send(TASK_EVENTS.name, key=str(e.well_id).encode(), value=e.encode())
                for e in events
            ]
            await asyncio.gather(*futures)

        return await run_sweep(
            engine, rules, emit, ledger_days=settings.tasks_ledger_days, wait_for_database=False
        )
    finally:
        await producer.stop()
        await engine.dispose()

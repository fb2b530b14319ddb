"""The tasks stream processor (faust worker).

Consumes wims.alerts, wims.barrier-events and wims.integrity-snapshots, keeps exactly one
open auto task per (trigger, target) in the ``task`` table and emits wims.task-events;
a timer runs the reminder/escalation sweep over barrier elements' periodic tests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import faust

from services.tasks import metrics
from services.tasks.core import SOURCE_TOPICS, rules_from_settings
from services.tasks.findings_timer import register_findings
from services.tasks.processing import process_batch
from services.tasks.sweep import run_sweep
from shared.contracts.events import TaskEvent
from shared.contracts.topics import TASK_EVENTS
from shared.infrastructure.faust_app import WorkerContext, make_faust_app, send_dead_letter
from shared.infrastructure.retry import retry_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    app, ctx = make_faust_app("tasks", settings)
    rules = rules_from_settings(settings)  # fails fast on a bad interval setting
    task_events = app.topic(TASK_EVENTS.name, key_type=bytes, value_type=bytes)

    async def emit(events: Sequence[TaskEvent]) -> None:
        """Send and wait for the broker's ack, a broker that is away waited for: the batch
        is acked (and its offsets committed) only after this returns, so a TaskEvent is
        never dropped for a broker that is briefly gone."""

        async def send() -> None:
            futures = [
                await task_events.send(key=str(e.well_id).encode(), value=e.encode(), force=True)
                for e in events
            ]
            await asyncio.gather(*futures)

        try:
            await retry_transient("tasks", "send task events", send)
        except asyncio.CancelledError:
            raise
        except Exception:
            # Refused for good (e.g. too large): the tasks are committed in the database,
            # which stays the truth; the agent goes on.
            metrics.TASK_EVENTS_NOT_SENT.inc(len(events))
            log.exception("tasks: %d task event(s) could not be sent", len(events))

    def consumer_for(topic_name: str) -> Any:
        async def consume(stream: faust.StreamT) -> None:
            # Batches: one transaction per batch; faust acks the batch's events when the
            # loop asks for the next one, i.e. after the commit, the dead letters and the
            # sends.
            async for batch in stream.take_events(
                settings.tasks_batch_size, within=settings.tasks_batch_seconds
            ):
                result = await process_batch(
                    ctx.engine, topic_name, [e.value for e in batch], rules
                )
                for index, reason, error in result.dead:
                    message = batch[index].message
                    await send_dead_letter(
                        app,
                        "tasks",
                        message.topic,
                        message.partition,
                        message.offset,
                        message.key,
                        message.value,
                        reason,
                        error,
                    )
                if result.events:
                    await emit(result.events)

        return consume

    for name in SOURCE_TOPICS:
        source = app.topic(name, key_type=bytes, value_type=bytes)
        app.agent(source, name=f"tasks.{name.removeprefix('wims.')}")(consumer_for(name))

    @app.timer(interval=settings.tasks_sweep_seconds, on_leader=True, name="tasks.sweep")
    async def sweep() -> None:
        try:
            report = await run_sweep(
                ctx.engine, rules, emit, ledger_days=settings.tasks_ledger_days
            )
        except Exception:
            # The next sweep runs on schedule and repeats whatever this one missed.
            metrics.SWEEP_FAILURES.inc()
            log.exception("tasks: sweep failed")
            return
        for line in report.lines():
            log.info("tasks: %s", line)

    # The daily findings sweep (services/tasks/findings.py) runs here: this service already runs the
    # periodic sweeps over the database, and the alerts it raises come back to its own
    # consumer as tasks (docs/decisions.md "Daily findings run as a sweep").
    register_findings(app, ctx, settings)

    ctx.extra["rules"] = rules
    ctx.extra["emit"] = emit
    return app, ctx

"""The MAASP stream processor (faust worker): every reading gets its utilisation level,
exceedances and SAP are raised live.

A faust agent and a bulk consumer share two changelog-backed tables, keyed by annulus id
(the Kafka key of both source topics, which are co-partitioned, so each annulus' config and
readings meet in one worker):

- ``annulus_configs`` (wims.annulus-config): evaluates each new config version (MAASP,
  thresholds), stores the MAASP history row (maasp_result, idempotent per version), emits
  MaaspResult and keeps the evaluated config in the ``annulus-configs`` table.
- readings (wims.readings, services.maasp.pump.ReadingsPump): an aiokafka consumer inside
  the worker takes whole fetched batches (faust's per-message stream alone costs more than
  judging a reading) of the partitions faust assigned this worker for wims.annulus-config,
  decodes them straight into numpy arrays, groups them by annulus and judges each group
  (services.maasp.processing calling services.maasp.core), emits AnnulusState and Alert
  events and keeps each annulus' runtime state in the ``annulus-runtime`` table.

Ordering for "nothing lost, nothing doubled" across a SIGKILL: a batch's events are
published and acknowledged by the broker *before* its runtime state is written to the
table, and the pump commits a batch's offsets only after the state writes are acked. So a
crash can leave (a) events out but state unwritten: the batch is judged again from the old
state and the same derived ids are re-published (recognisably the same alerts), or
(b) state written but offsets not committed: the replayed readings are no newer than the
state's newest reading, count as late and emit nothing. It never leaves state that has
seen a reading whose alert is missing.

A message that can never be processed (undecodable, invalid by contract, or one the judge
fails on) is logged, counted and published on wims.dead-letters (shared.contracts.dead_letters) with
its position, key, value and reason; the agents never die of one. A transient failure (the
broker or the database away, a topic's metadata not known yet) is retried with the offset
held (shared.infrastructure.retry): nothing valid is dead-lettered.

This module is the wiring only: the agents, the pump's task and the timers.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import faust

from services.maasp import metrics as m
from services.maasp.core import JudgeParams
from services.maasp.processing import MaaspWorker
from services.maasp.pump import ReadingsPump
from shared.infrastructure.faust_app import WorkerContext, make_faust_app, process_message
from shared.infrastructure.settings import Settings


def create_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    app, ctx = make_faust_app("maasp", settings)
    worker = MaaspWorker(app, ctx, JudgeParams(heartbeat_s=settings.maasp_heartbeat_s))
    ctx.extra["worker"] = worker

    @app.agent(worker.config_topic, name="annulus_configs")
    async def annulus_configs(stream: Any) -> None:
        async for event in stream.events():
            if await process_message(app, "maasp", event.message, worker.on_config, event):
                m.DEAD_LETTERS.labels(event.message.topic).inc()

    pump = ReadingsPump(app, worker, settings)
    ctx.extra["readings_pump"] = pump
    ctx.extra["lag_groups"] = [pump.group_id]

    @app.on_partitions_revoked.connect
    async def hold_readings(sender: Any, revoked: Any, **kwargs: Any) -> None:
        await pump.on_revoked()

    @app.on_rebalance_complete.connect
    async def follow_assignment(sender: Any, **kwargs: Any) -> None:
        pump.on_rebalance_complete()

    # A graceful stop revokes nothing (faust skips its revocation while stopping) and the
    # pump's task is cancelled only after the consumer has left the group and the producer
    # has stopped: hold it here, before either, so the batch in flight commits while the
    # producer still answers and nothing is judged once another worker owns the annuli.
    # Bounded like the pump's own last wait: a batch the broker does not finish in time
    # stays uncommitted and is judged again by the next owner (derived ids).
    @app.on_before_shutdown.connect
    async def hold_readings_on_stop(sender: Any, **kwargs: Any) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(pump.on_revoked(), timeout=5.0)

    @app.task
    async def readings() -> None:
        await pump.run()

    @app.timer(10.0)
    async def annuli_by_level() -> None:
        worker.count_levels()

    return app, ctx

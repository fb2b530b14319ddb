"""The MAASP stream processor (faust worker): every reading gets its utilisation level,
exceedances and SAP are raised live.

Two agents share two changelog-backed tables, keyed by annulus id (the Kafka key of both
source topics, which are co-partitioned, so each annulus' config and readings meet in one
worker):

- ``annulus_configs`` (wims.annulus-config): evaluates each new config version (MAASP,
  thresholds), stores the MAASP history row (maasp_result, idempotent per version), emits
  MaaspResult and keeps the evaluated config in the ``annulus-configs`` table.
- ``readings`` (wims.readings): takes readings in batches, decodes them straight into numpy
  arrays, groups them by annulus and judges each group (services.maasp.judge), emits
  AnnulusState and Alert events and keeps each annulus' runtime state in the
  ``annulus-runtime`` table.

Ordering for "nothing lost, nothing doubled" across a SIGKILL: a batch's events are
published and acknowledged by the broker *before* its runtime state is written to the
table, and faust commits a batch's offsets only after the state writes are flushed. So a
crash can leave (a) events out but state unwritten: the batch is judged again from the old
state and the same derived ids are re-published (recognisably the same alerts), or
(b) state written but offsets not committed: the replayed readings are no newer than the
state's newest reading, count as late and emit nothing. It never leaves state that has
seen a reading whose alert is missing.

A message that cannot be processed is logged, counted and published on wims.dead-letters
(key: the source topic) with its topic, partition, offset, the error and the raw value;
the agents never die of one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faust
import numpy as np
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from services.maasp import metrics as m
from services.maasp.config import (
    ConfigView,
    annulus_key,
    evaluate_config,
    maasp_result_event,
    view_from_table,
    view_to_table,
)
from services.maasp.decode import QUALITY_NAMES, dead_letter_value, decode_readings, error_summary
from services.maasp.judge import JudgeParams, encode_state, judge_annulus
from shared import events as ev
from shared import topics
from shared.domain.utilisation import LEVEL_BY_CODE
from shared.enums import UtilisationLevel
from shared.faust_app import WorkerContext, make_faust_app
from shared.models import MaaspResult as MaaspResultRow
from shared.settings import Settings

log = logging.getLogger(__name__)


class MaaspWorker:
    """The agents' shared logic, with the tables and topics it works on."""

    def __init__(self, app: faust.App, ctx: WorkerContext, params: JudgeParams) -> None:
        self.app = app
        self.ctx = ctx
        self.params = params
        partitions = ctx.settings.topic_partitions

        def topic(t: topics.Topic) -> Any:
            return app.topic(t.name, partitions=partitions, internal=False)

        self.readings_topic = topic(topics.READINGS)
        self.config_topic = topic(topics.ANNULUS_CONFIG)
        # use_partitioner: a table key goes to the changelog partition its bytes hash to,
        # the same partition the annulus' readings and configs are on, so one table write
        # needs no "current event" (a batch mixes partitions).
        table_kw: dict[str, Any] = dict(
            default=None,
            partitions=partitions,
            key_type=bytes,  # raw key bytes (b"17"); values are JSON (the default)
            use_partitioner=True,
        )
        self.configs = app.Table("annulus-configs", **table_kw)
        self.runtime = app.Table("annulus-runtime", **table_kw)
        self._runtime_changelog = self.runtime.changelog_topic.get_topic_name()
        # Parsed configs, reused while the table still holds the same value object.
        self._view_cache: dict[bytes, tuple[Any, ConfigView]] = {}

    # --- shared plumbing -----------------------------------------------------------------

    async def publish(self, topic: str, key: bytes, value: bytes) -> asyncio.Future:
        """Hand one record to the producer now; await the returned future for the ack.

        Straight to the producer, neither attached to the offset commit (faust's default in
        an agent) nor through faust's topic layer, which costs more per record than the
        judging itself: we wait for the broker's ack before writing the state that depends
        on it.
        """
        return await self.app.producer.send(topic, key, value, None, None, None)

    async def write_states(self, writes: list[tuple[bytes, dict[str, Any]]]) -> None:
        """Store runtime states in the table and its changelog, and wait for the acks.

        Table writes normally queue their changelog records in faust's producer buffer,
        whose flush before an offset commit gives up after 0.1 s without progress; sending
        them ourselves and waiting makes "state durable before this batch's offsets can be
        committed" certain (the batch is acked to faust only after this returns). The key
        bytes hash to the partition of the annulus' readings, as use_partitioner does.
        """
        store = self.runtime.data
        changelog = self._runtime_changelog
        send = self.app.producer.send
        futures = []
        for key, state in writes:
            store[key] = state
            futures.append(await send(changelog, key, encode_state(state), None, None, None))
        if futures:
            await asyncio.gather(*futures)

    async def dead_letter(self, message: Any, error: str, raw: bytes | None) -> None:
        source = message.topic
        log.warning("dead-lettered %s[%s]@%s: %s", source, message.partition, message.offset, error)
        m.DEAD_LETTERS.labels(source).inc()
        fut = await self.publish(
            topics.DEAD_LETTERS.name,
            source.encode(),
            dead_letter_value(source, message.partition, message.offset, error, raw),
        )
        await fut

    def config_view(self, key: bytes) -> ConfigView | None:
        value = self.configs.get(key)
        if value is None:
            return None
        cached = self._view_cache.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        view = view_from_table(value)
        self._view_cache[key] = (value, view)
        return view

    # --- configs -------------------------------------------------------------------------

    async def on_config(self, event: Any) -> None:
        raw: bytes | None = event.value
        try:
            if raw is None:
                raise ValueError("message: empty value (a tombstone is not a config)")
            config = ev.decode(topics.ANNULUS_CONFIG.name, raw)
            view = evaluate_config(config)
        except Exception as exc:
            m.CONFIGS.labels("invalid").inc()
            await self.dead_letter(event.message, error_summary(exc), raw)
            return
        key = annulus_key(view.annulus_id)
        current = self.configs.get(key)
        if current is not None and view.version <= int(current["version"]):
            # Same version: a replay (its row and result exist). Older: out of order.
            m.CONFIGS.labels("duplicate" if view.version == current["version"] else "stale").inc()
            return
        if not view.deleted:
            await self.store_result(view)
            fut = await self.publish(
                topics.MAASP_RESULTS.name, key, maasp_result_event(view).encode()
            )
            await fut
        self.configs[key] = view_to_table(view)
        m.CONFIGS.labels("deleted" if view.deleted else "applied").inc()
        log.info(
            "annulus %s config v%s: MAASP %s bar (limiting point %s)%s",
            view.annulus_id,
            view.version,
            view.maasp_bar,
            view.limiting_point_name,
            " deleted" if view.deleted else "",
        )

    async def store_result(self, view: ConfigView) -> None:
        """One maasp_result row per (annulus, config version): a replay adds none."""
        stmt = (
            pg_insert(MaaspResultRow)
            .values(
                annulus_id=view.annulus_id,
                config_version=view.version,
                maasp_bar=view.maasp_bar,
                limiting_point_id=view.limiting_point_id,
                limiting_point_name=view.limiting_point_name,
                computed_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["annulus_id", "config_version"])
        )
        delay = 0.5
        while True:
            try:
                async with self.ctx.engine.begin() as conn:
                    await conn.execute(stmt)
                return
            except IntegrityError as exc:
                # The annulus (or its limiting point) is not in the database, e.g. a config
                # published for another install: keep judging readings, skip the history.
                m.MAASP_RESULTS_NOT_STORED.inc()
                log.warning(
                    "maasp_result for annulus %s v%s not stored: %s",
                    view.annulus_id,
                    view.version,
                    str(exc.orig).splitlines()[0] if exc.orig else exc,
                )
                return
            except OperationalError as exc:
                # The database is down: wait for it rather than lose the history row.
                m.DB_RETRIES.inc()
                log.warning("database unavailable (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
            except DBAPIError as exc:
                m.MAASP_RESULTS_NOT_STORED.inc()
                log.error("maasp_result for annulus %s not stored: %s", view.annulus_id, exc)
                return

    # --- readings ------------------------------------------------------------------------

    async def on_readings(self, events: list[Any]) -> None:
        started = time.perf_counter()
        values = [e.value for e in events]
        batch, errors = decode_readings(values)
        for i, error in errors:
            await self.dead_letter(events[i].message, error, values[i])
        n = len(batch)
        m.BATCH_SIZE.observe(len(events))
        if n == 0:
            return
        order = np.argsort(batch.annulus_id, kind="stable")
        aids = batch.annulus_id[order]
        ts = batch.ts[order]
        pressure = batch.pressure[order]
        temperature = batch.temperature[order]
        quality = batch.quality[order]
        wells = batch.well_id[order]
        bounds = (np.flatnonzero(np.diff(aids)) + 1).tolist()
        starts = [0, *bounds]
        ends = [*bounds, n]

        emits = []
        writes: list[tuple[bytes, dict[str, Any]]] = []
        late = unconfigured = 0
        level_counts = [0, 0, 0, 0]
        for s, e in zip(starts, ends, strict=True):
            aid = int(aids[s])
            key = annulus_key(aid)
            state = self.runtime.get(key)
            try:
                outcome = judge_annulus(
                    aid,
                    ts[s:e],
                    pressure[s:e],
                    temperature[s:e],
                    quality[s:e],
                    wells[s:e],
                    state,
                    self.config_view(key),
                    self.params,
                )
            except Exception as exc:
                # A bug or a corrupt state must not stop every other annulus: dead-letter
                # this annulus' readings of the batch with the reason.
                log.exception("judging annulus %s failed", aid)
                error = f"judging failed: {error_summary(exc)}"
                for j in order[s:e].tolist():
                    i = int(batch.index[j])
                    await self.dead_letter(events[i].message, error, values[i])
                continue
            late += outcome.late
            unconfigured += outcome.unconfigured
            if outcome.level_counts is not None:
                level_counts = [
                    a + b for a, b in zip(level_counts, outcome.level_counts, strict=True)
                ]
            emits.extend(outcome.emits)
            if outcome.late < e - s:  # only late readings: the state did not change
                writes.append((key, outcome.state))

        futures = [await self.publish(x.topic, x.key, x.value) for x in emits]
        if futures:
            await asyncio.gather(*futures)
        await self.write_states(writes)

        # Counted once judged, emitted and stored: the counter says what is done.
        for code, count in enumerate(np.bincount(batch.quality, minlength=3).tolist()):
            if count:
                m.READINGS.labels(QUALITY_NAMES[code]).inc(count)
        tally = Tally((x.topic, x.label) for x in emits)
        for (topic, label), count in tally.items():
            (m.ALERTS if topic == topics.ALERTS.name else m.STATES).labels(label).inc(count)
        if late:
            m.READINGS_LATE.inc(late)
        if unconfigured:
            m.READINGS_UNCONFIGURED.inc(unconfigured)
        for code, count in enumerate(level_counts):
            if count:
                m.LEVEL_READINGS.labels(LEVEL_BY_CODE[code].value).inc(count)
        m.LAG.observe(max(0.0, time.time() - float(ts.max())))
        m.BATCH_SECONDS.observe(time.perf_counter() - started)

    def count_levels(self) -> None:
        counts = Tally(v.get("level") for v in list(self.runtime.values()) if v)
        for level in UtilisationLevel:
            m.ANNULI.labels(level.value).set(counts.get(level.value, 0))


def create_app(settings: Settings) -> tuple[faust.App, WorkerContext]:
    app, ctx = make_faust_app("maasp", settings)
    # faust's 60 s default keeps a SIGKILLed worker's partitions unassigned for a minute
    # after a restart; a worker heartbeats every 3 s, so 10 s is still safe.
    app.conf.broker_session_timeout = settings.maasp_session_timeout_s
    # faust creates its datadir without parents; a fresh run folder may not have them yet.
    Path(app.conf.datadir).parent.mkdir(parents=True, exist_ok=True)
    worker = MaaspWorker(app, ctx, JudgeParams(heartbeat_s=settings.maasp_heartbeat_s))
    ctx.extra["worker"] = worker

    @app.agent(worker.config_topic, name="annulus_configs")
    async def annulus_configs(stream: Any) -> None:
        async for event in stream.events():
            try:
                await worker.on_config(event)
            except Exception as exc:  # never let one config stop the agent
                log.exception("config at offset %s failed", event.message.offset)
                await worker.dead_letter(event.message, error_summary(exc), event.value)

    @app.agent(worker.readings_topic, name="readings")
    async def readings(stream: Any) -> None:
        async for events in stream.take_events(
            settings.maasp_batch_size, within=settings.maasp_batch_within_s
        ):
            await worker.on_readings(events)

    @app.timer(10.0)
    async def annuli_by_level() -> None:
        worker.count_levels()

    return app, ctx

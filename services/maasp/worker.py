"""The MAASP stream processor (faust worker): every reading gets its utilisation level,
exceedances and SAP are raised live.

A faust agent and a bulk consumer share two changelog-backed tables, keyed by annulus id
(the Kafka key of both source topics, which are co-partitioned, so each annulus' config and
readings meet in one worker):

- ``annulus_configs`` (wims.annulus-config): evaluates each new config version (MAASP,
  thresholds), stores the MAASP history row (maasp_result, idempotent per version), emits
  MaaspResult and keeps the evaluated config in the ``annulus-configs`` table.
- readings (wims.readings, :class:`ReadingsPump`): an aiokafka consumer inside the worker
  takes whole fetched batches (faust's per-message stream alone costs more than judging a
  reading) of the partitions faust assigned this worker for wims.annulus-config, decodes
  them straight into numpy arrays, groups them by annulus and judges each group
  (services.maasp.judge), emits AnnulusState and Alert events and keeps each annulus'
  runtime state in the ``annulus-runtime`` table.

Ordering for "nothing lost, nothing doubled" across a SIGKILL: a batch's events are
published and acknowledged by the broker *before* its runtime state is written to the
table, and the pump commits a batch's offsets only after the state writes are acked. So a
crash can leave (a) events out but state unwritten: the batch is judged again from the old
state and the same derived ids are re-published (recognisably the same alerts), or
(b) state written but offsets not committed: the replayed readings are no newer than the
state's newest reading, count as late and emit nothing. It never leaves state that has
seen a reading whose alert is missing.

A message that can never be processed (undecodable, invalid by contract, or one the judge
fails on) is logged, counted and published on wims.dead-letters (shared.dead_letters) with
its position, key, value and reason; the agents never die of one. A transient failure (the
broker or the database away, a topic's metadata not known yet) is retried with the offset
held (shared.retry): nothing valid is dead-lettered.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_right
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, NamedTuple

import faust
import numpy as np
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError

from services.maasp import metrics as m
from services.maasp.config import (
    ConfigView,
    annulus_key,
    evaluate_config,
    maasp_result_event,
    view_from_table,
    view_to_table,
)
from services.maasp.decode import (
    QUALITY_NAMES,
    ReadingBatch,
    concat_batches,
    decode_readings,
    error_summary,
)
from services.maasp.judge import Emit, JudgeParams, encode_state, judge_annulus, judge_batch
from shared import events as ev
from shared import topics
from shared.compat.faust_worker import put_durably, send_raw, settling
from shared.compat.record_batches import RecordTaker
from shared.dead_letters import decode_failure_reason
from shared.domain.utilisation import LEVEL_BY_CODE
from shared.enums import UtilisationLevel
from shared.faust_app import (
    Rejected,
    WorkerContext,
    make_faust_app,
    process_message,
    send_dead_letter,
)
from shared.gc_tuning import collection_paused, freeze_startup_heap
from shared.models import MaaspResult as MaaspResultRow
from shared.retry import retry_transient
from shared.settings import Settings

log = logging.getLogger(__name__)

#: Records fetched and decoded at a time while building a batch: between slices the batch
#: in flight gets its acks handled and its states written.
FETCH_SLICE = 5000
#: Longest run of batches judged with the cyclic garbage collector paused (see _loop).
GC_PAUSE_S = 2.0


class Origin(NamedTuple):
    """Where a record came from, as a dead letter names it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(slots=True)
class Fetched:
    """One batch of wims.readings records, decoded, with the offsets it spans."""

    records: list[Any]  # aiokafka records (offset, value), partition after partition
    batch: ReadingBatch
    errors: list[tuple[int, str]]
    first: dict[TopicPartition, int]  # offset of the first record, per partition
    last: dict[TopicPartition, int]  # offset of the last record, per partition
    #: Each run of records from one partition: its partition and its first index.
    spans: list[tuple[TopicPartition, int]] = field(default_factory=list)

    def origin(self, i: int) -> Origin:
        tp = self.spans[bisect_right(self.spans, i, key=itemgetter(1)) - 1][0]
        record = self.records[i]
        return Origin(tp.topic, tp.partition, record.offset, getattr(record, "key", None))


@dataclass(slots=True)
class BatchTail:
    """A judged batch whose events are with the producer: what :meth:`MaaspWorker.finish`
    still has to wait for, store and count."""

    batch: ReadingBatch
    emits: list[Emit]
    futures: list[asyncio.Future]
    writes: list[tuple[bytes, dict[str, Any]]]
    late: int
    unconfigured: int
    level_counts: list[int]
    started: float


class MaaspWorker:
    """The agents' shared logic, with the tables and topics it works on."""

    def __init__(self, app: faust.App, ctx: WorkerContext, params: JudgeParams) -> None:
        self.app = app
        self.ctx = ctx
        self.params = params
        partitions = ctx.settings.topic_partitions

        def topic(t: topics.Topic) -> Any:
            return app.topic(t.name, partitions=partitions, internal=False)

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
        """Hand one record to the producer now; await the returned future for the ack
        (we wait for it before writing the state that depends on it)."""
        return await send_raw(self.app, topic, key, value)

    async def write_states(self, writes: list[tuple[bytes, dict[str, Any]]]) -> None:
        """Store runtime states in the table and its changelog, and wait for the acks: a
        batch's offsets are committed only after this returns, so a state is durable
        before the readings it has seen are acknowledged."""
        await put_durably(self.runtime, ((k, st, k, encode_state(st)) for k, st in writes))

    async def dead_letter(self, origin: Origin, reason: str, error: str, raw: bytes | None) -> None:
        m.DEAD_LETTERS.labels(origin.topic).inc()
        await send_dead_letter(
            self.app,
            "maasp",
            origin.topic,
            origin.partition,
            origin.offset,
            origin.key,
            raw,
            reason,
            error,
        )

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
        """Apply one wims.annulus-config message (retried whole on a transient failure:
        the history row, the result event and the table write are each idempotent)."""
        raw: bytes | None = event.value
        try:
            if raw is None:
                raise ValueError("message: empty value (a tombstone is not a config)")
            config = ev.decode(topics.ANNULUS_CONFIG.name, raw)
            view = evaluate_config(config)
        except Exception as exc:
            m.CONFIGS.labels("invalid").inc()
            raise Rejected("invalid", error_summary(exc)) from exc
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

        async def insert() -> None:
            async with self.ctx.engine.begin() as conn:
                await conn.execute(stmt)

        try:
            # The database away: wait for it rather than lose the history row.
            await retry_transient("maasp", "store maasp_result", insert)
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

    # --- readings ------------------------------------------------------------------------

    async def judge_and_send(self, fetched: Fetched) -> BatchTail | None:
        """Judge one batch of wims.readings records (decoded into ``fetched.batch``,
        ``fetched.errors`` the messages that could not be) and hand its events to the
        producer; the returned tail, awaited by :meth:`finish`, waits for their acks and
        stores the states. Nothing to finish (None) when no reading was usable."""
        started = time.perf_counter()
        records, batch = fetched.records, fetched.batch
        for i, error in fetched.errors:
            await self.dead_letter(
                fetched.origin(i), decode_failure_reason(error), error, records[i].value
            )
        n = len(batch)
        m.BATCH_SIZE.observe(len(records))
        if n == 0:
            return None
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
        aid_list = aids[starts].tolist()
        keys = [annulus_key(aid) for aid in aid_list]
        get_state = self.runtime.get
        try:
            # The whole batch at once (numpy); it judges like judge_annulus per annulus.
            outcomes: list[Any] = judge_batch(
                aid_list,
                np.asarray(starts),
                np.asarray(ends),
                ts,
                pressure,
                temperature,
                quality,
                wells,
                [get_state(k) for k in keys],
                [self.config_view(k) for k in keys],
                self.params,
            )
        except Exception:
            # An annulus whose state or readings judging fails on: judge one by one below,
            # so only that annulus is dead-lettered.
            log.debug("batch judging failed; judging annulus by annulus", exc_info=True)
            outcomes = [None] * len(keys)
        for s, e, aid, key, outcome in zip(starts, ends, aid_list, keys, outcomes, strict=True):
            if outcome is None:
                try:
                    outcome = judge_annulus(
                        aid,
                        ts[s:e],
                        pressure[s:e],
                        temperature[s:e],
                        quality[s:e],
                        wells[s:e],
                        get_state(key),
                        self.config_view(key),
                        self.params,
                    )
                except Exception as exc:
                    # A bug or a corrupt state must not stop every other annulus:
                    # dead-letter this annulus' readings of the batch with the reason.
                    log.exception("judging annulus %s failed", aid)
                    error = f"judging failed: {error_summary(exc)}"
                    for j in order[s:e].tolist():
                        i = int(batch.index[j])
                        await self.dead_letter(
                            fetched.origin(i), "unprocessable", error, records[i].value
                        )
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
        return BatchTail(batch, emits, futures, writes, late, unconfigured, level_counts, started)

    async def finish(self, tail: BatchTail) -> None:
        """Wait for a batch's events to be acknowledged, then store its runtime states
        (and wait for those acks): a state never gets ahead of the events it caused."""
        if tail.futures:
            await asyncio.gather(*tail.futures)
        await self.write_states(tail.writes)
        # Counted once judged, emitted and stored: the counter says what is done.
        for code, count in enumerate(np.bincount(tail.batch.quality, minlength=3).tolist()):
            if count:
                m.READINGS.labels(QUALITY_NAMES[code]).inc(count)
        tally = Tally((x.topic, x.label) for x in tail.emits)
        for (topic, label), count in tally.items():
            (m.ALERTS if topic == topics.ALERTS.name else m.STATES).labels(label).inc(count)
        if tail.late:
            m.READINGS_LATE.inc(tail.late)
        if tail.unconfigured:
            m.READINGS_UNCONFIGURED.inc(tail.unconfigured)
        for code, count in enumerate(tail.level_counts):
            if count:
                m.LEVEL_READINGS.labels(LEVEL_BY_CODE[code].value).inc(count)
        m.LAG.observe(max(0.0, time.time() - float(tail.batch.ts.max())))
        m.BATCH_SECONDS.observe(time.perf_counter() - tail.started)

    def count_levels(self) -> None:
        counts = Tally(v.get("level") for v in list(self.runtime.values()) if v)
        for level in UtilisationLevel:
            m.ANNULI.labels(level.value).set(counts.get(level.value, 0))


@dataclass(slots=True)
class InFlight:
    """A judged batch whose acks, state writes and offset commit are still under way."""

    fetched: Fetched
    task: asyncio.Task


class ReadingsPump:
    """Consumes wims.readings in bulk, following the faust app's partition assignment.

    faust's per-message stream costs more than judging a reading, so readings bypass it:
    one aiokafka consumer fetches whole batches of the wims.readings
    partitions whose numbers the faust app is assigned for wims.annulus-config. The two
    topics are co-partitioned by annulus id, so those are the annuli whose configs and
    runtime states (faust tables, recovered by faust) this worker holds.

    - The consumer has its own group (``<app id>-readings``) and only commits, never joins:
      partitions are assigned by hand, so the faust group stays the one that decides who
      owns which annuli.
    - Records are taken off the consumer a record batch at a time
      (:mod:`shared.compat.record_batches`), not as a ConsumerRecord per message.
    - A batch's offsets are committed after its events and states are acknowledged
      (:meth:`MaaspWorker.finish`), so a SIGKILL replays at most the batches in flight.
    - Two batches overlap: while batch N's acks, state writes and commit are under way
      (the broker's work), batch N+1 is fetched and decoded (pure work, no state). N+1 is
      judged only once N is finished, so it starts from N's stored states, and its events
      follow N's. If N fails, both are read again from N's offsets.
    - On a revocation faust waits for the batch in flight (its handler takes the lock and
      finishes it), which is then committed; nothing is judged again until the rebalance
      is complete and the tables recovered; then the consumer is re-assigned and starts
      from the committed offsets, so a partition's new owner continues where the old one
      stopped.
    """

    def __init__(self, app: faust.App, worker: MaaspWorker, settings: Settings) -> None:
        self.app = app
        self.worker = worker
        self.settings = settings
        self._lock = asyncio.Lock()
        self._hold = True  # until faust's first assignment is complete and recovered
        self._reassign = True
        self._in_flight: InFlight | None = None
        self.consumer: AIOKafkaConsumer | None = None
        self.taker: RecordTaker | None = None

    @property
    def group_id(self) -> str:
        """Its own group: it commits, never joins (partitions follow faust's assignment)."""
        return f"{self.app.conf.id}-readings"

    async def on_revoked(self) -> None:
        self._hold = True
        async with self._lock:  # the batch in flight finishes and commits
            await self._settle()

    def on_rebalance_complete(self) -> None:
        self._hold = False
        self._reassign = True

    def _owned_partitions(self) -> list[int]:
        name = topics.ANNULUS_CONFIG.name
        return sorted(tp.partition for tp in self.app.consumer.assignment() if tp.topic == name)

    async def run(self) -> None:
        settings = self.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=max(1, round(settings.maasp_batch_within_s * 1000)),
            max_partition_fetch_bytes=8 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
        )
        self.consumer = consumer
        await consumer.start()
        self.taker = RecordTaker(consumer)
        log.info(
            "readings: taken %s",
            "a whole record batch at a time" if self.taker.bulk else "with getmany",
        )
        freeze_startup_heap()
        try:
            await self._loop(consumer)
        finally:
            # Stopping: let the batch in flight commit if the broker answers soon.
            if self._in_flight is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(self._in_flight.task), 5.0)
            await asyncio.shield(consumer.stop())

    async def _loop(self, consumer: AIOKafkaConsumer) -> None:
        app = self.app
        readings = topics.READINGS.name
        while True:
            if self._hold or settling(app):
                await asyncio.sleep(0.02)
                continue
            if self._reassign:
                self._reassign = False
                owned = self._owned_partitions()
                # A fresh assignment starts each partition at its committed offset.
                consumer.assign([TopicPartition(readings, p) for p in owned])
                log.info("readings: consuming partitions %s", owned)
            if not consumer.assignment():
                await asyncio.sleep(0.1)
                continue
            # A batch's records, rows and states live until it is done and are freed by
            # reference counting: the cyclic collector walking them meanwhile only cost time
            # (measured, see shared.gc_tuning). So it is
            # paused while batches follow each other, for GC_PAUSE_S at most, and runs with
            # no batch alive: the last one is finished first.
            with collection_paused():
                until = asyncio.get_running_loop().time() + GC_PAUSE_S
                await self._step(consumer)
                while (
                    self._in_flight is not None
                    and not (self._hold or self._reassign)
                    and asyncio.get_running_loop().time() < until
                ):
                    await self._step(consumer)
                async with self._lock:
                    await self._settle_or_rewind(consumer)

    async def _step(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch and decode the next batch while the one before finishes, then judge it."""
        fetched = await self._fetch(consumer)
        async with self._lock:
            if not await self._settle_or_rewind(consumer, fetched) or fetched is None:
                return
            if self._hold or self._reassign:
                return  # revoked meanwhile: re-read from the committed offsets
            try:
                tail = await self.worker.judge_and_send(fetched)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("judging a readings batch failed; reading it again")
                self._rewind(consumer, fetched)
                await asyncio.sleep(1.0)
                return
            task = asyncio.ensure_future(self._finish(consumer, tail, fetched))
            self._in_flight = InFlight(fetched, task)

    async def _fetch(self, consumer: AIOKafkaConsumer) -> Fetched | None:
        """Up to ``maasp_batch_size`` records, waiting at most ``maasp_batch_within_s`` for
        the first, then whatever else is already fetched (the bigger the batch, the more
        readings per annulus share each per-annulus step; a quiet topic's readings are not
        held back). Decoded slice by slice, letting the batch in flight move on between
        slices. None when nothing arrived."""
        max_records = self.settings.maasp_batch_size
        timeout_ms = max(1, round(self.settings.maasp_batch_within_s * 1000))
        take = self.taker.take
        got = await take(timeout_ms, min(FETCH_SLICE, max_records))
        if not got:
            return None
        records: list[Any] = []
        parts: list[tuple[ReadingBatch, int]] = []
        errors: list[tuple[int, str]] = []
        first: dict[TopicPartition, int] = {}
        last: dict[TopicPartition, int] = {}
        spans: list[tuple[TopicPartition, int]] = []
        while True:
            offset = len(records)
            for tp, recs in got.items():
                first.setdefault(tp, recs[0].offset)
                last[tp] = recs[-1].offset
                spans.append((tp, len(records)))
                records.extend(recs)
            part, part_errors = decode_readings([r.value for r in records[offset:]])
            parts.append((part, offset))
            errors.extend((offset + i, error) for i, error in part_errors)
            if len(records) >= max_records:
                break
            await asyncio.sleep(0)  # taking buffered records does not yield
            got = await take(0, min(FETCH_SLICE, max_records - len(records)))
            if not got:
                break
        return Fetched(records, concat_batches(parts), errors, first, last, spans)

    async def _finish(self, consumer: AIOKafkaConsumer, tail: BatchTail | None, f: Fetched) -> None:
        if tail is not None:
            await self.worker.finish(tail)
        await consumer.commit({tp: OffsetAndMetadata(o + 1, "") for tp, o in f.last.items()})

    async def _settle(self) -> Fetched | None:
        """Wait for the batch in flight; the batch itself if it failed (not committed)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is None:
            return None
        try:
            await in_flight.task
        except asyncio.CancelledError:
            raise
        except Exception:
            # Broker or bug: nothing of this batch is committed; it is judged again
            # (derived ids: what was already emitted is re-emitted identically).
            log.exception("readings batch failed; reading it again")
            await asyncio.sleep(1.0)
            return in_flight.fetched
        return None

    async def _settle_or_rewind(
        self, consumer: AIOKafkaConsumer, fetched_after: Fetched | None = None
    ) -> bool:
        """Wait for the batch in flight; if it failed, read it again, and the batch fetched
        after it too. False when it failed."""
        failed = await self._settle()
        if failed is None:
            return True
        self._rewind(consumer, failed, *([fetched_after] if fetched_after else []))
        return False

    def _rewind(self, consumer: AIOKafkaConsumer, *batches: Fetched) -> None:
        """Read these uncommitted batches again: each partition from their first offset."""
        start: dict[TopicPartition, int] = {}
        for f in batches:
            for tp, offset in f.first.items():
                start[tp] = min(offset, start.get(tp, offset))
        for tp, offset in start.items():
            consumer.seek(tp, offset)


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

    @app.task
    async def readings() -> None:
        await pump.run()

    @app.timer(10.0)
    async def annuli_by_level() -> None:
        worker.count_levels()

    return app, ctx

"""The MAASP worker's bulk consumer of ``wims.readings`` (:class:`ReadingsPump`), and the
one-off publication of an annulus config by hand (``wims publish-annulus-config``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from bisect import bisect_right
from dataclasses import dataclass, field
from operator import itemgetter
from typing import TYPE_CHECKING, Any, NamedTuple

import faust
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from services.maasp.config import annulus_key
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.readings import ReadingBatch, concat_batches, decode_readings
from shared.infrastructure.compat.faust_worker import active_partitions, settling
from shared.infrastructure.compat.record_batches import RecordTaker
from shared.infrastructure.gc_tuning import collection_paused, freeze_startup_heap
from shared.infrastructure.settings import Settings

if TYPE_CHECKING:
    from services.maasp.processing import BatchTail, MaaspWorker

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
class InFlight:
    """A judged batch whose acks, state writes and offset commit are still under way."""

    fetched: Fetched
    task: asyncio.Task


class ReadingsPump:
    """Consumes wims.readings in bulk, following the faust app's partition assignment.

    faust's per-message stream costs more than judging a reading, so readings bypass it:
    one aiokafka consumer fetches whole batches of the wims.readings
    partitions whose numbers the faust app is assigned for wims.annulus-config, together
    with the same partitions of its tables' changelogs. The topics are co-partitioned by
    annulus id, so those are the annuli whose configs and runtime states (faust tables,
    recovered by faust) this worker holds.

    - The consumer has its own group (``<app id>-readings``) and only commits, never joins:
      partitions are assigned by hand, so the faust group stays the one that decides who
      owns which annuli.
    - Records are taken off the consumer a record batch at a time
      (:mod:`shared.infrastructure.compat.record_batches`), not as a ConsumerRecord per message.
    - A batch's offsets are committed after its events and states are acknowledged
      (:meth:`MaaspWorker.finish`), so a SIGKILL replays at most the batches in flight.
    - Two batches overlap: while batch N's acks, state writes and commit are under way
      (the broker's work), batch N+1 is fetched and decoded (pure work, no state). N+1 is
      judged only once N is finished, so it starts from N's stored states, and its events
      follow N's. If N fails, both are read again from N's offsets.
    - On a revocation, and on a graceful stop before the consumer leaves the group
      (faust revokes nothing then), faust waits for the batch in flight (its handler takes
      the lock and finishes it), which is then committed; nothing is judged again until the rebalance
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
        """The wims.annulus-config partitions faust assigned this worker *with* the same
        partitions of both tables' changelogs: the annuli whose config and runtime state
        this worker recovered. An assignment that splits them (see
        shared.infrastructure.compat.faust_worker, 4.) leaves the rest unread here until
        the group assigns them again: judged without its state, an annulus starts from
        "unknown" and raises an exceedance already raised."""
        return sorted(active_partitions(self.app, topics.ANNULUS_CONFIG.name))

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
            # (measured, see shared.infrastructure.gc_tuning). So it is
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


async def publish_annulus_config(settings: Any, config: ev.AnnulusConfig) -> None:
    """Publish one AnnulusConfig on wims.annulus-config (acks=all), keyed by annulus id."""
    from aiokafka import AIOKafkaProducer

    from shared.contracts.topics import ANNULUS_CONFIG

    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            ANNULUS_CONFIG.name, value=config.encode(), key=annulus_key(config.annulus_id)
        )
    finally:
        await producer.stop()

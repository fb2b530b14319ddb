"""The readings sink: ``wims.readings`` into ``annulus_measurement``, in bulk, idempotently.

One consumer group (``wims-ingest-sink``), auto-commit off. Each ``getmany`` batch is
decoded into COPY lines (core.py, ``copy_line``) and written in one transaction
(store.py, ``write_lines``: a direct COPY, or a staging table and ``INSERT ... ON
CONFLICT DO NOTHING`` when the COPY hit a row already stored or an annulus deleted
meanwhile). After a conflict the next ``SLOW_PATH_BATCHES`` batches go straight to the
slow path: a historian re-sending overlapping windows would otherwise pay for a failed COPY
on every batch.

The database transaction commits first, the Kafka offsets of exactly that batch after: a
crash between the two replays the batch, which then inserts nothing. Writing is pipelined
with reading: while batch N is being written, batch N+1 is fetched from Kafka and decoded,
so the broker fetch, the JSON decoding and PostgreSQL's work overlap on different cores.
One write is in flight at a time, and batch N's offsets are committed before batch N+1's
write starts, so offsets are still committed in order and only after their rows.

A message that cannot be decoded is logged, counted and skipped (never a crash loop); a
reading whose annulus was deleted meanwhile is dropped and counted (it has no row to hang
on: annulus_measurement.annulus_id is a foreign key).
"""

import asyncio
import contextlib
import logging

import psycopg
from aiokafka import AIOKafkaConsumer, TopicPartition

from services.ingest import store
from services.ingest.core import copy_line
from services.ingest.errors import describe
from services.ingest.metrics import SINK_DROPPED, SINK_LAG, SINK_ROWS, SINK_UNDECODABLE
from shared.contracts import topics
from shared.infrastructure.retry import Backoff, is_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)
SINK_GROUP = "wims-ingest-sink"
#: Batches sent straight to the slow path after one whose fast COPY hit a conflict.
SLOW_PATH_BATCHES = 20
#: Messages taken from the consumer and decoded between two yields to the event loop.
DECODE_SLICE = 500


class MeasurementSink:
    def __init__(self, settings: Settings, group_id: str = SINK_GROUP) -> None:
        self._settings = settings
        self._group_id = group_id
        self.rows_written = 0
        self._slow_batches_left = 0
        self._lag: dict[int, int] = {}

    async def _next_batch(
        self, consumer: AIOKafkaConsumer
    ) -> tuple[list[str], dict[TopicPartition, int]]:
        """Up to ``ingest_sink_batch_size`` readings as COPY lines, and the offset to commit
        per partition once they are stored (both empty when nothing came in half a second).

        Taken from the consumer a slice at a time, yielding to the event loop between
        slices: the previous batch's write (its COPY round trips) goes on meanwhile, instead
        of waiting for thousands of records to be unpacked and decoded in one go."""
        lines: list[str] = []
        offsets: dict[TopicPartition, int] = {}
        limit = self._settings.ingest_sink_batch_size
        taken, timeout_ms = 0, 500  # wait for the first slice only, then take what is there
        while taken < limit:
            part = await consumer.getmany(
                timeout_ms=timeout_ms, max_records=min(DECODE_SLICE, limit - taken)
            )
            if not part:
                break
            for tp, messages in part.items():
                taken += len(messages)
                offsets[tp] = messages[-1].offset + 1
                for msg in messages:
                    try:
                        lines.append(copy_line(msg.value))
                    except ValueError as exc:
                        SINK_UNDECODABLE.inc()
                        log.warning(
                            "wims.readings %s@%s undecodable, skipped: %s", tp, msg.offset, exc
                        )
            timeout_ms = 0
            await asyncio.sleep(0)
        return lines, offsets

    def _update_lag(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            high = consumer.highwater(tp)
            if high is not None:
                self._lag[tp.partition] = max(0, high - offset)
        SINK_LAG.set(sum(self._lag.values()))

    async def _write(self, conn: psycopg.AsyncConnection, lines: list[str]) -> tuple[int, int]:
        fast = self._slow_batches_left == 0
        inserted, dropped, staged = await store.write_lines(conn, lines, fast=fast)
        if not fast:
            self._slow_batches_left -= 1
        elif staged:
            self._slow_batches_left = SLOW_PATH_BATCHES
        return inserted, dropped

    async def _written(self, write: asyncio.Task[tuple[int, int]] | None) -> None:
        """Wait until a batch's rows are committed, and count them."""
        if write is not None:
            inserted, dropped = await write
            self.rows_written += inserted
            SINK_ROWS.inc(inserted)
            if dropped:
                SINK_DROPPED.inc(dropped)

    async def _consume(self, consumer: AIOKafkaConsumer, conn: psycopg.AsyncConnection) -> None:
        # The batch being written: its write (None if it had no decodable reading) and the
        # offsets to commit once its rows are committed.
        in_flight: tuple[asyncio.Task[tuple[int, int]] | None, dict[TopicPartition, int]] | None
        in_flight = None
        try:
            while True:
                lines, offsets = await self._next_batch(consumer)  # while the write goes on
                stored = None
                if in_flight is not None:
                    await self._written(in_flight[0])
                    stored, in_flight = in_flight[1], None
                if offsets:
                    write = asyncio.create_task(self._write(conn, lines)) if lines else None
                    in_flight = (write, offsets)
                    await asyncio.sleep(0)  # the write sends its COPY before anything else
                if stored:
                    # Only after its rows are committed; this round trip overlaps the next write.
                    await consumer.commit(stored)
                    self._update_lag(consumer, stored)
        finally:
            if in_flight is not None and in_flight[0] is not None:
                # Not committed: its offsets stay uncommitted and the batch is replayed.
                in_flight[0].cancel()
                with contextlib.suppress(BaseException):
                    await in_flight[0]

    async def run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        while True:
            consumer = AIOKafkaConsumer(
                topics.READINGS.name,
                bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=self._group_id,
                client_id="wims-ingest-sink",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # Bounded prefetch: the sink shares its process with the HTTP ingest path.
                fetch_max_bytes=16 * 1024 * 1024,
                max_partition_fetch_bytes=4 * 1024 * 1024,
            )
            conn: psycopg.AsyncConnection | None = None
            try:
                conn = await store.connect_sink(self._settings)
                await consumer.start()
                backoff.reset()
                await self._consume(consumer, conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Kafka or the database away: restart from the committed offsets, so no
                # reading is skipped. Anything else is a bug worth its traceback.
                delay = backoff.next()
                log.log(
                    logging.WARNING if is_transient(exc) else logging.ERROR,
                    "readings sink: %s; restarting in %.1f s",
                    describe(exc),
                    delay,
                    exc_info=not is_transient(exc),
                )
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()

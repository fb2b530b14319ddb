"""Accepted readings to ``wims.readings``, rejected ones to ``wims.readings.rejected`` (the
dead letter's value is core.py's ``rejected_value``).

One long-lived idempotent producer (acks=all). A request's readings are appended straight
into one record batch per partition (``create_batch`` / ``send_batch``) and the request
waits until Kafka has acknowledged every batch: a 202 means the data is durable.

Why not ``producer.send()`` per reading: it costs several microseconds of pure Python per
message (serialiser checks, the pure-Python murmur2 partitioner, accumulator bookkeeping),
a large share of the 50,000 readings/s budget. Here the partition of an annulus is computed
once (the same murmur2 the default partitioner uses, so readings stay co-partitioned with
``wims.annulus-config``) and the Reading JSON is written by the readings codec
(``shared.contracts.readings.encode_reading``, byte-identical to ``shared.contracts.events.Reading``).

When Kafka does not acknowledge within ``ingest_kafka_timeout_s`` the request gets
:class:`KafkaUnavailable` (-> 503) and the producer is *abandoned*: an idempotent aiokafka
producer retries a batch forever, so without that a push the client was told had failed
could still appear minutes later. A fresh producer (new producer id) serves the next request.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import murmur2

from services.ingest.core import rejected_value
from services.ingest.metrics import DEAD_LETTER_FAILURES, KAFKA_FAILURES, KAFKA_PRODUCE_SECONDS
from shared.contracts import topics
from shared.contracts.readings import encode_reading
from shared.contracts.topics import entity_key
from shared.domain.readings import NormalisedReading, Rejection
from shared.infrastructure.compat.producer_batches import send_batch_until
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)

READINGS_TOPIC = topics.READINGS.name
REJECTED_TOPIC = topics.READINGS_REJECTED.name
_dumps = orjson.dumps


class _Deadline:
    """When a push stops waiting for Kafka. The turns of the event loop a big push gives to
    other requests between two slices of its own work do not count: they are neither
    Kafka's time nor this push's, and counting them would answer 503 to a big push on a
    busy but healthy service."""

    __slots__ = ("at",)

    def __init__(self, timeout_s: float) -> None:
        self.at = time.monotonic() + timeout_s

    def left(self) -> float:
        return max(0.001, self.at - time.monotonic())

    def passed(self) -> bool:
        return time.monotonic() >= self.at

    async def turn(self) -> None:
        """Let other tasks run; the time they take is added to the deadline."""
        t0 = time.monotonic()
        await asyncio.sleep(0)
        self.at += time.monotonic() - t0


def _failed(exc: Exception) -> asyncio.Future[Any]:
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


async def _outcomes(futures: list[Any], step: int, deadline: _Deadline) -> list[Any]:
    """Each future's result or exception, in order (what ``gather(return_exceptions=True)``
    gives). Awaited one by one: gather over one future per dead letter (tens of thousands
    for a bad CSV) attaches and later runs a callback per future in one go."""
    results: list[Any] = []
    for i, future in enumerate(futures, 1):
        try:
            results.append(await future)
        except asyncio.CancelledError as exc:
            task = asyncio.current_task()
            # This push is being cancelled (its deadline passed: wait_for cancels us, and
            # with us the future we were awaiting), not the message: never swallow that,
            # or the push waits for Kafka far beyond its deadline.
            if (task is not None and task.cancelling()) or not (
                future.done() and future.cancelled()
            ):
                raise
            results.append(exc)
        except Exception as exc:
            results.append(exc)
        if i % step == 0:
            await deadline.turn()
    return results


class KafkaUnavailable(Exception):
    """Kafka did not acknowledge in time (or refused): nothing may be claimed as accepted."""


def partition_of(key: bytes, n_partitions: int) -> int:
    """The partition Kafka's default partitioner picks for ``key`` (murmur2, positive, mod n)."""
    return (murmur2(key) & 0x7FFFFFFF) % n_partitions


class ReadingPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self._starting: asyncio.Lock | None = None
        self._partitions: list[int] | None = None
        # annulus_id -> (key bytes, partition): the partitioner runs once per annulus.
        self._routes: dict[int, tuple[bytes, int]] = {}
        self._abandoned: set[asyncio.Task[None]] = set()

    def _new_producer(self) -> AIOKafkaProducer:
        s = self._settings
        return AIOKafkaProducer(
            bootstrap_servers=s.kafka_bootstrap,
            client_id="wims-ingest",
            enable_idempotence=True,
            acks="all",
            linger_ms=s.ingest_linger_ms,
            max_batch_size=s.ingest_max_batch_bytes,
            request_timeout_ms=int(s.ingest_kafka_timeout_s * 1000),
        )

    async def start(self) -> None:
        """Best effort at start-up: a broker that is away makes requests answer 503, and the
        producer is started on the first request after it is back."""
        with contextlib.suppress(KafkaUnavailable):
            await self._ready_producer(self._settings.ingest_kafka_timeout_s)

    async def _ready_producer(self, timeout_s: float) -> AIOKafkaProducer:
        if self._producer is not None and self._partitions is not None:
            return self._producer
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._producer is not None and self._partitions is not None:
                return self._producer
            producer = self._new_producer()
            try:
                await asyncio.wait_for(producer.start(), timeout_s)
                partitions = await asyncio.wait_for(
                    producer.partitions_for(READINGS_TOPIC), timeout_s
                )
            except Exception as exc:
                self._abandon(producer)
                raise KafkaUnavailable(f"Kafka producer could not start: {exc!r}") from exc
            self._producer, self._partitions = producer, sorted(partitions)
            self._routes.clear()  # the partition count may differ from the last producer's
            return producer

    def _route(self, annulus_id: int) -> tuple[bytes, int]:
        route = self._routes.get(annulus_id)
        if route is None:
            key = entity_key(annulus_id)
            assert self._partitions is not None
            route = (key, self._partitions[partition_of(key, len(self._partitions))])
            self._routes[annulus_id] = route
        return route

    async def publish(
        self,
        readings: Sequence[NormalisedReading],
        well_of: dict[int, int],
        received_at: datetime,
        rejections: Sequence[Rejection] = (),
        source: str = "",
    ) -> None:
        """Write ``readings`` (and dead letters for ``rejections``) and wait for Kafka's ack.

        Raises KafkaUnavailable if the readings were not all acknowledged in time. A failure
        to dead-letter rejections alone is logged and counted, not raised: the client still
        gets the reasons in its answer.
        """
        if not readings and not rejections:
            return
        timeout = self._settings.ingest_kafka_timeout_s
        deadline = _Deadline(timeout)
        step = self._settings.ingest_slice_records
        t0 = time.perf_counter()
        producer = await self._ready_producer(timeout)
        try:
            reading_futures = await self._send_readings(
                producer, readings, well_of, received_at, deadline
            )
            dead_futures: list[Any] = []
            key = source.encode()
            for i, r in enumerate(rejections, 1):
                try:
                    value = rejected_value(r, source, received_at)
                    dead_futures.append(await producer.send(REJECTED_TOPIC, value, key=key))
                except KafkaTimeoutError:
                    raise  # the broker is away: the readings will not make it either
                except Exception as exc:  # this dead letter alone (a value pydantic refused...)
                    dead_futures.append(_failed(exc))
                if i % step == 0:
                    await deadline.turn()  # a pydantic model per dead letter: let others in
            results = await asyncio.wait_for(
                _outcomes([*reading_futures, *dead_futures], step, deadline), deadline.left()
            )
        except Exception as exc:  # timeout, broker errors, producer closed under us
            self._fail(producer)
            raise KafkaUnavailable(f"Kafka did not acknowledge the readings: {exc!r}") from exc
        failed = [r for r in results[: len(reading_futures)] if isinstance(r, BaseException)]
        if failed:
            self._fail(producer)
            raise KafkaUnavailable(f"Kafka refused the readings: {failed[0]!r}")
        dead_failed = sum(isinstance(r, BaseException) for r in results[len(reading_futures) :])
        if dead_failed:
            DEAD_LETTER_FAILURES.inc(dead_failed)
            log.warning("%d rejected readings could not be dead-lettered", dead_failed)
        if readings:
            KAFKA_PRODUCE_SECONDS.observe(time.perf_counter() - t0)

    async def _send_readings(
        self,
        producer: AIOKafkaProducer,
        readings: Sequence[NormalisedReading],
        well_of: dict[int, int],
        received_at: datetime,
        deadline: _Deadline,
    ) -> list[Any]:
        builders: dict[int, Any] = {}
        futures: list[Any] = []
        route = self._route
        routes = self._routes
        well_get = well_of.get
        encode = encode_reading
        step = self._settings.ingest_slice_records
        for start in range(0, len(readings), step):
            if start:
                # Encoding holds the loop; a big push lets other requests in between slices
                # (an awaited send_batch with room in the accumulator does not yield).
                await deadline.turn()
            for reading in readings[start : start + step]:
                aid = reading.annulus_id
                key_part = routes.get(aid) or route(aid)
                key, partition = key_part
                builder = builders.get(partition)
                if builder is None:
                    builder = builders[partition] = producer.create_batch()
                value = encode(reading, well_get(aid), received_at)
                if builder.append(timestamp=None, key=key, value=value) is None:
                    # The batch is full: hand it over and start the next one for this partition.
                    futures.append(
                        await send_batch_until(
                            producer, builder, READINGS_TOPIC, partition, deadline
                        )
                    )
                    builder = builders[partition] = producer.create_batch()
                    builder.append(timestamp=None, key=key, value=value)
        for partition, builder in builders.items():
            futures.append(
                await send_batch_until(producer, builder, READINGS_TOPIC, partition, deadline)
            )
        return futures

    def _fail(self, producer: AIOKafkaProducer) -> None:
        KAFKA_FAILURES.inc()
        if self._producer is producer:
            self._producer, self._partitions = None, None
            self._abandon(producer)

    def _abandon(self, producer: AIOKafkaProducer) -> None:
        task = asyncio.get_running_loop().create_task(_close_without_flush(producer))
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                # A clean shutdown flushes what is pending (every request awaiting it is
                # still waiting for its answer).
                await asyncio.wait_for(producer.stop(), 5)
        for task in list(self._abandoned):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 2)


async def _close_without_flush(producer: AIOKafkaProducer) -> None:
    # aiokafka's stop() flushes first, and with idempotence its sender retries a batch
    # until it succeeds. Cancelling the sender task first drops the pending batches, so a
    # push answered 503 is never written later behind the client's back.
    sender = getattr(producer, "_sender", None)
    with contextlib.suppress(Exception):
        if sender is not None:
            await asyncio.wait_for(sender.close(), 2)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(producer.stop(), 2)

"""Workarounds of shared.infrastructure.compat against a real broker, each shown failing without it.

producer-knows-changelogs (shared.infrastructure.compat.faust_worker): aiokafka's partitioner fails on a topic its producer has not fetched yet (the
first-minutes defect: every table write of a new worker could fail so), and the guarded
faust producer turns that into a transient error that a retry gets past.

add-batch-early-timeout (shared.infrastructure.compat.producer_batches): many record batches waiting for
one partition time out in aiokafka long before their timeout; send_batch_until does not."""

import asyncio
import time
import uuid

import faust
import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaTimeoutError
from aiokafka.partitioner import murmur2

from shared.infrastructure.compat.faust_worker import TopicPartitionsUnknown, install
from shared.infrastructure.compat.producer_batches import At, send_batch_until
from shared.infrastructure.retry import is_transient, retry_transient
from shared.infrastructure.settings import Settings


async def new_topic(settings: Settings, partitions: int) -> str:
    name = f"test-changelog-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def test_a_table_write_before_the_producer_knows_the_changelog_is_retried_not_lost(
    settings: Settings,
) -> None:
    topic = await new_topic(settings, 6)
    app = faust.App(
        f"test-compat-{uuid.uuid4().hex[:6]}", broker=f"kafka://{settings.kafka_bootstrap}"
    )
    producer = app.producer
    await producer.start()
    try:
        aiokafka_producer = producer._ensure_producer()
        # Without the workaround: the library's own partitioner on a topic just created.
        with pytest.raises(TypeError, match="not iterable"):
            aiokafka_producer._partition(topic, None, None, None, b"17", None)

        install()
        with pytest.raises(TopicPartitionsUnknown) as caught:
            producer.key_partition(topic, b"17")
        assert is_transient(caught.value)

        # What a worker does with it: retry until the metadata it asked for has arrived.
        async def place() -> int:
            return producer.key_partition(topic, b"17").partition

        partition = await retry_transient("test", "place", place)
        # The partition every WIMS producer gives key b"17" (co-partitioning holds).
        assert partition == (murmur2(b"17") & 0x7FFFFFFF) % 6
    finally:
        await producer.stop()


async def _queue_batches(
    settings: Settings, topic: str, count: int, until: float | None
) -> tuple[int, int]:
    """``count`` single-record batches queued at once for one partition, through aiokafka's
    own send_batch (``until`` None) or send_batch_until; (acknowledged, timed out)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=1500, linger_ms=0
    )
    await producer.start()
    try:

        async def one(i: int) -> bool:
            builder = producer.create_batch()
            builder.append(key=None, value=b"x" * 20_000, timestamp=None)
            try:
                if until is None:
                    fut = await producer.send_batch(builder, topic, partition=0)
                else:
                    fut = await send_batch_until(producer, builder, topic, 0, At(until))
                await fut
                return True
            except KafkaTimeoutError:
                return False

        done = await asyncio.gather(*(one(i) for i in range(count)))
        return sum(done), len(done) - sum(done)
    finally:
        await producer.stop()


async def test_many_pushes_waiting_for_one_partition_are_not_refused_early(
    settings: Settings,
) -> None:
    topic = await new_topic(settings, 1)
    started = time.monotonic()
    acked, timed_out = await _queue_batches(settings, topic, 400, None)
    plain_s = time.monotonic() - started
    # aiokafka alone: add_batch subtracts the whole time waited on every wake-up, so
    # waiters give up although Kafka acknowledges everything it is sent.
    assert timed_out > 0, f"all {acked} queued without the early time-out ({plain_s:.1f} s)"
    acked, timed_out = await _queue_batches(settings, topic, 400, time.monotonic() + 60)
    assert (acked, timed_out) == (400, 0)

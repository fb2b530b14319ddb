"""The producer-knows-changelogs workaround (shared.compat.faust_worker) against a real
broker: aiokafka's partitioner fails on a topic its producer has not fetched yet (the
first-minutes defect: every table write of a new worker could fail so), and the guarded
faust producer turns that into a transient error that a retry gets past."""

import uuid

import faust
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.partitioner import murmur2

from shared.compat.faust_worker import TopicPartitionsUnknown, install
from shared.retry import is_transient, retry_transient
from shared.settings import Settings


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

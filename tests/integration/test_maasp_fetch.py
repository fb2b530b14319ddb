"""The readings pump's record taker against a real broker: taking whole record batches out of
the consumer's buffer hands over exactly what aiokafka's getmany does, in the same order,
and leaves the consumer at the same position (shared.infrastructure.compat.record_batches)."""

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.infrastructure.compat.record_batches import RecordTaker
from shared.infrastructure.settings import Settings

Taken = list[tuple[int, int, bytes]]  # (partition, offset, value)


async def new_topic(settings: Settings, partitions: int) -> str:
    name = f"test-fetch-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def produce(settings: Settings, topic: str, per_partition: int, partitions: int) -> None:
    """Many small record batches per partition (max_batch_size 2 KiB), then, on partition
    0, a committed, an aborted and a committed transaction (each ends in a control batch)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_batch_size=2048, linger_ms=5
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, f"p{p}-{i:05d}".encode() * 4, partition=p)
            for i in range(per_partition)
            for p in range(partitions)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    tx = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, transactional_id=f"{topic}-tx"
    )
    await tx.start()
    try:
        async with tx.transaction():
            for i in range(20):
                await tx.send(topic, f"committed-{i}".encode(), partition=0)
        await tx.begin_transaction()
        for i in range(5):
            await tx.send(topic, f"aborted-{i}".encode(), partition=0)
        await tx.abort_transaction()
        async with tx.transaction():
            await tx.send(topic, b"after", partition=0)
    finally:
        await tx.stop()


async def consumer_on(settings: Settings, topic: str, partitions: list[int]) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=64 * 1024,  # several fetches per partition
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, p) for p in partitions])
    return consumer


async def take_until_end(
    consumer: AIOKafkaConsumer, take: Callable[[int, int], Awaitable[dict]], max_records: int
) -> Taken:
    tps = sorted(consumer.assignment())
    end = await consumer.end_offsets(tps)
    out: Taken = []
    deadline = asyncio.get_running_loop().time() + 60
    while any([await consumer.position(tp) < end[tp] for tp in tps]):
        positions = {tp.partition: await consumer.position(tp) for tp in tps}
        assert asyncio.get_running_loop().time() < deadline, f"stuck at {positions}, end {end}"
        for tp, records in (await take(1000, max_records)).items():
            assert len(records) <= max_records
            # What is handed over is consumed: a commit now would not read it again
            # (beyond it: a transaction marker after the last record is consumed too).
            assert await consumer.position(tp) >= records[-1].offset + 1
            out += [(tp.partition, r.offset, r.value) for r in records]
    return out


def by_partition(taken: Taken) -> dict[int, list[tuple[int, bytes]]]:
    parts: dict[int, list[tuple[int, bytes]]] = {}
    for p, offset, value in taken:
        parts.setdefault(p, []).append((offset, value))
    return parts


Scenario = Callable[[AIOKafkaConsumer, RecordTaker], Awaitable[Taken]]


async def both_ways(
    settings: Settings, topic: str, partitions: list[int], scenario: Scenario
) -> tuple[Taken, Taken]:
    """The scenario run with the batch taker and with getmany, each on a new consumer."""
    results = []
    for bulk in (True, False):
        consumer = await consumer_on(settings, topic, partitions)
        try:
            taker = RecordTaker(consumer, bulk=bulk)
            assert taker.bulk is bulk  # the pinned aiokafka takes the batch path
            results.append(await scenario(consumer, taker))
        finally:
            await consumer.stop()
    return results[0], results[1]


@pytest.mark.parametrize("max_records", [7, 100_000])
async def test_whole_record_batches_hand_over_what_getmany_does(
    settings: Settings, max_records: int
) -> None:
    topic = await new_topic(settings, 3)
    await produce(settings, topic, per_partition=400, partitions=3)

    async def scenario(consumer: AIOKafkaConsumer, taker: RecordTaker) -> Taken:
        return await take_until_end(consumer, taker.take, max_records)

    batched, stock = await both_ways(settings, topic, [0, 1, 2], scenario)

    assert by_partition(batched) == by_partition(stock)
    parts = by_partition(batched)
    for p in (1, 2):  # every record once, in offset order
        assert [v for _, v in parts[p]] == [f"p{p}-{i:05d}".encode() * 4 for i in range(400)]
        assert [o for o, _ in parts[p]] == list(range(400))
    # Partition 0: transaction markers skipped (their offsets are not handed over);
    # read_uncommitted hands over the aborted records too, as getmany does.
    values0 = [v for _, v in parts[0]]
    assert values0[400:] == [
        *(f"committed-{i}".encode() for i in range(20)),
        *(f"aborted-{i}".encode() for i in range(5)),
        b"after",
    ]
    offsets0 = [o for o, _ in parts[0]]
    assert offsets0[419] + 2 == offsets0[420]  # the commit marker's offset between them


async def test_a_fetch_from_the_middle_of_a_batch_and_a_seek_back_start_where_asked(
    settings: Settings,
) -> None:
    topic = await new_topic(settings, 1)
    await produce(settings, topic, per_partition=300, partitions=1)
    tp = TopicPartition(topic, 0)

    async def scenario(consumer: AIOKafkaConsumer, taker: RecordTaker) -> Taken:
        with pytest.raises(ValueError, match="max_records"):
            await taker.take(0, 0)
        consumer.seek(tp, 37)  # inside a record batch: the broker returns all of it
        first = await taker.take(5000, 10)
        assert [r.offset for r in first[tp]] == list(range(37, 47))
        consumer.seek(tp, 5)  # back, while the rest of the fetch is still buffered
        rest = await take_until_end(consumer, taker.take, 50)
        assert rest[0][1] == 5
        assert await consumer.position(tp) == (await consumer.end_offsets([tp]))[tp]
        return [(0, r.offset, r.value) for r in first[tp]] + rest

    batched, stock = await both_ways(settings, topic, [0], scenario)
    assert batched == stock


async def test_records_of_a_partition_paused_or_no_longer_assigned_are_not_handed_over(
    settings: Settings,
) -> None:
    topic = await new_topic(settings, 3)
    await produce(settings, topic, per_partition=300, partitions=3)
    tp1, tp2 = TopicPartition(topic, 1), TopicPartition(topic, 2)

    async def scenario(consumer: AIOKafkaConsumer, taker: RecordTaker) -> Taken:
        await taker.take(5000, 3)  # every partition's fetch is buffered now
        consumer.assign([tp1, tp2])  # partition 0 taken away; 1 and 2 start again
        taken = [
            (tp.partition, r.offset, r.value)
            for tp, records in (await taker.take(5000, 3)).items()
            for r in records
        ]
        consumer.pause(tp2)  # its buffered records stay where they are
        paused_at = await consumer.position(tp2)
        while await consumer.position(tp1) < 300:
            taken += [(1, r.offset, r.value) for r in (await taker.take(1000, 64)).get(tp1, [])]
        assert not (await taker.take(200, 64))  # nothing of the paused partition
        assert await consumer.position(tp2) == paused_at
        assert [o for p, o, _ in taken if p == 2] == list(range(paused_at))
        return taken

    batched, stock = await both_ways(settings, topic, [0, 1, 2], scenario)
    for taken in (batched, stock):
        assert {p for p, _, _ in taken} <= {1, 2}
        assert [o for p, o, _ in taken if p == 1] == list(range(300))

"""Bare aiokafka clients, one per process, for bench.scale's baselines: what Kafka and N
Python processes deliver on this machine with no work at all.

    python -m bench.scale.bare consume TOPIC PARTITIONS    (PARTITIONS e.g. 0,2,4)
    python -m bench.scale.bare produce SECONDS START_AT    (START_AT: a time.time() value)

``consume`` reads its partitions from the beginning to their end offsets; ``produce`` reads
readings back from wims.readings (as bench.ingest's baseline does), waits for START_AT so
several processes begin together, then sends them to ``bench.scale-baseline`` for SECONDS
in groups of 1,000 (acks=all, idempotent, the ingest service's linger and batch size), four
groups in flight. Each prints ``BEGIN`` when its measured stretch starts and
``RATE <records/s> <records>`` when it ends, then, unless its stdin is a terminal, waits for
its stdin to close before exiting: bench.scale reads its CPU over that stretch from /proc,
which it can only do while the process exists.
"""

import asyncio
import sys
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.ingest.__main__ import ingest_like_producer, read_back
from shared.infrastructure.settings import get_settings

BASELINE_TOPIC = "bench.scale-baseline"
GROUP = 1000
IN_FLIGHT = 4


_begun = False


def begin() -> None:
    """Say that the measured stretch starts (once)."""
    global _begun
    if not _begun:
        _begun = True
        print("BEGIN", flush=True)


async def consume(topic: str, partitions: list[int]) -> tuple[float, int]:
    settings = get_settings()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        want = sum(ends.values()) - sum([await consumer.position(tp) for tp in tps])
        seen, first = 0, None
        while seen < want:
            for records in (await consumer.getmany(timeout_ms=1000, max_records=10000)).values():
                if first is None and records:
                    first = time.monotonic()
                    begin()
                seen += len(records)
        took = time.monotonic() - (first or time.monotonic())
        return (seen / took if took > 0 else 0.0), seen
    finally:
        await consumer.stop()


async def produce(seconds: float, start_at: float) -> tuple[float, int]:
    settings = get_settings()
    records = await read_back(settings, limit=200_000)
    producer = await ingest_like_producer(settings, BASELINE_TOPIC)
    try:
        await producer.send_and_wait(BASELINE_TOPIC, records[0][1], key=records[0][0])
        await asyncio.sleep(max(0.0, start_at - time.time()))
        groups = [records[i : i + GROUP] for i in range(0, len(records), GROUP)]
        state = {"next": 0, "sent": 0}
        stop_at = time.monotonic() + seconds

        async def one() -> None:
            while time.monotonic() < stop_at:
                group = groups[state["next"] % len(groups)]
                state["next"] += 1
                futures = [await producer.send(BASELINE_TOPIC, v, key=k) for k, v in group]
                await asyncio.gather(*futures)
                state["sent"] += len(group)

        t0 = time.monotonic()
        begin()
        await asyncio.gather(*(one() for _ in range(IN_FLIGHT)))
        return state["sent"] / (time.monotonic() - t0), state["sent"]
    finally:
        await producer.stop()


def main(argv: list[str]) -> int:
    if argv[0] == "consume":
        rate, n = asyncio.run(consume(argv[1], [int(p) for p in argv[2].split(",")]))
    else:
        rate, n = asyncio.run(produce(float(argv[1]), float(argv[2])))
    begin()  # a consumer with nothing to read never began
    print(f"RATE {rate:.1f} {n}", flush=True)
    if not sys.stdin.isatty():
        sys.stdin.read()  # until bench.scale, having read this process's CPU, closes it
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""``python -m bench.ingest``: ingest throughput and sink throughput, each beside a baseline.

1. Push. One ingest process (its sink switched off, so the HTTP path has the process to
   itself) receives JSON batches of 1,000 readings from ``CONCURRENCY`` concurrent
   requests for ``BENCH_INGEST_S`` seconds. Request bodies are encoded before timing (the
   client shares the 2 cores). Printed: readings/s accepted (a 202 means Kafka acknowledged
   them), p50/p99 request latency.
   Baseline: a bare aiokafka producer (idempotent, acks=all, same linger and batch size) in
   this process sending the very same records (read back from wims.readings) with
   ``send()``, the same concurrency of 1,000-record groups, each group awaited.
2. Sink. The sink (services.ingest.pump.MeasurementSink, run here under a fresh consumer
   group) writes everything the push phase left on wims.readings into annulus_measurement;
   rows/s from its first committed batch to its last. Baseline: a bare psycopg COPY of the
   same rows (read back from the table) into the same, emptied table, in transactions of
   the same size.

Environment: BENCH_INGEST_S (push seconds, default 10), BENCH_INGEST_CONCURRENCY (4),
WIMS_TEST_PORT_OFFSET (ports, as for the tests).
"""

import asyncio
import contextlib
import io
import json
import os
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from services.ingest.pump import MeasurementSink
from shared.contracts import topics
from shared.infrastructure.settings import Settings
from tests.support.stack import Stack, local_stack, start_service

PUSH_S = float(os.environ.get("BENCH_INGEST_S", "10"))
CONCURRENCY = int(os.environ.get("BENCH_INGEST_CONCURRENCY", "4"))
BATCH = 1000
ANNULI = 200
MAX_BODIES = 1500  # 1.5 M distinct readings; a faster server cycles through them again
BASELINE_TOPIC = "bench.ingest-baseline"


def setup(settings: Settings) -> tuple[list[int], str]:
    from shared.infrastructure.db import make_engine
    from shared.persistence.migrate import upgrade
    from tests.support.factories import make_annulus, make_api_key, make_well

    upgrade(settings)
    engine = make_engine(settings)
    annuli = []
    for w in range(ANNULI // 4):
        well_id = make_well(engine, name=f"BENCH-{w}")
        annuli += [make_annulus(engine, well_id, name=n) for n in "ABCD"]
    key = make_api_key(engine, source="bench")
    engine.dispose()
    return annuli, key


def make_bodies(annuli: list[int]) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(days=3)
    per_body = BATCH // len(annuli)
    bodies = []
    for b in range(MAX_BODIES):
        records = []
        for k in range(per_body):
            stamp = (start + timedelta(seconds=b * per_body + k)).isoformat().replace("+00:00", "Z")
            for i, aid in enumerate(annuli):
                records.append({"annulus_id": aid, "timestamp": stamp, "pressure": 20.0 + i / 10})
        bodies.append(orjson.dumps(records))
    return bodies


async def push_phase(
    base_url: str, key: str, bodies: list[bytes], concurrency: int = CONCURRENCY
) -> dict[str, Any]:
    url = f"{base_url}/ingest/v1/readings"
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    latencies: list[float] = []
    state = {"next": 0, "accepted": 0, "errors": 0}
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as c:
        # Warm-up: connections, caches, the producer, and the partition leaders of a
        # freshly created topic (until three pushes in a row are accepted, at most 60 s).
        warm_until, accepted_in_row = time.monotonic() + 60, 0
        while accepted_in_row < 3 and time.monotonic() < warm_until:
            r = await c.post(url, content=bodies[accepted_in_row], headers=headers)
            accepted_in_row = accepted_in_row + 1 if r.status_code == 202 else 0
        state["next"] = 3
        stop_at = time.monotonic() + PUSH_S

        async def worker() -> None:
            while time.monotonic() < stop_at:
                body = bodies[state["next"] % len(bodies)]
                state["next"] += 1
                t0 = time.perf_counter()
                r = await c.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if r.status_code == 202:
                    state["accepted"] += r.json()["accepted"]
                else:
                    state["errors"] += 1
                    print(f"  push answered {r.status_code}: {r.text[:300]}", flush=True)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.monotonic() - t0
    latencies.sort()
    return {
        "rate": state["accepted"] / elapsed,
        "accepted": state["accepted"],
        "errors": state["errors"],
        "p50": statistics.median(latencies),
        "p99": latencies[int(0.99 * (len(latencies) - 1))],
        "requests": len(latencies),
    }


async def read_back(settings: Settings, limit: int) -> list[tuple[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topics.READINGS.name, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[tuple[bytes, bytes]] = []
        idle = 0
        while len(out) < limit and idle < 5:
            batch = await consumer.getmany(timeout_ms=500, max_records=20_000)
            idle = 0 if batch else idle + 1
            for messages in batch.values():
                out += [(m.key, m.value) for m in messages]
        return out[:limit]
    finally:
        await consumer.stop()


async def ingest_like_producer(settings: Settings, topic: str = BASELINE_TOPIC) -> AIOKafkaProducer:
    """A started bare producer with ingest's producer settings, and ``topic`` made with the
    readings topic's partitions (bench.ingest and bench.scale measure their bare baselines
    with it)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        with contextlib.suppress(TopicAlreadyExistsError):
            await admin.create_topics(
                [NewTopic(topic, settings.topic_partitions, replication_factor=1)]
            )
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.ingest_linger_ms,
        max_batch_size=settings.ingest_max_batch_bytes,
    )
    await producer.start()
    return producer


async def baseline_producer(settings: Settings, records: list[tuple[bytes, bytes]]) -> float:
    producer = await ingest_like_producer(settings)
    try:
        await producer.send_and_wait(BASELINE_TOPIC, records[0][1], key=records[0][0])
        groups = [records[i : i + BATCH] for i in range(0, len(records), BATCH)]
        state = {"next": 0, "sent": 0}
        stop_at = time.monotonic() + PUSH_S

        async def worker() -> None:
            while time.monotonic() < stop_at and state["next"] < len(groups):
                group = groups[state["next"]]
                state["next"] += 1
                futures = [await producer.send(BASELINE_TOPIC, v, key=k) for k, v in group]
                await asyncio.gather(*futures)
                state["sent"] += len(group)

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        return state["sent"] / (time.monotonic() - t0)
    finally:
        await producer.stop()


async def sink_phase(settings: Settings, expected: int) -> float:
    sink = MeasurementSink(settings, group_id=f"bench-sink-{time.time_ns()}")
    task = asyncio.create_task(sink.run())
    try:
        first_t = first_rows = None
        deadline = time.monotonic() + 300
        while sink.rows_written < expected and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            if first_t is None and sink.rows_written:
                first_t, first_rows = time.monotonic(), sink.rows_written
        if sink.rows_written < expected or first_t is None:
            raise RuntimeError(f"sink wrote {sink.rows_written} of {expected} rows")
        return (sink.rows_written - first_rows) / (time.monotonic() - first_t)
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


def baseline_copy(settings: Settings) -> tuple[float, int]:
    cols = "id, annulus_id, timestamp, source, pressure_bar, temperature_c, quality, received_at"
    with psycopg.connect(settings.libpq_url) as conn:
        buf = io.BytesIO()
        # A partitioned table is copied out through a query.
        query = f"COPY (SELECT {cols} FROM annulus_measurement) TO STDOUT"
        with conn.cursor().copy(query) as copy:
            for data in copy:
                buf.write(data)
        lines = buf.getvalue().splitlines(keepends=True)
        conn.execute("TRUNCATE annulus_measurement")
        conn.commit()
        step = settings.ingest_sink_batch_size
        t0 = time.monotonic()
        for i in range(0, len(lines), step):
            with (
                conn.transaction(),
                conn.cursor().copy(f"COPY annulus_measurement ({cols}) FROM STDIN") as copy,
            ):
                copy.write(b"".join(lines[i : i + step]))
        return len(lines) / (time.monotonic() - t0), len(lines)


def distinct_pushed(accepted: int) -> int:
    # Bodies are cycled only past MAX_BODIES; below that every accepted reading is distinct.
    return min(accepted, MAX_BODIES * BATCH)


def main() -> int:
    with local_stack() as stack:
        return run(stack)


def run(stack: Stack) -> int:
    settings = stack.settings()
    from shared.infrastructure.kafka import ensure_topics

    asyncio.run(ensure_topics(settings))
    annuli, key = setup(settings)
    print("encoding request bodies...", flush=True)
    bodies = make_bodies(annuli)
    svc = start_service(stack, "ingest", extra_env={"WIMS_INGEST_SINK_ENABLED": "false"})
    svc.wait_ready()
    print(f"pushing for {PUSH_S:.0f} s with {CONCURRENCY} concurrent requests...", flush=True)
    push = asyncio.run(push_phase(svc.base_url, key, bodies))
    if push["errors"]:
        print(svc.log_tail(20), flush=True)
    svc.terminate()
    print(
        f"ingest: {push['rate']:,.0f} readings/s accepted ({push['accepted']:,} in "
        f"{push['requests']} requests, {push['errors']} errors), p50 {push['p50'] * 1000:.0f} ms, "
        f"p99 {push['p99'] * 1000:.0f} ms",
        flush=True,
    )
    records = asyncio.run(read_back(settings, limit=push["accepted"] + 3 * BATCH))
    bare = asyncio.run(baseline_producer(settings, records))
    print(f"bare aiokafka producer, same records: {bare:,.0f} records/s", flush=True)

    expected = distinct_pushed(push["accepted"] + 3 * BATCH)
    sink_rate = asyncio.run(sink_phase(settings, expected))
    copy_rate, copied = baseline_copy(settings)
    print(
        f"sink: {sink_rate:,.0f} rows/s; bare COPY of the same {copied:,} rows: "
        f"{copy_rate:,.0f} rows/s",
        flush=True,
    )
    figures = [
        {
            "name": "ingest readings accepted",
            "value": round(push["rate"]),
            "unit": "readings/s",
            "baseline": round(bare),
            "ratio": round(push["rate"] / bare, 3),
            "target": ">= 50000 readings/s, ratio >= 0.5",
        },
        {
            "name": "ingest request latency p50",
            "value": round(push["p50"] * 1000, 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
        {
            "name": "ingest request latency p99",
            "value": round(push["p99"] * 1000, 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
        {
            "name": "ingest sink rows written",
            "value": round(sink_rate),
            "unit": "rows/s",
            "baseline": round(copy_rate),
            "ratio": round(sink_rate / copy_rate, 3),
            "target": "ratio >= 0.7",
        },
    ]
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

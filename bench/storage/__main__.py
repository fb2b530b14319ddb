"""``python -m bench.storage``: bytes per reading in Kafka and in PostgreSQL, and what a
month of a large fleet stores.

1. Kafka. ``BENCH_STORAGE_READINGS`` (200,000) readings in the wire format of
   ``wims.readings`` (shared.contracts.readings.encode_reading, keyed by annulus) are
   produced with the ingest service's producer settings (idempotent, acks=all, same linger
   and batch size, no compression) to a fresh topic of the same partition count, then the
   topic's log segment files (``*.log`` under the broker's data folder; the sparse offset
   and time indexes are left out) are summed: bytes per record. The same again with gzip
   compression, for comparison.
2. PostgreSQL. The same number of readings (``ANNULI`` annuli, one reading each per
   second, in time order as a fleet reports) are written by the sink's own write path
   (services.ingest.store.write_lines: COPY into the weekly partition, the roll-up trigger
   firing), then VACUUM ANALYZE: the partition's total size (heap, TOAST and indexes) per
   row, and the hourly and daily roll-ups' size per row.
3. The fleet. ``FLEET_WELLS`` × ``TAGS_PER_WELL`` tags at 1 Hz (5,000 × 30 = 150,000
   readings/s): Kafka per day (one replica: multiply by the replication factor), raw
   PostgreSQL per day and per 30-day month, roll-ups per month, and the database at steady
   state with the default retention (raw 90 days, hourly 5 years, daily forever) against
   a year without retention.

Environment: BENCH_STORAGE_READINGS (200000), WIMS_TEST_PORT_OFFSET (ports, as for tests).
"""

import asyncio
import json
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from services.ingest.core import copy_line
from services.ingest.store import write_lines
from shared.contracts.enums import Quality
from shared.contracts.readings import encode_reading
from shared.contracts.topics import entity_key
from shared.domain.readings import NormalisedReading
from shared.infrastructure.settings import Settings
from shared.persistence.measurement_storage import WEEK, week_start
from tests.support.stack import local_stack

READINGS = int(os.environ.get("BENCH_STORAGE_READINGS", "200000"))
ANNULI = 1000
FLEET_WELLS, TAGS_PER_WELL, HZ = 5000, 30, 1.0
SOURCE = "pi-north"
DAY_S, MONTH_DAYS = 86_400, 30
RETENTION_DAYS, HOURLY_RETENTION_DAYS = 90, 1825


def readings(start: datetime) -> list[bytes]:
    """Wire-format values: every annulus once a second, in time order, realistic values."""
    received = datetime.now(UTC)
    out = []
    for i in range(READINGS):
        second, annulus = divmod(i, ANNULI)
        ts = start + timedelta(seconds=second, microseconds=(annulus * 997) % 1_000_000)
        r = NormalisedReading(
            annulus_id=annulus + 1,
            ts=ts,
            ts_epoch_us=0,
            pressure_bar=round(20.0 + (i * 7919 % 10_000) / 97.0, 3),
            temperature_c=round(40.0 + (i % 300) / 13.0, 2),
            quality=Quality.good,
            source=SOURCE,
            reading_id=uuid.uuid4(),
        )
        out.append(encode_reading(r, well_id=annulus // 3 + 1, received_at=received))
    return out


async def kafka_bytes(settings: Settings, values: list[bytes], compression: str | None) -> float:
    topic = f"bench.storage-{compression or 'none'}-{time.time_ns()}"
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, settings.topic_partitions, 1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=settings.ingest_linger_ms,
        max_batch_size=settings.ingest_max_batch_bytes,
        compression_type=compression,
    )
    await producer.start()
    try:
        for i in range(0, len(values), 5000):  # as ingest: a push's readings, then their acks
            futures = [
                await producer.send(topic, v, key=entity_key(i % ANNULI + 1))
                for i, v in enumerate(values[i : i + 5000], start=i)
            ]
            await asyncio.gather(*futures)
    finally:
        await producer.stop()
    data = Path(settings.run_dir) / "kafka-data"
    # The broker writes a batch to its segment before it acknowledges it (acks=all).
    size = sum(f.stat().st_size for f in data.glob(f"{topic}-*/*.log"))
    return size / len(values)


def setup_annuli(settings: Settings) -> None:
    with psycopg.connect(settings.libpq_url) as conn:
        conn.execute(
            "INSERT INTO well (id, name, field, type, status, location, measured_depth,"
            " consequence_level) SELECT g, 'S-' || g, 'F',"
            " 'oil_producer', 'active', 'platform', 3000, 3 FROM generate_series(1, %s) g",
            (ANNULI // 3 + 1,),
        )
        conn.execute(
            "INSERT INTO annulus (id, well_id, name, fluid_gradient_bar_per_m)"
            " SELECT g, (g - 1) / 3 + 1, 'A' || g, 0.1"
            " FROM generate_series(1, %s) g",
            (ANNULI,),
        )


async def write_all(settings: Settings, lines: list[str], batch: int) -> float:
    conn = await psycopg.AsyncConnection.connect(settings.libpq_url, autocommit=True)
    try:
        t0 = time.monotonic()
        for i in range(0, len(lines), batch):
            await write_lines(conn, lines[i : i + batch])
        return len(lines) / (time.monotonic() - t0)
    finally:
        await conn.close()


def pg_sizes(settings: Settings, partition: str) -> dict[str, float]:
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE annulus_measurement")
        conn.execute("VACUUM ANALYZE annulus_measurement_hourly")
        conn.execute("VACUUM ANALYZE annulus_measurement_daily")

        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        rows = one(f"SELECT count(*) FROM {partition}")

        def compact(table: str) -> float:
            # The roll-ups here are a few thousand rows, each updated once per batch: their
            # files are mostly dead row versions and fixed overhead. A fresh copy gives the
            # size per row of a large table whose updates reuse their pages.
            conn.execute(f"DROP TABLE IF EXISTS bench_{table}")
            conn.execute(f"CREATE TABLE bench_{table} (LIKE {table} INCLUDING ALL)")
            conn.execute(f"INSERT INTO bench_{table} SELECT * FROM {table}")
            conn.execute(f"VACUUM ANALYZE bench_{table}")
            n = one(f"SELECT count(*) FROM bench_{table}")
            size = one(
                f"SELECT pg_relation_size('bench_{table}') + pg_indexes_size('bench_{table}')"
            )
            return size / n

        return {
            "rows": rows,
            "raw_total": one(f"SELECT pg_total_relation_size('{partition}')") / rows,
            "raw_heap": one(f"SELECT pg_relation_size('{partition}')") / rows,
            "raw_indexes": one(f"SELECT pg_indexes_size('{partition}')") / rows,
            "hourly_row": compact("annulus_measurement_hourly"),
            "daily_row": compact("annulus_measurement_daily"),
        }


def rate_without_trigger(settings: Settings, lines: list[str]) -> float:
    """The same write path into an emptied table with the roll-up trigger disabled: what
    the roll-ups cost the sink."""
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        conn.execute("TRUNCATE annulus_measurement")
        conn.execute("ALTER TABLE annulus_measurement DISABLE TRIGGER annulus_measurement_rollup")
    try:
        return asyncio.run(write_all(settings, lines, settings.ingest_sink_batch_size))
    finally:
        with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE annulus_measurement ENABLE TRIGGER annulus_measurement_rollup"
            )


def fleet(kafka: float, pg: dict[str, float]) -> dict[str, float]:
    tags = FLEET_WELLS * TAGS_PER_WELL
    per_day = tags * HZ * DAY_S
    hourly_month = tags * 24 * MONTH_DAYS * pg["hourly_row"]
    daily_month = tags * MONTH_DAYS * pg["daily_row"]
    raw_day = per_day * pg["raw_total"]
    return {
        "readings_per_s": tags * HZ,
        "kafka_day": per_day * kafka,
        "raw_day": raw_day,
        "raw_month": raw_day * MONTH_DAYS,
        "rollups_month": hourly_month + daily_month,
        # Steady state: 90 days of raw readings (plus up to a week not yet droppable),
        # hourly roll-ups of 5 years, daily ones of (here) 10 years.
        "steady": raw_day * (RETENTION_DAYS + 7)
        + hourly_month / MONTH_DAYS * HOURLY_RETENTION_DAYS
        + daily_month / MONTH_DAYS * 3650,
        "year_no_retention": raw_day * 365 + (hourly_month + daily_month) * 12,
    }


def tb(n: float) -> str:
    return f"{n / 1e12:,.1f} TB" if n >= 1e12 else f"{n / 1e9:,.1f} GB"


def main() -> int:
    with local_stack() as stack:
        settings = stack.settings()
        from shared.infrastructure.kafka import ensure_topics
        from shared.persistence.migrate import upgrade

        upgrade(settings)
        asyncio.run(ensure_topics(settings))
        start = week_start(datetime.now(UTC)) + timedelta(days=1)  # in this week's partition
        assert start + timedelta(seconds=READINGS // ANNULI) < week_start(start) + WEEK
        values = readings(start)
        value_len = sum(map(len, values)) / len(values)
        k_plain = asyncio.run(kafka_bytes(settings, values, None))
        k_gzip = asyncio.run(kafka_bytes(settings, values, "gzip"))
        setup_annuli(settings)
        lines = [copy_line(v) for v in values]
        rate = asyncio.run(write_all(settings, lines, settings.ingest_sink_batch_size))
        pg = pg_sizes(settings, f"annulus_measurement_p{week_start(start):%Y%m%d}")
        bare_rate = rate_without_trigger(settings, lines)
    f = fleet(k_plain, pg)
    print(f"{READINGS:,} readings, {ANNULI} annuli at 1 Hz (loaded machine for the rate)")
    print(
        f"Kafka   value {value_len:.0f} B (JSON); on disk {k_plain:.1f} B/reading "
        f"uncompressed, {k_gzip:.1f} B/reading with gzip"
    )
    print(
        f"Postgres raw {pg['raw_total']:.1f} B/reading (heap {pg['raw_heap']:.1f}, "
        f"indexes {pg['raw_indexes']:.1f}); hourly roll-up {pg['hourly_row']:.0f} B/row, "
        f"daily {pg['daily_row']:.0f} B/row"
    )
    print(
        f"Sink write path (loaded machine): {rate:,.0f} rows/s with the roll-up trigger, "
        f"{bare_rate:,.0f} rows/s without"
    )
    print(
        f"Fleet {FLEET_WELLS:,} wells x {TAGS_PER_WELL} tags at {HZ:g} Hz = "
        f"{f['readings_per_s']:,.0f} readings/s"
    )
    print(f"  Kafka per day (one replica, uncompressed): {tb(f['kafka_day'])}")
    print(
        f"  PostgreSQL raw per day {tb(f['raw_day'])}, per {MONTH_DAYS}-day month "
        f"{tb(f['raw_month'])}; roll-ups per month {tb(f['rollups_month'])}"
    )
    print(
        f"  steady state with retention (raw {RETENTION_DAYS} d, hourly "
        f"{HOURLY_RETENTION_DAYS} d, daily 10 y): {tb(f['steady'])}; "
        f"one year without retention: {tb(f['year_no_retention'])}"
    )
    rows = [
        {
            "name": "storage: sink write path with roll-ups",
            "value": round(rate),
            "unit": "rows/s",
            "baseline": round(bare_rate),
            "ratio": round(rate / bare_rate, 2),
            "target": "baseline: trigger disabled",
        },
        {
            "name": "storage: Kafka bytes/reading",
            "value": round(k_plain, 1),
            "unit": "B",
            "baseline": round(k_gzip, 1),
            "ratio": round(k_gzip / k_plain, 2),
            "target": "baseline: gzip",
        },
        {
            "name": "storage: PostgreSQL bytes/reading (with indexes)",
            "value": round(pg["raw_total"], 1),
            "unit": "B",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
        {
            "name": "storage: fleet month raw (150k readings/s)",
            "value": round(f["raw_month"] / 1e12, 1),
            "unit": "TB",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
        {
            "name": "storage: fleet month roll-ups",
            "value": round(f["rollups_month"] / 1e9, 1),
            "unit": "GB",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
    ]
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

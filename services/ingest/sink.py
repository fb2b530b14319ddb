"""``wims.readings`` into ``annulus_measurement``, in bulk, idempotently.

One consumer group (``wims-ingest-sink``), auto-commit off. Each ``getmany`` batch is
COPYed into a temporary staging table and moved with ``INSERT ... SELECT ... ON CONFLICT
DO NOTHING``: a reading's id is its event id, derived from (annulus, timestamp, source), so
a replayed or re-pushed reading stores no second row (the unique (annulus_id, ts, source)
says the same). The database transaction commits first, the Kafka offsets after: a crash
between the two replays the batch, which then inserts nothing.

A message that cannot be decoded is logged, counted and skipped (never a crash loop); a
reading whose annulus was deleted meanwhile is dropped and counted (it has no row to hang
on: annulus_measurement.annulus_id is a foreign key).

Decoding uses orjson and a few type checks rather than the pydantic model: this runs for
every reading, and the values were produced by the ingest service from validated data.
"""

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

import orjson
import psycopg
from aiokafka import AIOKafkaConsumer

from services.ingest.metrics import SINK_DROPPED, SINK_LAG, SINK_ROWS, SINK_UNDECODABLE
from shared import topics
from shared.settings import Settings

log = logging.getLogger(__name__)
SINK_GROUP = "wims-ingest-sink"
_QUALITIES = frozenset({"good", "uncertain", "bad"})
COLUMNS = "id, annulus_id, ts, source, pressure_bar, temperature_c, quality, received_at"

_STAGE_DDL = """
CREATE TEMP TABLE IF NOT EXISTS sink_stage (
    id uuid, annulus_id bigint, ts timestamptz, source text,
    pressure_bar double precision, temperature_c double precision,
    quality text, received_at timestamptz
) ON COMMIT DELETE ROWS
"""
_MOVE = f"""
INSERT INTO annulus_measurement ({COLUMNS})
SELECT s.id, s.annulus_id, s.ts, s.source, s.pressure_bar, s.temperature_c,
       s.quality::reading_quality, s.received_at
FROM sink_stage s
WHERE EXISTS (SELECT 1 FROM annulus a WHERE a.id = s.annulus_id)
ON CONFLICT DO NOTHING
"""
_DROPPED = "SELECT count(*) FROM sink_stage s WHERE NOT EXISTS (SELECT 1 FROM annulus a WHERE a.id = s.annulus_id)"


def _copy_text(value: str) -> str:
    # COPY text format: backslash, tab, newline and carriage return must be escaped.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _num(value: Any) -> str:
    if value is None:
        return "\\N"
    if type(value) is float or type(value) is int:
        return repr(float(value))
    raise ValueError(f"not a number: {value!r}")


def copy_line(value: bytes) -> str:
    """One COPY text line (with newline) from a ``wims.readings`` value; ValueError if bad."""
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if type(d) is not dict or d.get("event_type") != "reading":
        raise ValueError("not a reading event")
    event_id, annulus_id, ts = d.get("event_id"), d.get("annulus_id"), d.get("ts")
    source, quality, received_at = d.get("source"), d.get("quality"), d.get("received_at")
    if not (
        type(event_id) is str
        and len(event_id) == 36
        and type(annulus_id) is int
        and type(ts) is str
        and type(source) is str
        and quality in _QUALITIES
        and type(received_at) is str
    ):
        raise ValueError("a reading field is missing or of the wrong type")
    # Strings of hex/digits/punctuation only are safe unescaped; anything else is escaped.
    for s in (event_id, ts, received_at):
        if not s.isascii() or "\\" in s or "\t" in s or "\n" in s:
            raise ValueError("malformed id or timestamp")
    return (
        f"{event_id}\t{annulus_id}\t{ts}\t{_copy_text(source)}\t{_num(d.get('pressure_bar'))}\t"
        f"{_num(d.get('temperature_c'))}\t{quality}\t{received_at}\n"
    )


async def write_lines(conn: psycopg.AsyncConnection, lines: list[str]) -> tuple[int, int]:
    """Stage and move one batch in one transaction; (rows inserted, rows dropped)."""
    async with conn.transaction(), conn.cursor() as cur:
        await cur.execute(_STAGE_DDL)
        async with cur.copy(f"COPY sink_stage ({COLUMNS}) FROM STDIN") as copy:
            await copy.write("".join(lines))
        await cur.execute(_MOVE)
        inserted = max(cur.rowcount, 0)
        dropped = 0
        if inserted < len(lines):  # duplicates or deleted annuli: only then pay for the count
            await cur.execute(_DROPPED)
            row = await cur.fetchone()
            dropped = int(row[0]) if row else 0
    return inserted, dropped


class MeasurementSink:
    def __init__(self, settings: Settings, group_id: str = SINK_GROUP) -> None:
        self._settings = settings
        self._group_id = group_id
        self.rows_written = 0
        self._lag: dict[int, int] = {}

    def _lines(self, batch: dict[Any, list[Any]]) -> list[str]:
        lines: list[str] = []
        for tp, messages in batch.items():
            for msg in messages:
                try:
                    lines.append(copy_line(msg.value))
                except ValueError as exc:
                    SINK_UNDECODABLE.inc()
                    log.warning("wims.readings %s@%s undecodable, skipped: %s", tp, msg.offset, exc)
        return lines

    def _update_lag(self, consumer: AIOKafkaConsumer, batch: dict[Any, list[Any]]) -> None:
        for tp, messages in batch.items():
            high = consumer.highwater(tp)
            if high is not None and messages:
                self._lag[tp.partition] = max(0, high - messages[-1].offset - 1)
        SINK_LAG.set(sum(self._lag.values()))

    async def _consume(self, consumer: AIOKafkaConsumer, conn: psycopg.AsyncConnection) -> None:
        while True:
            batch = await consumer.getmany(
                timeout_ms=500, max_records=self._settings.ingest_sink_batch_size
            )
            if not batch:
                continue
            lines = self._lines(batch)
            if lines:
                inserted, dropped = await write_lines(conn, lines)
                self.rows_written += inserted
                SINK_ROWS.inc(inserted)
                if dropped:
                    SINK_DROPPED.inc(dropped)
            await consumer.commit()  # only after the rows are committed
            self._update_lag(consumer, batch)

    async def run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                topics.READINGS.name,
                bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=self._group_id,
                client_id="wims-ingest-sink",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
                # Bounded prefetch: the sink shares its process with the HTTP ingest path.
                fetch_max_bytes=4 * 1024 * 1024,
                max_partition_fetch_bytes=1024 * 1024,
            )
            conn: psycopg.AsyncConnection | None = None
            try:
                conn = await psycopg.AsyncConnection.connect(self._settings.libpq_url)
                await consumer.start()
                backoff = 0.5
                await self._consume(consumer, conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka or the database away: restart from committed offsets
                log.warning("readings sink: %r; restarting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close()


def copy_lines(values: Iterable[bytes]) -> list[str]:
    """COPY lines of many values, skipping undecodable ones (for tools and benchmarks)."""
    out = []
    for value in values:
        with contextlib.suppress(ValueError):
            out.append(copy_line(value))
    return out

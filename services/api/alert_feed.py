"""``wims.alerts`` into the API: the alert history table and the live SSE stream.

History: one consumer group (``wims-api-alerts``) shared by all API processes writes each
alert once (``ON CONFLICT (event_id) DO NOTHING``, so a redelivery after a crash stores
nothing twice) and commits its offsets only after the database commit.

Live stream: each SSE connection reads every partition of ``wims.alerts`` with its own
group-less consumer, from the latest offsets, or from the positions in ``Last-Event-ID``.
An event's ``id`` is the stream position *after* it, ``"partition:offset,..."`` for every
partition, so a client that reconnects with it resumes exactly where it left off; events
filtered out for this client still move the position on.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.api.metrics import ALERTS_BAD, ALERTS_STORED, SSE_CLIENTS
from shared import events as ev
from shared import topics
from shared.models import AlertRecord
from shared.settings import Settings

log = logging.getLogger(__name__)
HISTORY_GROUP = "wims-api-alerts"


def alert_row(alert: ev.Alert, partition: int, offset: int) -> dict[str, Any]:
    return {
        "event_id": alert.event_id,
        "kind": str(alert.kind),
        "severity": str(alert.severity),
        "well_id": alert.well_id,
        "annulus_id": alert.annulus_id,
        "ts": alert.ts,
        "message": alert.message,
        "payload": alert.model_dump(mode="json"),
        "kafka_partition": partition,
        "kafka_offset": offset,
    }


class AlertHistoryConsumer:
    """Stores every alert from ``wims.alerts`` in the alert table."""

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker) -> None:
        self._settings = settings
        self._sessionmaker = sessionmaker

    async def _consume(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=500)
            rows = []
            for tp, messages in batch.items():
                for msg in messages:
                    try:
                        alert = ev.decode(topics.ALERTS.name, msg.value)
                    except Exception as exc:
                        ALERTS_BAD.inc()
                        log.warning("wims.alerts %s@%s undecodable: %r", tp, msg.offset, exc)
                        continue
                    rows.append(alert_row(alert, tp.partition, msg.offset))
            if rows:
                async with self._sessionmaker() as session, session.begin():
                    result = await session.execute(
                        insert(AlertRecord)
                        .values(rows)
                        .on_conflict_do_nothing(index_elements=["event_id"])
                    )
                ALERTS_STORED.inc(max(result.rowcount or 0, 0))
            if batch:
                await consumer.commit()  # only after the rows are safely stored

    async def run(self) -> None:
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(
                topics.ALERTS.name,
                bootstrap_servers=self._settings.kafka_bootstrap,
                group_id=HISTORY_GROUP,
                enable_auto_commit=False,
                auto_offset_reset="earliest",  # a new install stores the retained history
                client_id="wims-api-alerts",
            )
            try:
                await consumer.start()
                backoff = 0.5
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("alert history consumer: %r; restarting in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)


# --- live stream -------------------------------------------------------------------------------


def format_position(positions: dict[int, int]) -> str:
    return ",".join(f"{p}:{o}" for p, o in sorted(positions.items()))


def parse_position(value: str) -> dict[int, int]:
    """``"0:12,1:7"`` -> {0: 12, 1: 7}; raises ValueError on anything else."""
    out: dict[int, int] = {}
    for part in value.split(","):
        p, _, o = part.strip().partition(":")
        partition, offset = int(p), int(o)
        if partition < 0 or offset < 0:
            raise ValueError("negative partition or offset")
        out[partition] = offset
    return out


def sse_message(event: str | None, data: bytes, event_id: str | None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    return ("\n".join(lines) + "\n").encode() + b"data: " + data + b"\n\n"


class AlertTail:
    """One SSE client's reader of ``wims.alerts``. ``open()`` positions it (so a broker that
    is away gives a clean 503 before the stream starts); ``stream()`` yields SSE bytes: a
    ``: connected`` comment, then alerts, with a heartbeat comment whenever nothing was sent
    for ``settings.sse_heartbeat_s``; it closes the consumer when the client goes."""

    def __init__(
        self,
        settings: Settings,
        *,
        resume_from: dict[int, int] | None,
        well_id: int | None,
        severities: set[str] | None,
    ) -> None:
        self._settings = settings
        self._resume_from = resume_from or {}
        self._well_id = well_id
        self._severities = severities
        self._positions: dict[int, int] = {}
        # Subscribed without a group: every partition is assigned to this reader on start.
        self._consumer = AIOKafkaConsumer(
            topics.ALERTS.name,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id="wims-api-sse",
        )

    async def open(self) -> None:
        consumer = self._consumer
        try:
            await asyncio.wait_for(consumer.start(), 10)
            tps = sorted(consumer.assignment())
            if not tps:
                raise RuntimeError(f"topic {topics.ALERTS.name} has no partitions")
            await consumer.seek_to_end(*tps)
            for tp in tps:
                if tp.partition in self._resume_from:
                    consumer.seek(tp, self._resume_from[tp.partition])
            self._positions = {tp.partition: await consumer.position(tp) for tp in tps}
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._consumer.stop(), 5)

    def _wanted(self, alert: ev.Alert) -> bool:
        if self._well_id is not None and alert.well_id != self._well_id:
            return False
        return not self._severities or str(alert.severity) in self._severities

    async def stream(self, is_disconnected: Callable[[], Awaitable[bool]]) -> AsyncIterator[bytes]:
        SSE_CLIENTS.inc()
        try:
            yield b": connected\n\n"
            loop = asyncio.get_running_loop()
            last_sent = loop.time()
            while not await is_disconnected():
                batch = await self._consumer.getmany(timeout_ms=250, max_records=200)
                for tp, messages in sorted(batch.items(), key=lambda kv: kv[0].partition):
                    for msg in messages:
                        self._positions[tp.partition] = msg.offset + 1
                        try:
                            alert = ev.decode(topics.ALERTS.name, msg.value)
                        except Exception:
                            ALERTS_BAD.inc()
                            continue
                        if not self._wanted(alert):
                            continue
                        data = orjson.dumps(alert.model_dump(mode="json"))
                        yield sse_message(str(alert.kind), data, format_position(self._positions))
                        last_sent = loop.time()
                if loop.time() - last_sent >= self._settings.sse_heartbeat_s:
                    yield b": heartbeat\n\n"
                    last_sent = loop.time()
        finally:
            SSE_CLIENTS.dec()
            await self.close()

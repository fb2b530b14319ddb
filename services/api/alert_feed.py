"""``wims.alerts`` into the API: the alert history table and the live SSE stream.

History: one consumer group (``wims-api-alerts``) shared by all API processes writes each
alert once (``ON CONFLICT (event_id) DO NOTHING``, so a redelivery after a crash stores
nothing twice) and commits its offsets only after the database commit.

Live stream: one group-less consumer per API process (``AlertFanout``) reads every
partition of ``wims.alerts`` and fans each alert out to the open streams, each through a
bounded mailbox. An event's ``id`` is the stream position *after* it,
``"partition:offset,..."`` for every partition, so a client that reconnects with it resumes
exactly where it left off (from a buffer of recent alerts, or with a short-lived catch-up
reader when it is older than that); events filtered out for this client still move the
position on.
"""

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.api.metrics import (
    ALERTS_BAD,
    ALERTS_STORED,
    SSE_CLIENTS,
    SSE_CLOSED,
    SSE_KAFKA_CONSUMERS,
    SSE_REFUSED,
)
from shared.contracts import events as ev
from shared.contracts import topics
from shared.infrastructure.retry import RETRIES, Backoff, TransientError, is_transient
from shared.infrastructure.settings import Settings
from shared.persistence.models import AlertRecord

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
        backoff = Backoff(0.5, 10.0)
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
                backoff.reset()
                await self._consume(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                RETRIES.labels("api", "alert history").inc()
                log.log(
                    logging.WARNING if is_transient(exc) else logging.ERROR,
                    "alert history consumer: %r; restarting in %.1f s",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)


# --- live stream -------------------------------------------------------------------------------

# Kafka offsets are signed 64-bit: a larger one cannot even be encoded in a fetch request.
MAX_OFFSET = 2**63 - 1
# Resuming clients older than the replay buffer each read with a consumer of their own until
# they reach it; a reconnect storm must not open hundreds of consumers at once.
MAX_CONCURRENT_CATCH_UPS = 4


def format_position(positions: dict[int, int] | tuple[int, ...] | list[int]) -> str:
    items = positions.items() if isinstance(positions, dict) else enumerate(positions)
    return ",".join(f"{p}:{o}" for p, o in sorted(items))


def parse_position(value: str) -> dict[int, int]:
    """``"0:12,1:7"`` -> {0: 12, 1: 7}; raises ValueError saying what is wrong with it.

    Only the syntax and the range Kafka can hold are checked here; whether the partitions
    exist and the offsets are not beyond the end is ``AlertFanout.check_position``'s."""
    out: dict[int, int] = {}
    for part in value.split(","):
        p, sep, o = part.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            partition, offset = int(p), int(o)
        except ValueError:
            raise ValueError(
                f"{part.strip()!r} is not partition:offset (send back an id of this stream)"
            ) from None
        if partition < 0 or offset < 0:
            raise ValueError(f"{part.strip()!r}: partition and offset must not be negative")
        if offset > MAX_OFFSET:
            raise ValueError(f"{part.strip()!r}: offset is beyond the largest Kafka offset")
        if partition in out:
            raise ValueError(f"partition {partition} is named twice")
        out[partition] = offset
    return out


def sse_message(event: str | None, data: bytes, event_id: str | None) -> bytes:
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if event is not None:
        lines.append(f"event: {event}")
    return ("\n".join(lines) + "\n").encode() + b"data: " + data + b"\n\n"


def stream_closed_message(code: str, reason: str) -> bytes:
    """The last thing a stream the server ends sends: why, as an event a client can handle
    (``event: stream-closed``) and as a comment a person reading with curl sees."""
    data = orjson.dumps({"code": code, "reason": reason})
    return f": closed: {reason}\n".encode() + sse_message("stream-closed", data, None)


class _Entry:
    """One alert as the fan-out saw it: where it was in the topic, the position vector just
    after it, and its SSE bytes built once for every client that is in step with the feed."""

    __slots__ = ("data", "kind", "message", "offset", "partition", "severity", "vec", "well_id")

    def __init__(
        self,
        partition: int,
        offset: int,
        alert: ev.Alert,
        data: bytes,
        vec: tuple[int, ...],
    ) -> None:
        self.partition = partition
        self.offset = offset
        self.well_id = alert.well_id
        self.severity = str(alert.severity)
        self.kind = str(alert.kind)
        self.data = data
        self.vec = vec
        self.message = sse_message(self.kind, data, format_position(vec))


def _at_least(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True))


class Subscriber:
    """One open stream's mailbox in the fan-out: the filter, the alerts waiting to be sent
    (``backlog``: replayed from the buffer on a resume, bounded by the buffer itself;
    ``pending``: live ones, at most ``cap``) and why it was closed, if it was.

    ``floor`` is set while the client's position is ahead of the feed on some partition (it
    resumed with an id another API process gave, a few alerts further on): alerts it already
    has are skipped and its ids never go back."""

    def __init__(
        self, *, well_id: int | None, severities: set[str] | None, cap: int, user_id: int = 0
    ) -> None:
        self.well_id = well_id
        self.severities = severities
        self.cap = cap
        self.user_id = user_id
        self.floor: tuple[int, ...] | None = None
        self.backlog: deque[bytes] = deque()
        self.pending: deque[bytes] = deque()
        self.wake = asyncio.Event()
        self.closed: tuple[str, str] | None = None  # (code, reason)

    def wants(self, entry: "_Entry | _Probe") -> bool:
        if self.well_id is not None and entry.well_id != self.well_id:
            return False
        return not self.severities or entry.severity in self.severities

    def position(self, feed: tuple[int, ...]) -> tuple[int, ...]:
        if self.floor is None:
            return feed
        return tuple(max(a, b) for a, b in zip(self.floor, feed, strict=True))

    def offer(self, entry: _Entry, *, replay: bool = False) -> bool:
        """Queue ``entry`` if this client wants it; False when that overflowed the mailbox
        (the subscriber is then closed as a slow client and must leave the fan-out)."""
        message = entry.message
        if self.floor is not None:
            if entry.offset < self.floor[entry.partition]:
                return True  # the client has it already
            if _at_least(entry.vec, self.floor):
                self.floor = None  # in step with the feed from here on
            else:
                message = sse_message(
                    entry.kind, entry.data, format_position(self.position(entry.vec))
                )
        if not self.wants(entry):
            return True
        if replay:
            self.backlog.append(message)
        elif len(self.pending) >= self.cap:
            self.close(
                "slow_client",
                f"this client fell more than {self.cap} alerts behind the live feed; "
                "reconnect with Last-Event-ID (the id of the last event received) to resume "
                "without loss",
            )
            return False
        else:
            self.pending.append(message)
        self.wake.set()
        return True

    def close(self, code: str, reason: str) -> None:
        if self.closed is None:
            self.closed = (code, reason)
            self.pending.clear()
            self.backlog.clear()
            self.wake.set()


class StreamRefused(Exception):
    """An open-stream cap is reached (answered 429)."""


class AlertFanout:
    """The one reader of ``wims.alerts`` for every live stream of this process.

    It reads every partition with one group-less consumer from the end of the topic at
    start-up on, and hands each alert to every open stream whose filter wants it, through a
    mailbox of at most ``WIMS_SSE_CLIENT_QUEUE`` alerts: a client that falls that far behind
    is closed (``event: stream-closed``) rather than buffered for without bound, and resumes
    with its last id.

    The position vector after each alert (``partition:offset`` for every partition, the
    stream's ``id``) is the feed's own, so it is built once and shared. The newest
    ``WIMS_SSE_REPLAY_BUFFER`` alerts are kept: a client resuming from a position inside that
    buffer is served from it and joins the live feed in the same step (no await between, so
    nothing can fall between the two, nor come twice); one resuming from an older position
    first reads with a short-lived consumer of its own from there until it reaches the
    buffer (``catch_up``), then joins the same way.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.partitions = 0
        self._positions: list[int] = []  # the feed: next offset to hand out, per partition
        self._covered_from: list[int] = []  # the buffer holds every alert from here on
        self._ring: deque[_Entry] = deque()
        self._ring_max = settings.sse_replay_buffer
        self._subs: set[Subscriber] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()
        self._open_by_user: Counter[int] = Counter()
        self._catch_ups = asyncio.Semaphore(MAX_CONCURRENT_CATCH_UPS)

    # -- caps ---------------------------------------------------------------------------------

    @property
    def open_streams(self) -> int:
        return sum(self._open_by_user.values())

    def reserve(self, user_id: int) -> None:
        """Counts a new stream of ``user_id``; raises StreamRefused past a cap."""
        s = self._settings
        if self.open_streams >= s.sse_max_streams:
            SSE_REFUSED.labels("process").inc()
            raise StreamRefused(
                f"this API process already serves {s.sse_max_streams} live alert streams "
                "(WIMS_SSE_MAX_STREAMS); try again later or another API process"
            )
        if self._open_by_user[user_id] >= s.sse_max_streams_per_user:
            SSE_REFUSED.labels("user").inc()
            raise StreamRefused(
                f"you already have {s.sse_max_streams_per_user} live alert streams open "
                "(WIMS_SSE_MAX_STREAMS_PER_USER); close one first"
            )
        self._open_by_user[user_id] += 1
        SSE_CLIENTS.inc()

    def release(self, user_id: int) -> None:
        self._open_by_user[user_id] -= 1
        if self._open_by_user[user_id] <= 0:
            del self._open_by_user[user_id]
        SSE_CLIENTS.dec()

    # -- the shared consumer ------------------------------------------------------------------

    async def wait_ready(self, timeout_s: float) -> bool:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._ready.wait()
        return self._ready.is_set()

    def _new_consumer(self, client_id: str) -> AIOKafkaConsumer:
        # Subscribed without a group: every partition is assigned to this reader on start.
        return AIOKafkaConsumer(
            topics.ALERTS.name,
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            # A position the broker no longer holds (retention) resumes at the oldest alert
            # it still has, never silently at the newest.
            auto_offset_reset="earliest",
            client_id=client_id,
        )

    @staticmethod
    def _assigned(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
        tps = sorted(consumer.assignment())
        if not tps:
            raise TransientError(f"topic {topics.ALERTS.name} has no partitions yet")
        return tps

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        tps = self._assigned(consumer)
        if not self._positions:  # first start: from the end of the topic
            await consumer.seek_to_end(*tps)
            self._positions = [await consumer.position(tp) for tp in tps]
            self._covered_from = list(self._positions)
            self.partitions = len(tps)
        else:  # a reconnect: on from where the feed was, so no stream misses anything
            for tp in tps:
                if tp.partition < self.partitions:
                    consumer.seek(tp, self._positions[tp.partition])

    async def run(self) -> None:
        """Reads and fans out until cancelled; reconnects after a failure with backoff (the
        open streams stay open meanwhile and miss nothing: the feed goes on from where it
        was)."""
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                await self._run_once(backoff)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                RETRIES.labels("api", "live alert feed").inc()
                log.log(
                    logging.WARNING if is_transient(exc) else logging.ERROR,
                    "live alert feed: %r; reconnecting in %.1f s",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _run_once(self, backoff: Backoff) -> None:
        consumer = self._new_consumer("wims-api-sse")
        try:
            await consumer.start()
            SSE_KAFKA_CONSUMERS.inc()
            try:
                await self._position(consumer)
                self._consumer = consumer
                self._ready.set()
                backoff.reset()
                await self._pump(consumer)
            finally:
                self._consumer = None
                SSE_KAFKA_CONSUMERS.dec()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(consumer.stop(), 5)

    async def _pump(self, consumer: AIOKafkaConsumer) -> None:
        # At most half a mailbox per batch, and a turn of the event loop after each: a burst
        # already fetched (a storm of alerts, the feed catching up after a reconnect) is
        # handed out no faster than the streams' writers get to drain their mailboxes, so a
        # client that keeps up is never taken for a slow one. (getmany returns buffered
        # records without yielding to the loop.)
        most = max(1, min(500, self._settings.sse_client_queue // 2))
        while True:
            batch = await consumer.getmany(timeout_ms=1000, max_records=most)
            for tp, messages in sorted(batch.items(), key=lambda kv: kv[0].partition):
                for msg in messages:
                    self._publish(tp.partition, msg.offset, msg.value)
            await asyncio.sleep(0)

    def _publish(self, partition: int, offset: int, value: bytes) -> None:
        if partition >= self.partitions or offset < self._positions[partition]:
            return  # a partition added after start-up (restart the API to serve it)
        self._positions[partition] = offset + 1
        try:
            alert = ev.decode(topics.ALERTS.name, value)
        except Exception:
            ALERTS_BAD.inc()
            return
        data = orjson.dumps(alert.model_dump(mode="json"))
        entry = _Entry(partition, offset, alert, data, tuple(self._positions))
        self._ring.append(entry)
        while len(self._ring) > self._ring_max:
            old = self._ring.popleft()
            self._covered_from[old.partition] = old.offset + 1
        if self._ring_max == 0:
            self._covered_from[partition] = offset + 1
        dropped = [sub for sub in self._subs if not sub.offer(entry)]
        for sub in dropped:
            self._subs.discard(sub)
            SSE_CLOSED.labels("slow_client").inc()

    # -- streams ------------------------------------------------------------------------------

    async def check_position(self, position: dict[int, int]) -> None:
        """Raises ValueError when ``position`` names a partition the topic does not have or
        an offset beyond the end of its partition (it cannot be an id of this stream)."""
        for p in position:
            if p >= self.partitions:
                raise ValueError(
                    f"partition {p} does not exist ({topics.ALERTS.name} has "
                    f"{self.partitions}: 0 to {self.partitions - 1})"
                )
        ahead = [p for p, o in position.items() if o > self._positions[p]]
        if not ahead:
            return
        consumer = self._consumer
        if consumer is None:
            raise TransientError("the live alert feed is reconnecting to Kafka")
        ends = await consumer.end_offsets([TopicPartition(topics.ALERTS.name, p) for p in ahead])
        for tp, end in ends.items():
            if position[tp.partition] > end:
                raise ValueError(
                    f"offset {position[tp.partition]} of partition {tp.partition} is beyond "
                    f"its end ({end})"
                )

    def start_vector(self, position: dict[int, int] | None) -> tuple[int, ...]:
        """A resume position as a full vector (partitions not named: the live position)."""
        position = position or {}
        return tuple(position.get(p, self._positions[p]) for p in range(self.partitions))

    def needs_catch_up(self, start: tuple[int, ...]) -> bool:
        return not _at_least(start, tuple(self._covered_from))

    def join(self, sub: Subscriber, start: tuple[int, ...] | None) -> None:
        """Adds ``sub`` to the live feed, first replaying the buffered alerts after ``start``.

        Synchronous on purpose: nothing is published between the replay and the joining."""
        if start is not None:
            if self.needs_catch_up(start):
                raise RuntimeError("join from before the replay buffer: catch up first")
            sub.floor = start
            for entry in self._ring:
                sub.offer(entry, replay=True)
            feed = tuple(self._positions)
            sub.floor = None if _at_least(feed, start) else start
        self._subs.add(sub)

    def leave(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    def heartbeat(self, sub: Subscriber) -> bytes:
        """A comment that also carries the client's position (``id:`` with no ``data:`` moves
        an EventSource's Last-Event-ID without an event): a stream filtered to a quiet well
        resumes from near the live position rather than from its last matching alert."""
        if sub.closed is not None or sub.pending or sub.backlog or sub not in self._subs:
            return b": heartbeat\n\n"
        return (
            f"id: {format_position(sub.position(tuple(self._positions)))}\n: heartbeat\n\n".encode()
        )

    async def catch_up(self, sub: Subscriber, start: tuple[int, ...]) -> AsyncIterator[bytes]:
        """Reads from ``start`` with a consumer of its own, yielding what ``sub`` wants, until
        every partition reaches the buffer; then joins ``sub`` to the feed (and returns)."""
        async with self._catch_ups:
            consumer = self._new_consumer("wims-api-sse-catch-up")
            SSE_KAFKA_CONSUMERS.inc()
            try:
                await consumer.start()
                tps = [tp for tp in self._assigned(consumer) if tp.partition < self.partitions]
                for tp in tps:
                    consumer.seek(tp, start[tp.partition])
                pos = list(start)
                while True:
                    if not self.needs_catch_up(tuple(pos)):
                        # At once, before any await: the buffer still holds what follows.
                        self.join(sub, tuple(pos))
                        return
                    batch = await consumer.getmany(timeout_ms=500, max_records=500)
                    for tp, messages in sorted(batch.items(), key=lambda kv: kv[0].partition):
                        for msg in messages:
                            if msg.offset < pos[tp.partition]:
                                continue
                            pos[tp.partition] = msg.offset + 1
                            try:
                                alert = ev.decode(topics.ALERTS.name, msg.value)
                            except Exception:
                                ALERTS_BAD.inc()
                                continue
                            if not sub.wants(_Probe(alert)):
                                continue
                            data = orjson.dumps(alert.model_dump(mode="json"))
                            yield sse_message(str(alert.kind), data, format_position(pos))
                    # The fetch position also passes records that are no alerts (transaction
                    # markers), which no message above would have moved ``pos`` past.
                    for tp in tps:
                        pos[tp.partition] = max(pos[tp.partition], await consumer.position(tp))
            finally:
                SSE_KAFKA_CONSUMERS.dec()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 5)


class _Probe:
    """The fields of an alert a Subscriber's filter reads."""

    __slots__ = ("severity", "well_id")

    def __init__(self, alert: ev.Alert) -> None:
        self.well_id = alert.well_id
        self.severity = str(alert.severity)


async def live_stream(
    fanout: AlertFanout,
    settings: Settings,
    sub: Subscriber,
    start: tuple[int, ...] | None,
    recheck: Callable[[], Awaitable[tuple[str, str] | None]],
) -> AsyncIterator[bytes]:
    """One client's SSE bytes: ``: connected``, the alerts (caught up first when it resumes
    from before the buffer), heartbeats, and a ``stream-closed`` event when the server ends
    it: the client fell behind, or ``recheck`` (run every ``WIMS_SSE_AUTH_RECHECK_S``) says
    its user may no longer stream."""
    loop = asyncio.get_running_loop()
    try:
        yield b": connected\n\n"
        next_check = loop.time() + settings.sse_auth_recheck_s
        if start is not None and fanout.needs_catch_up(start):
            async with contextlib.aclosing(fanout.catch_up(sub, start)) as chunks:
                async for chunk in chunks:
                    yield chunk
                    if loop.time() >= next_check:
                        if (refusal := await recheck()) is not None:
                            yield _closed(sub, *refusal)
                            return
                        next_check = loop.time() + settings.sse_auth_recheck_s
        else:
            fanout.join(sub, start)
        last_sent = loop.time()
        while True:
            now = loop.time()
            # Checked between alerts too: a busy stream is re-checked as often as a quiet one.
            if now >= next_check:
                if (refusal := await recheck()) is not None:
                    yield _closed(sub, *refusal)
                    return
                next_check = loop.time() + settings.sse_auth_recheck_s
                continue
            if sub.backlog or sub.pending:
                yield (sub.backlog or sub.pending).popleft()
                last_sent = loop.time()
                continue
            if sub.closed is not None:
                yield stream_closed_message(*sub.closed)
                return
            if now - last_sent >= settings.sse_heartbeat_s:
                yield fanout.heartbeat(sub)
                last_sent = loop.time()
                continue
            sub.wake.clear()
            if sub.backlog or sub.pending or sub.closed is not None:
                continue
            wait = min(next_check, last_sent + settings.sse_heartbeat_s) - now
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(wait, 0.0)):
                    await sub.wake.wait()
    finally:
        fanout.leave(sub)


def _closed(sub: Subscriber, code: str, reason: str) -> bytes:
    sub.close(code, reason)
    SSE_CLOSED.labels(code).inc()
    return stream_closed_message(code, reason)

"""The live alert stream's in-memory part: the SSE fan-out of ``wims.alerts`` to the open
streams of this process, and each stream's bytes.

Live stream: one group-less consumer per API process (``AlertFanout``,
``services/api/pump.py``) reads every partition of ``wims.alerts`` and hands each alert to
the feed here (``AlertFeed``), which fans it out to the open streams, each through a
bounded mailbox (``Subscriber``). An event's ``id`` is the stream position *after* it,
``"partition:offset,..."`` for every partition, so a client that reconnects with it resumes
exactly where it left off (from a buffer of recent alerts, or with a short-lived catch-up
reader when it is older than that); events filtered out for this client still move the
position on.

The alert history (the alert table) is filled by ``AlertHistoryConsumer``, also in
``services/api/pump.py``.
"""

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING

import orjson

from services.api.metrics import ALERTS_BAD, SSE_CLIENTS, SSE_CLOSED, SSE_REFUSED
from shared.contracts import events as ev
from shared.contracts import topics
from shared.infrastructure.settings import Settings

if TYPE_CHECKING:
    from services.api.pump import AlertFanout

# --- live stream -------------------------------------------------------------------------------

# Kafka offsets are signed 64-bit: a larger one cannot even be encoded in a fetch request.
MAX_OFFSET = 2**63 - 1


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

    def wants(self, entry: "_Entry | Probe") -> bool:
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


class AlertFeed:
    """The in-memory part of the live alert feed of this process: the feed's position, the
    replay buffer, the open streams' mailboxes and the open-stream caps. Its reader of
    ``wims.alerts`` is ``services/api/pump.py``'s ``AlertFanout``, which hands every alert
    it reads to ``_publish``.

    Each alert goes to every open stream whose filter wants it, through a mailbox of at most
    ``WIMS_SSE_CLIENT_QUEUE`` alerts: a client that falls that far behind is closed
    (``event: stream-closed``) rather than buffered for without bound, and resumes with its
    last id.

    The position vector after each alert (``partition:offset`` for every partition, the
    stream's ``id``) is the feed's own, so it is built once and shared. The newest
    ``WIMS_SSE_REPLAY_BUFFER`` alerts are kept: a client resuming from a position inside that
    buffer is served from it and joins the live feed in the same step (no await between, so
    nothing can fall between the two, nor come twice); one resuming from an older position
    first reads with a short-lived consumer of its own from there until it reaches the
    buffer (``AlertFanout.catch_up``), then joins the same way.
    """

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.partitions = 0
        self._positions: list[int] = []  # the feed: next offset to hand out, per partition
        self._covered_from: list[int] = []  # the buffer holds every alert from here on
        self._ring: deque[_Entry] = deque()
        self._ring_max = settings.sse_replay_buffer
        self._subs: set[Subscriber] = set()
        self._open_by_user: Counter[int] = Counter()

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

    # -- the feed -----------------------------------------------------------------------------

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


class Probe:
    """The fields of an alert a Subscriber's filter reads."""

    __slots__ = ("severity", "well_id")

    def __init__(self, alert: ev.Alert) -> None:
        self.well_id = alert.well_id
        self.severity = str(alert.severity)


async def live_stream(
    fanout: "AlertFanout",
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

"""The api's Kafka consumers of ``wims.alerts``: the alert history and the live feed.

History (``AlertHistoryConsumer``): one consumer group (``wims-api-alerts``) shared by all
API processes writes each alert once (``ON CONFLICT (event_id) DO NOTHING``, so a
redelivery after a crash stores nothing twice; ``services/api/store.py``,
``insert_alerts``) and commits its offsets only after the database commit.

Live feed (``AlertFanout``): one group-less consumer per API process reads every partition
of ``wims.alerts`` and hands each alert to the in-memory fan-out
(``services/api/alert_feed.py``, ``AlertFeed``), which passes it on to the open streams; a
stream resuming from before the replay buffer first catches up with a short-lived consumer
of its own.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import async_sessionmaker

from services.api import store
from services.api.alert_feed import AlertFeed, Probe, Subscriber, format_position, sse_message
from services.api.core import alert_row
from services.api.metrics import ALERTS_BAD, ALERTS_STORED, SSE_KAFKA_CONSUMERS
from shared.contracts import events as ev
from shared.contracts import topics
from shared.infrastructure.retry import RETRIES, Backoff, TransientError, is_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)
HISTORY_GROUP = "wims-api-alerts"


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
                    stored = await store.insert_alerts(session, rows)
                ALERTS_STORED.inc(stored)
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


# --- live feed ---------------------------------------------------------------------------------

# Resuming clients older than the replay buffer each read with a consumer of their own until
# they reach it; a reconnect storm must not open hundreds of consumers at once.
MAX_CONCURRENT_CATCH_UPS = 4


class AlertFanout(AlertFeed):
    """The one reader of ``wims.alerts`` for every live stream of this process.

    It reads every partition with one group-less consumer from the end of the topic at
    start-up on, and hands each alert to the feed (``AlertFeed``, services/api/alert_feed.py:
    the mailboxes, the replay buffer, the caps). A client resuming from before the replay
    buffer first reads with a short-lived consumer of its own (``catch_up``).
    """

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._consumer: AIOKafkaConsumer | None = None
        self._ready = asyncio.Event()
        self._catch_ups = asyncio.Semaphore(MAX_CONCURRENT_CATCH_UPS)

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
                            if not sub.wants(Probe(alert)):
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

"""The outbox relay: publishes the outbox's unsent rows to Kafka (the rows are queued by
``services/api/processing/outbox.py`` in the writers' transactions).

:class:`OutboxRelay` publishes unsent rows in id order with an idempotent producer
(acks=all) and stamps ``sent_at`` in the same transaction that locked them. Rows are
locked ``FOR UPDATE SKIP LOCKED`` and each pass first takes a transaction-level advisory
lock (``RELAY_LOCK_KEY``), so with several API processes only one relays at a time: no row
is published twice concurrently, and rows go out in id order across processes. A crash
between the broker's ack and the commit republishes that batch on the next pass
(at-least-once; consumers deduplicate by event id and version). The statements are
``services/api/store.py``'s.
"""

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncEngine

from services.api import store
from services.api.metrics import OUTBOX_ERRORS, OUTBOX_PENDING, OUTBOX_PUBLISHED
from shared.infrastructure.retry import Backoff, is_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)


class OutboxRelay:
    """Publishes unsent outbox rows; runs as a task in the API process's lifespan."""

    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._producer: AIOKafkaProducer | None = None
        self._wake = asyncio.Event()
        self.connected = False

    def wake(self) -> None:
        """A request committed outbox rows: publish now rather than at the next poll."""
        self._wake.set()

    async def _get_producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self._settings.kafka_bootstrap,
                enable_idempotence=True,  # implies acks=all; no duplicates from retries
                acks="all",
                request_timeout_ms=10_000,
                client_id="wims-api-outbox",
            )
            try:
                await asyncio.wait_for(producer.start(), 15)
            except BaseException:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(producer.stop(), 5)
                raise
            self._producer = producer
        return self._producer

    async def _drop_producer(self) -> None:
        producer, self._producer = self._producer, None
        self.connected = False
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 5)

    async def publish_batch(self) -> int:
        """One pass: publish up to a batch of unsent rows, mark them sent; returns how many."""
        async with self._engine.begin() as conn:
            if not await store.take_relay_lock(conn):
                return 0  # another API process is relaying right now
            rows = await store.lock_unsent_outbox_rows(conn, self._settings.outbox_batch_size)
            OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            producer = await self._get_producer()
            futures: list[Any] = [
                await producer.send(row.topic, bytes(row.value), key=bytes(row.key)) for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*futures), 30)
            self.connected = True
            await store.mark_outbox_sent(conn, [row.id for row in rows])
        for row in rows:
            OUTBOX_PUBLISHED.labels(row.topic).inc()
        return len(rows)

    async def run(self) -> None:
        backoff = Backoff(0.5, self._settings.outbox_max_backoff_s)
        while True:
            self._wake.clear()
            try:
                published = await self.publish_batch()
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Kafka (or the database) is away: nothing is lost, the rows stay unsent.
                # Anything else is a bug worth its traceback; the rows wait all the same.
                OUTBOX_ERRORS.inc()
                delay = backoff.next()
                log.log(
                    logging.WARNING if is_transient(exc) else logging.ERROR,
                    "outbox relay: publish failed (%s); retrying in %.1f s",
                    type(exc).__name__,
                    delay,
                    exc_info=not is_transient(exc),
                )
                await self._drop_producer()
                await asyncio.sleep(delay)
                continue
            if published >= self._settings.outbox_batch_size:
                continue  # more waiting: go on at once
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._settings.outbox_poll_interval_s)

    async def close(self) -> None:
        await self._drop_producer()

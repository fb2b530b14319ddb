"""Transactional outbox: config and barrier events written with the change, relayed to Kafka.

Writers (the routers) call ``queue_annulus_config`` / ``queue_well_config`` /
``queue_barrier_event`` inside the request's transaction, so an event exists if and only
if its change committed: a rolled-back change leaves nothing to publish.

The config events carry ``version`` = their outbox row id: it grows with every change (one
sequence for the whole table), so a consumer can tell the newer of two configs apart even
if it sees them out of order. Keys are the annulus or well id as ASCII bytes, like every
WIMS producer.

:class:`OutboxRelay` publishes unsent rows in id order with an idempotent producer
(acks=all) and stamps ``sent_at`` in the same transaction that locked them. Rows are
locked ``FOR UPDATE SKIP LOCKED`` and each pass first takes a transaction-level advisory
lock, so with several API processes only one relays at a time: no row is published twice
concurrently, and rows go out in id order across processes. A crash between the broker's
ack and the commit republishes that batch on the next pass (at-least-once; consumers
deduplicate by event id and version).
"""

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from services.api.metrics import OUTBOX_ERRORS, OUTBOX_PENDING, OUTBOX_PUBLISHED
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import ElementType
from shared.contracts.topics import entity_key
from shared.domain.integrity import cement_quality_behind
from shared.infrastructure.retry import Backoff, is_transient
from shared.infrastructure.settings import Settings
from shared.persistence.config_events import NEXT_CONFIG_VERSION, annulus_config_event
from shared.persistence.models import (
    Annulus,
    BarrierElement,
    BarrierEnvelope,
    CementInterval,
    CriticalPoint,
    OutboxRecord,
    Well,
)

log = logging.getLogger(__name__)

# Any constant; it names "the outbox relay" among PostgreSQL advisory locks.
RELAY_LOCK_KEY = 0x5749_4D53_4F42  # "WIMSOB"


key_bytes = entity_key


async def _next_outbox_id(session: AsyncSession) -> int:
    return int(await session.scalar(NEXT_CONFIG_VERSION))


def _queue(session: AsyncSession, topic: topics.Topic, key: int, event: ev.Event, oid: int) -> None:
    session.add(OutboxRecord(id=oid, topic=topic.name, key=key_bytes(key), value=event.encode()))


async def queue_annulus_config(
    session: AsyncSession, annulus: Annulus, *, deleted: bool = False
) -> None:
    """Everything the MAASP worker needs for ``annulus``, as it is in this transaction."""
    points: list[CriticalPoint] = []
    if not deleted:
        points = list(
            await session.scalars(
                select(CriticalPoint)
                .where(CriticalPoint.annulus_id == annulus.id)
                .order_by(CriticalPoint.id)
            )
        )
    oid = await _next_outbox_id(session)
    event = annulus_config_event(annulus, points, oid, deleted=deleted)
    _queue(session, topics.ANNULUS_CONFIG, annulus.id, event, oid)


async def queue_well_config(session: AsyncSession, well: Well, *, deleted: bool = False) -> None:
    """The well's annuli, barrier elements (with envelope type, status, test dates) and
    consequence level, as they are in this transaction."""
    annuli: list[ev.AnnulusRef] = []
    elements: list[ev.BarrierElementConfig] = []
    if not deleted:
        # The number of critical points tells the integrity worker whether an annulus has a
        # MAASP at all, i.e. whether the well can be fully assessed.
        points = (
            select(func.count(CriticalPoint.id))
            .where(CriticalPoint.annulus_id == Annulus.id)
            .scalar_subquery()
        )
        annuli = [
            ev.AnnulusRef(id=a_id, name=name, critical_points=n)
            for a_id, name, n in await session.execute(
                select(Annulus.id, Annulus.name, points)
                .where(Annulus.well_id == well.id)
                .order_by(Annulus.name)
            )
        ]
        rows = await session.execute(
            select(BarrierElement, BarrierEnvelope.type)
            .join(BarrierEnvelope, BarrierEnvelope.id == BarrierElement.envelope_id)
            .where(BarrierEnvelope.well_id == well.id)
            .order_by(BarrierElement.id)
        )
        cement = list(
            await session.execute(
                select(
                    CementInterval.top_md, CementInterval.bottom_md, CementInterval.quality_flag
                ).where(CementInterval.well_id == well.id)
            )
        )
        elements = [
            ev.BarrierElementConfig(
                id=el.id,
                name=el.name,
                element_type=el.element_type,
                envelope_type=env_type,
                status=el.status,
                last_tested_at=el.last_tested_at,
                next_test_due=el.next_test_due,
                cement_quality=(
                    cement_quality_behind(el.depth_md, [tuple(r) for r in cement])
                    if el.element_type is ElementType.cement
                    else None
                ),
                cement_quality_override=el.cement_quality_override,
            )
            for el, env_type in rows
        ]
    oid = await _next_outbox_id(session)
    event = ev.WellConfig(
        event_id=ev.derived_id("well_config", well.id, oid),
        well_id=well.id,
        version=oid,
        name=well.name,
        type=well.type,
        location=well.location,
        consequence_level=well.consequence_level,
        annuli=annuli,
        elements=elements,
        commissioning=well.commissioning,
        deleted=deleted,
    )
    _queue(session, topics.WELL_CONFIG, well.id, event, oid)


async def queue_barrier_event(
    session: AsyncSession, event: ev.ElementStatusChanged | ev.BarrierTestRecorded
) -> None:
    oid = await _next_outbox_id(session)
    _queue(session, topics.BARRIER_EVENTS, event.well_id, event, oid)


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
            got = await conn.scalar(
                text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK_KEY}
            )
            if not got:
                return 0  # another API process is relaying right now
            rows = (
                await conn.execute(
                    text(
                        "SELECT id, topic, key, value FROM outbox WHERE sent_at IS NULL "
                        "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
                    ),
                    {"n": self._settings.outbox_batch_size},
                )
            ).all()
            OUTBOX_PENDING.set(len(rows))
            if not rows:
                return 0
            producer = await self._get_producer()
            futures: list[Any] = [
                await producer.send(row.topic, bytes(row.value), key=bytes(row.key)) for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*futures), 30)
            self.connected = True
            await conn.execute(
                text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)"),
                {"ids": [row.id for row in rows]},
            )
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

"""Alarm hygiene on a real integrity worker (real Kafka and PostgreSQL), with short times
set through its settings: a well seeded element by element raises no colour alert while its
snapshots record every colour; a commissioned well raises none until cleared; on a settled
well a failed barrier test is red at once; an amber that reverts within the persistence time
raises nothing, one that holds is alerted once it has persisted, with no further event."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Engine, text

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    ElementType,
    EnvelopeType,
    IntegrityStatus,
    TestResult,
    TestType,
    WellType,
)
from shared.infrastructure.settings import Settings
from tests.integration.test_integrity_worker import publish, statuses, wait_for
from tests.support.factories import make_well
from tests.support.stack import ServiceProcess, Stack, start_service

SETTLING_S = 4.0
PERSIST_S = 5.0
WORKER_ENV = {
    "WIMS_CONFIG_SETTLING_S": str(SETTLING_S),
    "WIMS_COLOUR_PERSIST_S": str(PERSIST_S),
    "WIMS_INTEGRITY_ALARM_SWEEP_S": "0.5",
}
LONG_AGO = datetime.now(UTC) - timedelta(days=30)  # a config that has long settled
GREEN, AMBER, RED = IntegrityStatus.green, IntegrityStatus.amber, IntegrityStatus.red


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[ServiceProcess]:
    svc = start_service(stack, "integrity", extra_env=WORKER_ENV)
    svc.wait_ready(timeout_s=90)
    yield svc
    svc.terminate(signal.SIGTERM)


def colour_alerts(settings: Settings, well_id: int) -> list[ev.Alert]:
    """Every integrity_status_changed alert of the well on the topic so far."""

    async def run() -> list[ev.Alert]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            parts = [
                TopicPartition(topics.ALERTS.name, p) for p in range(settings.topic_partitions)
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            ends = await consumer.end_offsets(parts)
            found: list[ev.Alert] = []
            while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for r in records:
                        if r.key != str(well_id).encode():
                            continue
                        alert = ev.decode(topics.ALERTS.name, r.value)
                        if alert.kind is AlertKind.integrity_status_changed:
                            found.append(alert)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(run())


class Well:
    """A well row plus its configs and barrier events, as the API would publish them."""

    def __init__(self, engine: Engine) -> None:
        self.id = make_well(engine, name=f"AH-{uuid.uuid4().hex[:10]}")
        self.version = 0
        self.elements: dict[int, tuple[EnvelopeType, ElementStatus]] = {}
        self.points = 0

    def element_id(self, n: int) -> int:
        return self.id * 100 + n

    def config(self, at: datetime, commissioning: bool = False) -> ev.WellConfig:
        self.version += 1
        return ev.WellConfig(
            well_id=self.id,
            version=self.version,
            name=f"AH-{self.id}",
            type=WellType.oil_producer,
            consequence_level=3,
            annuli=[ev.AnnulusRef(id=self.id * 100 + 99, name="A", critical_points=self.points)],
            elements=[
                ev.BarrierElementConfig(
                    id=eid,
                    name=f"element {eid}",
                    element_type=ElementType.sssv
                    if env is EnvelopeType.primary
                    else ElementType.casing,
                    envelope_type=env,
                    status=status,
                )
                for eid, (env, status) in self.elements.items()
            ],
            commissioning=commissioning,
            updated_at=at,
        )

    def settled(self, commissioning: bool = False) -> ev.WellConfig:
        """Fully configured (two elements, a MAASP) long ago."""
        self.points = 2
        self.elements = {
            self.element_id(1): (EnvelopeType.primary, ElementStatus.ok),
            self.element_id(2): (EnvelopeType.secondary, ElementStatus.ok),
        }
        return self.config(LONG_AGO, commissioning)

    def status(self, n: int, new: ElementStatus) -> ev.ElementStatusChanged:
        env, old = self.elements[self.element_id(n)]
        self.elements[self.element_id(n)] = (env, new)
        return ev.ElementStatusChanged(
            well_id=self.id,
            element_id=self.element_id(n),
            element_name=f"element {n}",
            element_type=ElementType.sssv if env is EnvelopeType.primary else ElementType.casing,
            envelope_type=env,
            old_status=old,
            new_status=new,
            ts=datetime.now(UTC),
        )

    def failed_test(self, n: int) -> ev.BarrierTestRecorded:
        env, _ = self.elements[self.element_id(n)]
        return ev.BarrierTestRecorded(
            well_id=self.id,
            element_id=self.element_id(n),
            element_name=f"element {n}",
            element_type=ElementType.sssv if env is EnvelopeType.primary else ElementType.casing,
            envelope_type=env,
            test_id=self.element_id(n),
            test_type=TestType.inflow,
            result=TestResult.failed,
            test_date=datetime.now(UTC),
        )


def send(settings: Settings, well: Well, *events: ev.Event) -> None:
    topic = {
        ev.WellConfig: topics.WELL_CONFIG,
        ev.ElementStatusChanged: topics.BARRIER_EVENTS,
        ev.BarrierTestRecorded: topics.BARRIER_EVENTS,
    }
    publish(settings, *[(topic[type(e)], well.id, e) for e in events])


def assessed(engine: Engine, well_id: int) -> list[bool]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT assessed FROM integrity_snapshot WHERE well_id = :w ORDER BY id"),
            {"w": well_id},
        )
        return [r[0] for r in rows]


def test_a_well_seeded_element_by_element_raises_no_colour_alert_then_red_is_at_once(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    # As the API publishes a well being seeded: a config per change, one topic, in order;
    # the colour swings on the way.
    P, S = EnvelopeType.primary, EnvelopeType.secondary
    steps = [
        ({1: (P, ElementStatus.ok)}, 0),  # secondary empty, no MAASP: amber, not assessed
        ({2: (S, ElementStatus.ok)}, 1),  # green
        ({3: (P, ElementStatus.unknown)}, 1),  # amber
        ({3: (P, ElementStatus.ok)}, 1),  # green (a status, not the make-up)
        ({4: (S, ElementStatus.degraded)}, 2),  # amber
        ({4: (S, ElementStatus.ok)}, 2),  # green
    ]
    for change, points in steps:
        well.elements |= {well.element_id(n): v for n, v in change.items()}
        well.points = points
        send(settings, well, well.config(datetime.now(UTC)))
    seeded_at = time.monotonic()
    wait_for(
        lambda: statuses(db_engine, well.id) == ["amber", "green"] * 3,
        "the snapshots of every colour on the way",
    )
    assert assessed(db_engine, well.id) == [False] + [True] * 5

    # The settling time is the rule under test: wait it out, then a failure is news.
    wait_for(
        lambda: time.monotonic() > seeded_at + SETTLING_S + 1 or None,
        "the end of the settling time",
        timeout_s=SETTLING_S + 5,
    )
    assert colour_alerts(settings, well.id) == []
    failed_at = datetime.now(UTC)
    send(settings, well, well.failed_test(1), well.failed_test(2))
    alerts = wait_for(lambda: colour_alerts(settings, well.id), "the red alert")
    # previous: green once a sweep saw the settled well green, else never announced (None)
    assert [(a.previous_status in (None, GREEN), a.status) for a in alerts] == [(True, RED)]
    assert "held_since" not in alerts[0].details
    assert alerts[0].ts - failed_at < timedelta(seconds=PERSIST_S), "red waited"


def test_a_commissioning_well_raises_no_colour_alert_until_cleared(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    send(settings, well, well.settled(commissioning=True))
    wait_for(lambda: statuses(db_engine, well.id) == ["green"], "a commissioning well")
    send(settings, well, well.failed_test(1), well.failed_test(2))
    # (one failed test after the other: amber, then red)
    wait_for(lambda: statuses(db_engine, well.id)[-1:] == ["red"], "the red snapshot")
    # The engineer ends commissioning (the same make-up: no settling): the colour the
    # operators were never told is announced now, and it is the only alert.
    well.elements = {k: (env, ElementStatus.failed) for k, (env, _) in well.elements.items()}
    send(settings, well, well.config(datetime.now(UTC), commissioning=False))
    alerts = wait_for(lambda: colour_alerts(settings, well.id), "the alert after commissioning")
    assert [(a.previous_status, a.status) for a in alerts] == [(None, RED)]


def test_an_amber_that_reverts_within_the_persistence_raises_nothing_one_that_holds_does(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    send(settings, well, well.settled())
    wait_for(lambda: statuses(db_engine, well.id) == ["green"], "a settled green well")
    send(settings, well, well.status(1, ElementStatus.degraded))
    wait_for(lambda: statuses(db_engine, well.id) == ["green", "amber"], "a brief amber")
    send(settings, well, well.status(1, ElementStatus.ok))
    wait_for(lambda: statuses(db_engine, well.id)[-1:] == ["green"], "green again")

    held_from = datetime.now(UTC)
    send(settings, well, well.status(2, ElementStatus.degraded))
    # Nothing more is published: only the worker's sweep can raise the alert.
    alerts = wait_for(
        lambda: colour_alerts(settings, well.id), "the amber that held", timeout_s=PERSIST_S + 20
    )
    assert [(a.previous_status, a.status) for a in alerts] == [(GREEN, AMBER)]
    assert alerts[0].ts - held_from >= timedelta(seconds=PERSIST_S)
    assert datetime.fromisoformat(alerts[0].details["held_since"]) >= held_from
    # Announced once: a later change within amber (a new reason) is written, not alerted.
    send(settings, well, well.status(1, ElementStatus.degraded))
    wait_for(lambda: len(statuses(db_engine, well.id)) == 5, "the snapshot of a new reason")
    assert len(colour_alerts(settings, well.id)) == 1

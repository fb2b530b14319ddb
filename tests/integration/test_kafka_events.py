"""Every event type survives a real round trip through the broker, decoded to an equal model."""

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    IntegrityStatus,
    Quality,
    RiskCategory,
    Severity,
    TaskPriority,
    TaskStatus,
    TestResult,
    TestType,
    TriggerType,
    UtilisationLevel,
    WellType,
)
from shared.infrastructure.settings import Settings

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)

SAMPLES: list[tuple[topics.Topic, ev.Event]] = [
    (
        topics.READINGS,
        ev.Reading(
            annulus_id=1,
            well_id=2,
            ts=NOW,
            pressure_bar=68.9476,
            temperature_c=61.2,
            quality=Quality.good,
            source="pi-north",
        ),
    ),
    (
        topics.READINGS_REJECTED,
        ev.RejectedReading(
            source="pi-north",
            index=3,
            record={"pressure": "x"},
            errors=[ev.FieldErrorModel(field="pressure", reason="not a number", code="bad_type")],
        ),
    ),
    (
        topics.ANNULUS_CONFIG,
        ev.AnnulusConfig(
            annulus_id=1,
            well_id=2,
            name="A",
            version=7,
            fluid_gradient_bar_per_m=0.1,
            critical_points=[
                ev.CriticalPointConfig(
                    id=4, label="packer", point_type="packer", tvd_m=2500, pressure_limit_bar=345
                )
            ],
        ),
    ),
    (
        topics.WELL_CONFIG,
        ev.WellConfig(
            well_id=2,
            version=3,
            name="W-2",
            type=WellType.gas_producer,
            consequence_level=4,
            annuli=[ev.AnnulusRef(id=1, name="A")],
            elements=[
                ev.BarrierElementConfig(
                    id=5,
                    name="SSSV",
                    element_type=ElementType.sssv,
                    envelope_type=EnvelopeType.primary,
                    status=ElementStatus.ok,
                    next_test_due=NOW,
                )
            ],
        ),
    ),
    (
        topics.MAASP_RESULTS,
        ev.MaaspResult(
            annulus_id=1,
            well_id=2,
            config_version=7,
            maasp_bar=145.5,
            limiting_point_id=4,
            limiting_point_name="packer",
        ),
    ),
    (
        topics.ANNULUS_STATE,
        ev.AnnulusState(
            well_id=2,
            annulus_id=1,
            ts=NOW,
            pressure_bar=120.0,
            maasp_bar=145.5,
            utilisation=0.82,
            level=UtilisationLevel.warning,
            reason="level_change",
        ),
    ),
    (
        topics.ALERTS,
        ev.Alert(
            kind=AlertKind.maasp_exceeded,
            severity=Severity.critical,
            well_id=2,
            annulus_id=1,
            ts=NOW,
            message="A annulus above MAASP",
            pressure_bar=150.0,
            maasp_bar=145.5,
            utilisation=1.03,
            limiting_point="packer",
            level=UtilisationLevel.exceeded,
        ),
    ),
    (
        topics.BARRIER_EVENTS,
        ev.ElementStatusChanged(
            well_id=2,
            barrier_element_id=5,
            element_name="SSSV",
            element_type=ElementType.sssv,
            envelope_type=EnvelopeType.primary,
            old_status=ElementStatus.ok,
            new_status=ElementStatus.failed,
            ts=NOW,
        ),
    ),
    (
        topics.BARRIER_EVENTS,
        ev.BarrierTestRecorded(
            well_id=2,
            barrier_element_id=5,
            element_name="SSSV",
            element_type=ElementType.sssv,
            envelope_type=EnvelopeType.primary,
            test_id=9,
            test_type=TestType.inflow,
            result=TestResult.failed,
            test_date=NOW,
            leak_rate=0.6,
            leak_rate_unit="m3/min",
        ),
    ),
    (
        topics.INTEGRITY_SNAPSHOTS,
        ev.IntegritySnapshot(
            well_id=2,
            created_at=NOW,
            overall_status=IntegrityStatus.amber,
            primary_status=EnvelopeStatus.failed,
            secondary_status=EnvelopeStatus.intact,
            probability=3,
            consequence=4,
            risk_score=48,
            risk_category=RiskCategory.high,
            findings=[{"code": "element_failed", "subject": "element:5"}],
        ),
    ),
    (
        topics.TASK_EVENTS,
        ev.TaskEvent(
            action="created",
            task_id=11,
            well_id=2,
            trigger_type=TriggerType.failed_test,
            target="element:5",
            priority=TaskPriority.critical,
            status=TaskStatus.open,
            due_date=NOW,
            title="Repair SSSV",
        ),
    ),
]


async def test_every_event_type_round_trips_through_kafka(settings: Settings) -> None:
    run = uuid4().hex[:8]  # this run's records, told apart from earlier ones on the topics
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
    )
    consumer = AIOKafkaConsumer(
        *{t.name for t, _ in SAMPLES},
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=f"roundtrip-{run}",
        auto_offset_reset="earliest",
    )
    await producer.start()
    await consumer.start()
    try:
        for topic, event in SAMPLES:
            await producer.send_and_wait(topic.name, event.encode(), key=f"{run}".encode())
        expected = {(t.name, e.event_id): e for t, e in SAMPLES}
        received: dict = {}
        async with asyncio.timeout(30):
            while len(received) < len(expected):
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    for record in records:
                        if record.key != run.encode():
                            continue
                        decoded = ev.decode(tp.topic, record.value)
                        received[(tp.topic, decoded.event_id)] = decoded
    finally:
        await consumer.stop()
        await producer.stop()
    assert received == expected
    assert {type(e) for e in received.values()} == {type(e) for _, e in SAMPLES}

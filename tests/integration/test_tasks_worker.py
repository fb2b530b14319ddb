"""The tasks worker as a real process on real Kafka and PostgreSQL: events become the right
tasks, once; a closed task is not reopened by a replay but by a new event."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import Engine, text

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    IntegrityStatus,
    RiskCategory,
    Severity,
    TestResult,
    TestType,
)
from shared.infrastructure.compat.record_batches import refresh_metadata
from shared.infrastructure.settings import Settings
from tests.support.factories import make_annulus, make_barrier_element, make_well
from tests.support.stack import ServiceProcess, Stack, start_service

TS = datetime(2026, 5, 4, 7, 30, tzinfo=UTC)
_names = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def produce(settings: Settings, topic: str, events: list[ev.Event | bytes], well_id: int) -> None:
    """Send values keyed by well id (as every producer of these topics does) and wait for acks."""

    async def run() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            key = str(well_id).encode()
            futures = [
                await producer.send(topic, key=key, value=e if isinstance(e, bytes) else e.encode())
                for e in events
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())


def wait_for(check: Callable[[], Any], what: str, timeout_s: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.2)


def tasks_of(engine: Engine, well_id: int, trigger_type: str | None = None) -> list[Any]:
    sql = (
        "SELECT id, trigger_type::text AS trigger_type, target, annulus_id, barrier_element_id,"
        " priority::text AS priority, status::text AS status, title, description,"
        " auto_generated, due_date FROM task WHERE well_id = :w"
    )
    params: dict[str, Any] = {"w": well_id}
    if trigger_type:
        sql += " AND trigger_type = CAST(:t AS trigger_type)"
        params["t"] = trigger_type
    with engine.connect() as conn:
        return list(conn.execute(text(sql + " ORDER BY id"), params).all())


def alert(kind: AlertKind, well_id: int, annulus_id: int, pressure: float, **kw: Any) -> ev.Alert:
    return ev.Alert(
        kind=kind,
        severity=Severity.critical if kind is AlertKind.maasp_exceeded else Severity.warning,
        well_id=well_id,
        annulus_id=annulus_id,
        ts=TS,
        message=f"{kind.value} on annulus {annulus_id}",
        pressure_bar=pressure,
        maasp_bar=205.0,
        utilisation=pressure / 205.0,
        limiting_point="shoe",
        **kw,
    )


def drain(settings: Settings, engine: Engine, well_id: int) -> None:
    """Wait until the worker has handled everything sent for this well so far.

    Values keyed by one well share a partition and the worker reads a partition in order:
    once a marker alert sent last has its task, everything before it was processed.
    """
    marker_annulus = make_annulus(engine, well_id, name=f"M{next(_names)}")
    produce(
        settings,
        topics.ALERTS.name,
        [alert(AlertKind.maasp_warning, well_id, marker_annulus, 170.0)],
        well_id,
    )
    wait_for(
        lambda: any(t.annulus_id == marker_annulus for t in tasks_of(engine, well_id)),
        "the marker alert's task",
    )


def find_task_event(settings: Settings, match: Callable[[ev.TaskEvent], bool]) -> ev.TaskEvent:
    """Read wims.task-events from the beginning until an event matches (or time runs out)."""

    async def run() -> ev.TaskEvent | None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        try:
            parts = [
                TopicPartition(topics.TASK_EVENTS.name, p)
                for p in consumer.partitions_for_topic(topics.TASK_EVENTS.name)
                or await _partitions(consumer)
            ]
            consumer.assign(parts)
            await consumer.seek_to_beginning(*parts)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                batches = await consumer.getmany(timeout_ms=500)
                for records in batches.values():
                    for record in records:
                        event = ev.decode(topics.TASK_EVENTS.name, record.value)
                        if match(event):
                            return event
            return None
        finally:
            await consumer.stop()

    found = asyncio.run(run())
    assert found is not None, "no matching TaskEvent on wims.task-events"
    return found


async def _partitions(consumer: AIOKafkaConsumer) -> set[int]:
    await refresh_metadata(consumer)  # a fresh client may not know the topic yet
    return consumer.partitions_for_topic(topics.TASK_EVENTS.name) or set()


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[ServiceProcess]:
    svc = start_service(stack, "tasks")
    svc.wait_ready(timeout_s=90)
    yield svc
    svc.terminate()


def test_exceedance_delivered_three_times_opens_one_task_and_a_new_one_after_close(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well_id = make_well(db_engine, unique("W"))
    annulus_id = make_annulus(db_engine, well_id, "B")
    first = alert(
        AlertKind.maasp_exceeded, well_id, annulus_id, 212.4, details={"annulus_name": "B"}
    )
    second = alert(
        AlertKind.maasp_exceeded, well_id, annulus_id, 220.0, details={"annulus_name": "B"}
    )
    produce(settings, topics.ALERTS.name, [first, first, first, second], well_id)
    drain(settings, db_engine, well_id)

    tasks = tasks_of(db_engine, well_id, "maasp_exceed")
    assert len(tasks) == 1, f"expected one task, got {tasks}"
    task = tasks[0]
    assert (task.status, task.priority, task.target) == (
        "open",
        "critical",
        f"annulus:{annulus_id}",
    )
    assert task.auto_generated and task.annulus_id == annulus_id
    assert "B annulus" in task.title
    # The latest exceedance's numbers, so the engineer sees how far above MAASP it went.
    assert "220.0 bar" in task.description and "MAASP 205.0 bar" in task.description

    created = find_task_event(settings, lambda e: e.task_id == task.id and e.action == "created")
    assert created.trigger_type == "maasp_exceed" and created.well_id == well_id
    assert created.priority == "critical"

    with db_engine.begin() as conn:
        conn.execute(
            text("UPDATE task SET status = 'done', closed_at = now() WHERE id = :id"),
            {"id": task.id},
        )
    # A replay of an alert already applied must not reopen the closed task...
    produce(settings, topics.ALERTS.name, [first, second], well_id)
    drain(settings, db_engine, well_id)
    assert [t.status for t in tasks_of(db_engine, well_id, "maasp_exceed")] == ["done"]

    # ...but a new exceedance does.
    third = alert(AlertKind.maasp_exceeded, well_id, annulus_id, 230.5)
    produce(settings, topics.ALERTS.name, [third], well_id)
    reopened = wait_for(
        lambda: [t for t in tasks_of(db_engine, well_id, "maasp_exceed") if t.status == "open"],
        "a new task after the first was closed",
    )
    assert len(reopened) == 1 and reopened[0].id != task.id
    assert "230.5 bar" in reopened[0].description


def test_warning_then_exceedance_keep_their_own_tasks_and_repeat_escalates_never_lowers(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well_id = make_well(db_engine, unique("W"))
    annulus_id = make_annulus(db_engine, well_id, "A")
    warning = alert(AlertKind.maasp_warning, well_id, annulus_id, 170.0)
    produce(settings, topics.ALERTS.name, [warning], well_id)
    wait_for(lambda: tasks_of(db_engine, well_id, "maasp_warning"), "the warning task")
    # A milder repeat of a warning (same trigger) never lowers the priority.
    milder = alert(AlertKind.maasp_warning, well_id, annulus_id, 165.0)
    exceed = alert(AlertKind.maasp_exceeded, well_id, annulus_id, 210.0)
    produce(settings, topics.ALERTS.name, [milder, exceed], well_id)
    drain(settings, db_engine, well_id)

    by_trigger = {
        t.trigger_type: t for t in tasks_of(db_engine, well_id) if t.annulus_id == annulus_id
    }
    assert set(by_trigger) == {"maasp_warning", "maasp_exceed"}
    assert by_trigger["maasp_warning"].priority == "high"
    assert "165.0 bar" in by_trigger["maasp_warning"].description
    assert by_trigger["maasp_exceed"].priority == "critical"


def test_failed_sssv_test_opens_critical_failed_test_task(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well_id = make_well(db_engine, unique("W"))
    sssv = make_barrier_element(db_engine, well_id, "SSSV-1", "sssv", "primary")
    seal = make_barrier_element(db_engine, well_id, "WH seal", "wellhead_seal", "secondary")

    def recorded(element_id: int, name: str, et: ElementType, env: EnvelopeType, result):  # type: ignore[no-untyped-def]
        return ev.BarrierTestRecorded(
            well_id=well_id,
            barrier_element_id=element_id,
            element_name=name,
            element_type=et,
            envelope_type=env,
            test_id=next(_names),
            test_type=TestType.leak_rate,
            result=result,
            test_date=TS,
            leak_rate=0.6,
            leak_rate_unit="m3/min",
        )

    passed = recorded(
        seal, "WH seal", ElementType.wellhead_seal, EnvelopeType.secondary, TestResult.passed
    )
    failed = recorded(sssv, "SSSV-1", ElementType.sssv, EnvelopeType.primary, TestResult.failed)
    produce(settings, topics.BARRIER_EVENTS.name, [passed, failed], well_id)

    tasks = wait_for(lambda: tasks_of(db_engine, well_id, "failed_test"), "the failed-test task")
    # The passed test came first on the same partition: it opened nothing.
    assert len(tasks) == 1
    task = tasks[0]
    assert (task.priority, task.target, task.barrier_element_id) == (
        "critical",
        f"element:{sssv}",
        sssv,
    )
    assert "SSSV-1" in task.title and "leak rate 0.6 m3/min" in task.description
    assert "Repair or replace" in task.description


def test_red_integrity_snapshot_opens_critical_review(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well_id = make_well(db_engine, unique("W"))

    def snap(status: IntegrityStatus, previous: IntegrityStatus) -> ev.IntegritySnapshot:
        return ev.IntegritySnapshot(
            well_id=well_id,
            created_at=TS,
            overall_status=status,
            previous_status=previous,
            primary_status=EnvelopeStatus.failed,
            secondary_status=EnvelopeStatus.degraded,
            probability=4,
            consequence=4,
            risk_score=64,
            risk_category=RiskCategory.high,
            findings=[{"code": "envelope_failed", "message": "primary envelope failed: SSSV-1"}],
        )

    produce(
        settings,
        topics.INTEGRITY_SNAPSHOTS.name,
        [
            snap(IntegrityStatus.amber, IntegrityStatus.green),
            snap(IntegrityStatus.red, IntegrityStatus.amber),
        ],
        well_id,
    )
    tasks = wait_for(lambda: tasks_of(db_engine, well_id, "integrity_red"), "the review task")
    assert len(tasks) == 1
    assert (tasks[0].priority, tasks[0].target) == ("critical", f"well:{well_id}")
    assert "primary envelope failed: SSSV-1" in tasks[0].description
    assert "(was amber)" in tasks[0].description


def test_bad_message_is_counted_and_skipped_without_losing_the_next(
    worker: ServiceProcess, settings: Settings, db_engine: Engine
) -> None:
    well_id = make_well(db_engine, unique("W"))
    annulus_id = make_annulus(db_engine, well_id, "A")
    wrong_kind = alert(AlertKind.maasp_exceeded, well_id, annulus_id, 1.0).model_dump(mode="json")
    wrong_kind["kind"] = "volcano"
    produce(
        settings,
        topics.ALERTS.name,
        [
            b"{not json",
            orjson.dumps(wrong_kind),
            alert(AlertKind.maasp_exceeded, well_id, annulus_id, 211.0),
        ],
        well_id,
    )
    wait_for(lambda: tasks_of(db_engine, well_id, "maasp_exceed"), "the good alert's task")
    metrics = httpx.get(f"{worker.base_url}/metrics", timeout=5).text
    failed = {
        reason: float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        for reason in ("undecodable", "invalid")
        if line.startswith("wims_tasks_events_failed_total")
        and f'reason="{reason}"' in line
        and 'topic="wims.alerts"' in line
    }
    # Not JSON: undecodable; an unknown alert kind: invalid. Both kept as dead letters.
    assert failed.get("undecodable", 0) >= 1 and failed.get("invalid", 0) >= 1
    dead = [
        line
        for line in metrics.splitlines()
        if line.startswith("wims_dead_letters_total") and 'service="tasks"' in line
    ]
    assert sum(float(line.rsplit(" ", 1)[1]) for line in dead) >= 2
    assert "wims_tasks_created_total" in metrics

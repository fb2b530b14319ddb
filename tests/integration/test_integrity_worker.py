"""The integrity worker as a real process on real Kafka and PostgreSQL: barrier failures and
annulus alerts change the well colour, one snapshot per change, a passing due date is
noticed without any event, a bad message is skipped, and a killed worker recovers its
state from the changelog without writing a snapshot twice."""

from __future__ import annotations

import asyncio
import re
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from sqlalchemy import Engine, text

from services.integrity.worker import INPUT_TOPICS
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    ElementStatus,
    ElementType,
    EnvelopeType,
    IntegrityStatus,
    Severity,
    TestResult,
    TestType,
    UtilisationLevel,
    WellType,
)
from shared.infrastructure.settings import Settings
from tests.support.factories import make_well
from tests.support.stack import ServiceProcess, Stack, start_service

T = TypeVar("T")

WORKER_ENV = {
    # The periodic re-evaluation runs every second here so a passing test due date shows up
    # within the test's patience; in production it is a minute.
    "WIMS_INTEGRITY_REEVALUATE_SECONDS": "1",
    # These tests are about colours, snapshots and recovery: every colour change is alerted
    # as it happens. Alarm hygiene (settling, persistence) has its own module.
    "WIMS_CONFIG_SETTLING_S": "0",
    "WIMS_COLOUR_PERSIST_S": "0",
}

PRIMARY = [
    ("SSSV", ElementType.sssv),
    ("Production packer", ElementType.packer),
    ("Tubing", ElementType.tubing),
]
SECONDARY = [
    ("Production casing", ElementType.casing),
    ("Wellhead", ElementType.wellhead),
    ("Tubing hanger seal", ElementType.wellhead_seal),
]


# ------------------------------------------------------------------------------ helpers


class Worker:
    """The integrity worker process, restartable by the restart test."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.svc: ServiceProcess | None = None

    def start(self) -> None:
        self.svc = start_service(self.stack, "integrity", extra_env=WORKER_ENV)
        self.svc.wait_ready(timeout_s=90)

    def metric(self, name: str, **labels: str) -> float:
        assert self.svc is not None
        body = httpx.get(f"{self.svc.base_url}/metrics", timeout=5).text
        total = 0.0
        for line in body.splitlines():
            m = re.match(rf"^{name}(?:\{{(.*)\}})? (\S+)$", line)
            if m is None:
                continue
            found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total


@pytest.fixture(scope="module")
def worker(stack: Stack) -> Iterator[Worker]:
    w = Worker(stack)
    w.start()
    yield w
    if w.svc is not None:
        w.svc.terminate(signal.SIGTERM)


def wait_for(fn: Callable[[], T | None], what: str, timeout_s: float = 30.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout_s
    last: T | None = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; last: {last!r}")


def publish(settings: Settings, *items: tuple[topics.Topic, int, ev.Event | bytes]) -> None:
    """Send (topic, well id, event) in order, keyed by well id, and wait for delivery."""

    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, acks="all", enable_idempotence=True
        )
        await producer.start()
        try:
            for topic, well_id, event in items:
                value = event if isinstance(event, bytes) else event.encode()
                await producer.send_and_wait(topic.name, value, key=str(well_id).encode())
        finally:
            await producer.stop()

    asyncio.run(run())


def read_topic(settings: Settings, topic: topics.Topic, well_id: int, count: int) -> list[Any]:
    """The first ``count`` events on ``topic`` keyed by ``well_id`` (fails if fewer come)."""

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(
            topic.name,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=f"test-integrity-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
        )
        await consumer.start()
        found: list[Any] = []
        try:
            async with asyncio.timeout(30):
                while len(found) < count:
                    batch = await consumer.getmany(timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            if record.key == str(well_id).encode():
                                found.append(ev.decode(topic.name, record.value))
        finally:
            await consumer.stop()
        return found

    return asyncio.run(run())


def uncommitted(settings: Settings) -> int:
    """Input messages the integrity worker's consumer group has not committed yet."""

    async def run() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
        consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
        await admin.start()
        await consumer.start()
        try:
            committed = await admin.list_consumer_group_offsets("wims-integrity")
            tps = [
                TopicPartition(t, p) for t in INPUT_TOPICS for p in range(settings.topic_partitions)
            ]
            ends = await consumer.end_offsets(tps)
            return sum(
                end - (committed[tp].offset if tp in committed else 0) for tp, end in ends.items()
            )
        finally:
            await consumer.stop()
            await admin.close()

    return asyncio.run(run())


def changelog_dump(settings: Settings, well_id: int) -> list[str]:
    """The well's records on the worker's table changelog, to explain a failed recovery."""

    async def run() -> list[str]:
        consumer = AIOKafkaConsumer(
            "wims-integrity-well-state-changelog",
            bootstrap_servers=settings.kafka_bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        out = []
        try:
            batch = await consumer.getmany(timeout_ms=3000)
            for tp, records in batch.items():
                for r in records:
                    if r.key == str(well_id).encode():
                        out.append(f"{tp.partition}@{r.offset}: {r.value[:600]!r}")
        finally:
            await consumer.stop()
        return out

    return asyncio.run(run())


def snapshots(engine: Engine, well_id: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT event_id, overall_status AS status, primary_status AS primary,"
                " secondary_status AS secondary, risk_score, findings"
                " FROM integrity_snapshot WHERE well_id = :w ORDER BY id"
            ),
            {"w": well_id},
        ).mappings()
        return [dict(r) for r in rows]


def statuses(engine: Engine, well_id: int) -> list[str]:
    return [r["status"] for r in snapshots(engine, well_id)]


def wait_statuses(engine: Engine, well_id: int, expected: list[str], what: str) -> None:
    wait_for(lambda: statuses(engine, well_id) == expected, f"{what}: snapshots {expected}")


def codes(snapshot: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["code"], f["subject"]) for f in snapshot["findings"]}


class Well:
    """A well row in the database plus its barrier layout, for building its events."""

    def __init__(self, engine: Engine, annuli: tuple[str, ...] = ()) -> None:
        self.id = make_well(engine, name=f"W-{uuid.uuid4().hex[:10]}")
        base = self.id * 100
        self.elements = {
            name: (base + i, etype, EnvelopeType.primary)
            for i, (name, etype) in enumerate(PRIMARY, start=1)
        } | {
            name: (base + 10 + i, etype, EnvelopeType.secondary)
            for i, (name, etype) in enumerate(SECONDARY, start=1)
        }
        self.annuli = {name: base + 50 + i for i, name in enumerate(annuli, start=1)}
        self.clock = datetime.now(UTC)

    def tick(self) -> datetime:
        """A strictly later time for each fact, as readings and tests happen in order."""
        self.clock += timedelta(seconds=1)
        return self.clock

    def config(self, version: int = 1, due: dict[str, datetime] | None = None) -> ev.WellConfig:
        return ev.WellConfig(
            well_id=self.id,
            version=version,
            name=f"W-{self.id}",
            type=WellType.oil_producer,
            consequence_level=3,
            annuli=[ev.AnnulusRef(id=aid, name=name) for name, aid in self.annuli.items()],
            elements=[
                ev.BarrierElementConfig(
                    id=eid,
                    name=name,
                    element_type=etype,
                    envelope_type=env,
                    status=ElementStatus.ok,
                    next_test_due=(due or {}).get(name),
                )
                for name, (eid, etype, env) in self.elements.items()
            ],
        )

    def _element(self, name: str) -> dict[str, Any]:
        eid, etype, env = self.elements[name]
        return dict(
            well_id=self.id,
            barrier_element_id=eid,
            element_name=name,
            element_type=etype,
            envelope_type=env,
        )

    def failed_test(self, name: str) -> ev.BarrierTestRecorded:
        return ev.BarrierTestRecorded(
            **self._element(name),
            test_id=self.elements[name][0],
            test_type=TestType.inflow,
            result=TestResult.failed,
            test_date=self.tick(),
            leak_rate=0.6,
            leak_rate_unit="m3/min",
        )

    def status_change(self, name: str, old: ElementStatus, new: ElementStatus) -> Any:
        return ev.ElementStatusChanged(
            **self._element(name), old_status=old, new_status=new, ts=self.tick()
        )

    def annulus_state(
        self, name: str, utilisation: float, level: UtilisationLevel
    ) -> ev.AnnulusState:
        return ev.AnnulusState(
            well_id=self.id,
            annulus_id=self.annuli[name],
            annulus_name=name,
            ts=self.tick(),
            pressure_bar=utilisation * 100,
            maasp_bar=100.0,
            utilisation=utilisation,
            level=level,
            reason="heartbeat",
        )

    def alert(
        self, name: str, kind: AlertKind, utilisation: float, level: UtilisationLevel
    ) -> ev.Alert:
        return ev.Alert(
            kind=kind,
            severity=Severity.critical if kind is AlertKind.maasp_exceeded else Severity.info,
            well_id=self.id,
            annulus_id=self.annuli[name],
            ts=self.tick(),
            message=f"{name} annulus {kind.value}",
            pressure_bar=utilisation * 100,
            maasp_bar=100.0,
            utilisation=utilisation,
            level=level,
        )


# ------------------------------------------------------------------------------ tests


def test_events_waiting_at_the_first_start_are_all_folded(
    stack: Stack, settings: Settings, db_engine: Engine
) -> None:
    """The worker's first start on a new broker creates its table's changelog and folds
    what is already waiting straight away: nothing may be skipped for the producer not
    knowing the new changelog yet (seen on a loaded machine). First in the module, so
    this worker is the first (make test gives the module a broker of its own)."""
    wells = [Well(db_engine, annuli=("A",)) for _ in range(3)]
    for well in wells:
        publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
        exceeded = well.alert("A", AlertKind.maasp_exceeded, 1.03, UtilisationLevel.exceeded)
        publish(settings, (topics.ALERTS, well.id, exceeded))
    first = Worker(stack)
    first.start()
    try:
        for well in wells:
            # Red in the end (config and alert are on two topics: green first or not).
            wait_for(
                lambda w=well: statuses(db_engine, w.id)[-1:] == ["red"] or None,
                f"well {well.id} red",
            )
        assert first.metric("wims_integrity_events_failed_total") == 0
    finally:
        assert first.svc is not None
        first.svc.terminate(signal.SIGTERM)


def test_failed_sssv_turns_the_well_amber_and_a_secondary_failure_red(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "intact envelopes")
    first = snapshots(db_engine, well.id)[0]
    assert (first["primary"], first["secondary"], first["findings"]) == ("intact", "intact", [])

    # The test record and the status change both say the SSSV failed: one change, one row.
    publish(
        settings,
        (topics.BARRIER_EVENTS, well.id, well.failed_test("SSSV")),
        (
            topics.BARRIER_EVENTS,
            well.id,
            well.status_change("SSSV", ElementStatus.ok, ElementStatus.failed),
        ),
    )
    wait_statuses(db_engine, well.id, ["green", "amber"], "a failed SSSV")
    amber = snapshots(db_engine, well.id)[1]
    sssv = f"element:{well.elements['SSSV'][0]}"
    assert (amber["primary"], amber["secondary"]) == ("failed", "intact")
    assert ("element_failed", sssv) in codes(amber)
    assert ("envelope_failed", "envelope:primary") in codes(amber)

    publish(
        settings,
        (
            topics.BARRIER_EVENTS,
            well.id,
            well.status_change("Production casing", ElementStatus.ok, ElementStatus.failed),
        ),
    )
    # Same topic and partition as the SSSV events: once red is written, the duplicate
    # status change before it is known to have produced no snapshot of its own.
    wait_statuses(db_engine, well.id, ["green", "amber", "red"], "a failed casing")
    rows = snapshots(db_engine, well.id)
    assert (rows[2]["primary"], rows[2]["secondary"]) == ("failed", "failed")
    assert rows[2]["risk_score"] > rows[1]["risk_score"] > rows[0]["risk_score"]

    # Every snapshot row is also on the topic, under the same event id.
    on_topic = read_topic(settings, topics.INTEGRITY_SNAPSHOTS, well.id, 3)
    assert [s.event_id for s in on_topic] == [r["event_id"] for r in rows]
    assert [s.previous_status for s in on_topic] == [
        None,
        IntegrityStatus.green,
        IntegrityStatus.amber,
    ]

    # The periodic re-evaluation counts wells by colour (this one and any red before it).
    wait_for(lambda: worker.metric("wims_integrity_wells", status="red") >= 1, "a red well")

    # The operations centre hears of each colour change, red as critical.
    alerts = [
        a
        for a in read_topic(settings, topics.ALERTS, well.id, 2)
        if a.kind is AlertKind.integrity_status_changed
    ]
    assert [(a.previous_status, a.status, a.severity) for a in alerts] == [
        (IntegrityStatus.green, IntegrityStatus.amber, Severity.warning),
        (IntegrityStatus.amber, IntegrityStatus.red, Severity.critical),
    ]


def test_maasp_exceeded_turns_a_green_well_red_and_clearing_returns_it(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine, annuli=("A",))
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "a new well")

    publish(
        settings,
        (
            topics.ALERTS,
            well.id,
            well.alert("A", AlertKind.maasp_exceeded, 1.03, UtilisationLevel.exceeded),
        ),
    )
    wait_statuses(db_engine, well.id, ["green", "red"], "MAASP exceeded")
    red = snapshots(db_engine, well.id)[1]
    assert (red["primary"], red["secondary"]) == ("intact", "intact")
    assert ("maasp_exceeded", f"annulus:{well.annuli['A']}") in codes(red)

    # The same exceedance reported again, at other pressures: nothing new to record.
    repeats = [
        (
            topics.ALERTS,
            well.id,
            well.alert("A", AlertKind.maasp_exceeded, u, UtilisationLevel.exceeded),
        )
        for u in (1.04, 1.06, 1.05)
    ]
    cleared = well.alert("A", AlertKind.maasp_cleared, 0.7, UtilisationLevel.normal)
    publish(settings, *repeats, (topics.ALERTS, well.id, cleared))
    # The clear follows the repeats on the same partition, so this also proves the repeats
    # wrote nothing.
    wait_statuses(db_engine, well.id, ["green", "red", "green"], "MAASP cleared")
    assert not any(code == "maasp_exceeded" for code, _ in codes(snapshots(db_engine, well.id)[2]))


def test_readings_within_a_band_write_no_snapshot(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine, annuli=("A", "B"))
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "a new well")
    # No MAASP verdict yet on either annulus: recorded as a finding, colour unaffected.
    assert {c for c, _ in codes(snapshots(db_engine, well.id)[0])} == {"missing_maasp"}

    states = [
        (topics.ANNULUS_STATE, well.id, well.annulus_state(name, u, UtilisationLevel.normal))
        for name, u in (("A", 0.30), ("B", 0.20), ("A", 0.35), ("B", 0.22), ("A", 0.41))
    ]
    # Each annulus's first verdict removes its missing_maasp finding: a change each.
    publish(settings, *states[:2])
    wait_statuses(db_engine, well.id, ["green"] * 3, "both annuli reporting")
    assert snapshots(db_engine, well.id)[-1]["findings"] == []

    warning = well.annulus_state("A", 0.86, UtilisationLevel.warning)
    publish(settings, *states[2:], (topics.ANNULUS_STATE, well.id, warning))
    # The warning follows three readings that moved within the normal band, on the same
    # partition: once it is written, they are known to have written nothing.
    wait_statuses(db_engine, well.id, ["green"] * 3 + ["amber"], "warning level on annulus A")


def test_an_overdue_test_degrades_the_well_without_any_event(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    due = datetime.now(UTC) + timedelta(seconds=6)
    publish(settings, (topics.WELL_CONFIG, well.id, well.config(due={"SSSV": due})))
    wait_statuses(db_engine, well.id, ["green"], "SSSV test not yet due")
    # Nothing is published from here on: only the periodic re-evaluation can notice.
    wait_statuses(db_engine, well.id, ["green", "amber"], "SSSV test overdue")
    amber = snapshots(db_engine, well.id)[1]
    assert amber["primary"] == "degraded"
    assert ("element_test_overdue", f"element:{well.elements['SSSV'][0]}") in codes(amber)


def test_a_bad_message_is_dead_lettered_without_stopping_the_worker(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine)
    failed_before = worker.metric(
        "wims_integrity_events_failed_total", topic=topics.BARRIER_EVENTS.name
    )
    dead = {
        reason: worker.metric(
            "wims_dead_letters_total",
            service="integrity",
            topic=topics.BARRIER_EVENTS.name,
            reason=reason,
        )
        for reason in ("undecodable", "invalid")
    }
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "a new well")
    publish(
        settings,
        (topics.BARRIER_EVENTS, well.id, b'{"event_type": "element_status_changed"}'),
        (topics.BARRIER_EVENTS, well.id, b"not json at all"),
        (
            topics.BARRIER_EVENTS,
            well.id,
            well.status_change("Wellhead", ElementStatus.ok, ElementStatus.degraded),
        ),
    )
    wait_statuses(db_engine, well.id, ["green", "amber"], "the good event after two bad ones")
    assert snapshots(db_engine, well.id)[-1]["secondary"] == "degraded"
    assert (
        worker.metric("wims_integrity_events_failed_total", topic=topics.BARRIER_EVENTS.name)
        == failed_before + 2
    )
    # Kept for a person to read and replay: a contract breach and bytes that are no event.
    for reason in ("undecodable", "invalid"):
        assert (
            worker.metric(
                "wims_dead_letters_total",
                service="integrity",
                topic=topics.BARRIER_EVENTS.name,
                reason=reason,
            )
            == dead[reason] + 1
        )
    assert worker.metric("wims_integrity_snapshots_written_total") >= 2


def wait_after_restart(
    worker: Worker, settings: Settings, well: Well, count: int, what: str, engine: Engine
) -> None:
    """Wait for the well's ``count``-th snapshot from a restarted worker; on timeout, fail
    with what explains a failed recovery: the worker's counters, its group's lag, the
    well's changelog records and the end of the worker's log."""
    try:
        wait_for(lambda: len(snapshots(engine, well.id)) >= count, what, timeout_s=60)
    except AssertionError as exc:
        assert worker.svc is not None
        diag = (
            f"processed={worker.metric('wims_integrity_events_processed_total')} "
            f"failed={worker.metric('wims_integrity_events_failed_total')} "
            f"uncommitted={uncommitted(settings)}"
        )
        diag += "\nchangelog:\n" + "\n".join(changelog_dump(settings, well.id))
        raise AssertionError(f"{exc}\n{diag}\nworker log:\n{worker.svc.log_tail(60)}") from None


def test_a_killed_worker_recovers_its_state_and_writes_no_duplicates(
    worker: Worker, stack: Stack, settings: Settings, db_engine: Engine
) -> None:
    well = Well(db_engine, annuli=("A",))
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "a new well")
    publish(
        settings,
        (
            topics.BARRIER_EVENTS,
            well.id,
            well.status_change("SSSV", ElementStatus.ok, ElementStatus.failed),
        ),
        (
            topics.BARRIER_EVENTS,
            well.id,
            well.status_change("Production casing", ElementStatus.ok, ElementStatus.failed),
        ),
    )
    wait_statuses(db_engine, well.id, ["green", "amber", "red"], "two failed envelopes")
    publish(
        settings,
        (
            topics.ALERTS,
            well.id,
            well.alert("A", AlertKind.maasp_exceeded, 1.02, UtilisationLevel.exceeded),
        ),
    )
    # Still red, but the exceedance is a new reason: recorded.
    wait_for(
        lambda: len(snapshots(db_engine, well.id)) == 4, "the exceedance snapshot on a red well"
    )
    before = snapshots(db_engine, well.id)
    assert ("maasp_exceeded", f"annulus:{well.annuli['A']}") in codes(before[3])

    # Everything consumed is committed, so the restarted worker has no input to replay:
    # what it knows of this well can only come from the table's changelog.
    wait_for(lambda: uncommitted(settings) == 0, "the worker to commit its offsets")
    # SIGKILL: no chance to flush or leave the group cleanly.
    assert worker.svc is not None
    worker.svc.kill()
    worker.start()

    publish(
        settings,
        (
            topics.ALERTS,
            well.id,
            well.alert("A", AlertKind.maasp_cleared, 0.5, UtilisationLevel.normal),
        ),
    )
    wait_after_restart(worker, settings, well, 5, "the snapshot after the clear", db_engine)
    after = snapshots(db_engine, well.id)
    assert after[:4] == before
    assert len(after) == 5
    # Cleared pressure cannot mend two failed envelopes the worker only knows of from its
    # recovered state: the well stays red.
    last = after[4]
    assert (last["status"], last["primary"], last["secondary"]) == ("red", "failed", "failed")
    assert not any(code == "maasp_exceeded" for code, _ in codes(last))

    # Killed again straight after the snapshot, before or after the commit of the clear:
    # if the restarted worker replays it, the same derived snapshot id stores nothing twice.
    worker.svc.kill()
    worker.start()
    publish(
        settings,
        (
            topics.ALERTS,
            well.id,
            well.alert("A", AlertKind.sap_detected, 0.5, UtilisationLevel.normal),
        ),
    )
    wait_after_restart(worker, settings, well, 6, "the SAP snapshot", db_engine)
    final = snapshots(db_engine, well.id)
    assert final[:5] == after and len(final) == 6
    assert ("sap_detected", f"annulus:{well.annuli['A']}") in codes(final[5])


def test_a_worker_restarted_again_and_again_misses_no_event(
    worker: Worker, settings: Settings, db_engine: Engine
) -> None:
    # Each restart ends a table recovery while the alert published during the start waits
    # on the input topic: faust 0.15.3 could fetch it in that instant and drop it for good
    # (shared.infrastructure.faust_app works around it). Several restarts in a row, each straight after
    # the previous snapshot, each alert must still make its snapshot, and only one.
    well = Well(db_engine, annuli=("A",))
    publish(settings, (topics.WELL_CONFIG, well.id, well.config()))
    wait_statuses(db_engine, well.id, ["green"], "a new well")
    alerts = [
        (AlertKind.maasp_exceeded, 1.02, UtilisationLevel.exceeded),
        (AlertKind.maasp_cleared, 0.5, UtilisationLevel.normal),
    ]
    for cycle in range(4):
        assert worker.svc is not None
        worker.svc.kill()
        worker.start()
        kind, utilisation, level = alerts[cycle % 2]
        publish(settings, (topics.ALERTS, well.id, well.alert("A", kind, utilisation, level)))
        wait_after_restart(worker, settings, well, cycle + 2, f"restart {cycle + 1}", db_engine)
    assert statuses(db_engine, well.id) == ["green", "red", "green", "red", "green"]

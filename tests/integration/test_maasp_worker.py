"""The MAASP worker as a real process on real Kafka and PostgreSQL.

Annulus and well ids are drawn at random far above the sequences, so these tests share the
session's broker (and the worker's consumer group and tables) with any other test safely.
"""

import asyncio
import base64
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import orjson
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy import text

from services.maasp.config import annulus_key
from services.maasp.store import annulus_config_from_db
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import AlertKind, Quality
from shared.domain.maasp import CriticalPoint, maasp
from shared.infrastructure.compat.record_batches import refresh_metadata
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.factories import make_annulus, make_well
from tests.support.stack import Stack, start_service

RUNTIME_CHANGELOG = "wims-maasp-annulus-runtime-changelog"
CONFIGS_CHANGELOG = "wims-maasp-annulus-configs-changelog"
POINTS = [("wellhead", 0.0, 150.0), ("shoe", 1000.0, 250.0)]  # MAASP 125 bar at the shoe
GRADIENT = 0.1


async def _with_worker_log(scenario: Any, *args: Any) -> None:
    """Run a scenario; on a failed assertion show the worker's log beside it (CI keeps
    nothing else). The scenario puts its current worker in ``workers[-1]``."""
    workers: list[Any] = []
    try:
        await scenario(*args, workers)
    except AssertionError as exc:
        tail = workers[-1].log_tail(80) if workers else "(no worker started)"
        raise AssertionError(f"{exc}\n--- maasp worker log ---\n{tail}") from exc


def _fresh_id() -> int:
    return random.randint(10**6, 2 * 10**9)


def _make_annulus(db_engine: Any, **kw: Any) -> tuple[int, int]:
    well_id = make_well(db_engine, name=f"W-{uuid4().hex[:8]}", id=_fresh_id())
    annulus_id = make_annulus(
        db_engine,
        well_id,
        "A",
        critical_points=kw.pop("critical_points", POINTS),
        fluid_gradient_bar_per_m=GRADIENT,
        id=_fresh_id(),
        **kw,
    )
    return well_id, annulus_id


def _one_annulus_per_partition(settings: Settings, db_engine: Any) -> dict[int, tuple[int, int]]:
    """A new (well, annulus) on each partition of the readings topic, by partition."""
    from aiokafka.partitioner import DefaultPartitioner

    partitioner = DefaultPartitioner()
    all_partitions = list(range(settings.topic_partitions))
    by_partition: dict[int, tuple[int, int]] = {}
    while len(by_partition) < settings.topic_partitions:
        well_id, annulus_id = _make_annulus(db_engine)
        p = partitioner(annulus_key(annulus_id), all_partitions, all_partitions)
        by_partition.setdefault(p, (well_id, annulus_id))
    return by_partition


def _reading(
    annulus_id: int,
    well_id: int,
    ts: datetime,
    pressure: float | None,
    quality: Quality = Quality.good,
    temperature: float | None = 40.0,
) -> bytes:
    return ev.Reading(
        event_id=ev.derived_id(annulus_id, ts.isoformat(), "test"),
        annulus_id=annulus_id,
        well_id=well_id,
        ts=ts,
        pressure_bar=pressure,
        temperature_c=temperature,
        quality=quality,
        source="test",
    ).encode()


class Producer:
    def __init__(self, settings: Settings) -> None:
        self._p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")

    async def __aenter__(self) -> "Producer":
        await self._p.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._p.stop()

    async def send(self, topic: str, key: bytes, value: bytes) -> Any:
        """Sends and waits for the ack; returns where the record landed."""
        return await self._p.send_and_wait(topic, value=value, key=key)

    async def readings(self, annulus_id: int, values: list[bytes]) -> None:
        key = annulus_key(annulus_id)
        futures = [await self._p.send(topics.READINGS.name, value=v, key=key) for v in values]
        await asyncio.gather(*futures)


class TopicReader:
    """Everything on a topic from the beginning, read on demand."""

    def __init__(self, settings: Settings, topic: str) -> None:
        self.topic = topic
        self.records: list[Any] = []
        self._c = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )

    async def __aenter__(self) -> "TopicReader":
        await self._c.start()
        parts = self._c.partitions_for_topic(self.topic)
        while not parts:
            await refresh_metadata(self._c)
            parts = self._c.partitions_for_topic(self.topic)
        tps = [TopicPartition(self.topic, p) for p in parts]
        self._c.assign(tps)
        await self._c.seek_to_beginning(*tps)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._c.stop()

    async def poll(self) -> None:
        batches = await self._c.getmany(timeout_ms=200)
        for records in batches.values():
            self.records.extend(records)

    async def wait_for(self, what: str, predicate: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
            await self.poll()

    async def drain(self) -> None:
        """Read up to the current end of every partition."""
        tps = list(self._c.assignment())
        ends = await self._c.end_offsets(tps)
        for tp in tps:
            while await self._c.position(tp) < ends[tp]:
                await self.poll()


class Alerts(TopicReader):
    def __init__(self, settings: Settings, annulus_id: int) -> None:
        super().__init__(settings, topics.ALERTS.name)
        self.annulus_id = annulus_id

    def of(self, kind: AlertKind) -> list[ev.Alert]:
        out = []
        for r in self.records:
            alert = ev.decode(self.topic, r.value)
            if alert.annulus_id == self.annulus_id and alert.kind is kind:
                out.append(alert)
        return out

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.records:
            alert = ev.decode(self.topic, r.value)
            if alert.annulus_id == self.annulus_id:
                counts[alert.kind.value] = counts.get(alert.kind.value, 0) + 1
        return counts


class RuntimeState(TopicReader):
    """The worker's stored per-annulus state, as its changelog says."""

    def __init__(self, settings: Settings, annulus_id: int) -> None:
        super().__init__(settings, RUNTIME_CHANGELOG)
        self.key = annulus_key(annulus_id)

    def latest(self) -> dict[str, Any] | None:
        values = [r.value for r in self.records if r.key == self.key]
        return orjson.loads(values[-1]) if values and values[-1] else None

    async def wait_newest(self, ts: datetime, timeout_s: float = 60) -> dict[str, Any]:
        def reached() -> bool:
            s = self.latest()
            return s is not None and s["newest_ts"] >= ts.timestamp() - 1e-6

        await self.wait_for(f"state to reach {ts.isoformat()}", reached, timeout_s)
        state = self.latest()
        assert state is not None
        return state


async def _wait_changelog_exists(settings: Settings, timeout_s: float = 90) -> None:
    """The worker creates its changelog topics when it starts."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while RUNTIME_CHANGELOG not in set(await admin.list_topics()):
            assert time.monotonic() < deadline, "the worker did not create its changelog topic"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


def _publish_config_cli(stack: Stack, annulus_id: int) -> str:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "publish-annulus-config",
            "--annulus-id",
            str(annulus_id),
        ],
        env=stack.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def _maasp_rows(db_engine: Any, annulus_id: int) -> list[Any]:
    with db_engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT config_version, maasp_bar, limiting_point_name FROM maasp_result "
                "WHERE annulus_id = :a ORDER BY config_version"
            ),
            {"a": annulus_id},
        ).all()


async def _wait_rows(db_engine: Any, annulus_id: int, n: int, timeout_s: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = _maasp_rows(db_engine, annulus_id)
        if len(rows) >= n:
            return rows
        assert time.monotonic() < deadline, f"maasp_result has {len(rows)} rows, want {n}"
        await asyncio.sleep(0.2)


async def test_exceedance_alerts_once_each_across_a_sigkill_and_maasp_history(
    stack: Stack, settings: Settings, db_engine: Any
) -> None:
    await _with_worker_log(_exceedance_scenario, stack, settings, db_engine)


async def _exceedance_scenario(
    stack: Stack, settings: Settings, db_engine: Any, workers: list[Any]
) -> None:
    well_id, annulus_id = _make_annulus(db_engine)
    expected = maasp([CriticalPoint(None, n, tvd, lim) for n, tvd, lim in POINTS], GRADIENT, 0.9)
    assert expected.maasp_bar == pytest.approx(125.0)

    worker = start_service(stack, "maasp")
    workers.append(worker)
    worker.wait_ready()
    await _wait_changelog_exists(settings)

    # The operator's CLI publishes the config; the worker stores MAASP history once.
    # No fixed version: the CLI takes the next outbox sequence value, so the config is newer
    # than anything an earlier test published for a recycled annulus id on this broker.
    assert "published" in _publish_config_cli(stack, annulus_id)
    rows = await _wait_rows(db_engine, annulus_id, 1)
    assert [r.limiting_point_name for r in rows] == ["shoe"]
    version = rows[0].config_version
    assert rows[0].maasp_bar == pytest.approx(expected.maasp_bar)

    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    at = [base + timedelta(minutes=i) for i in range(200)]
    async with (
        Producer(settings) as producer,
        Alerts(settings, annulus_id) as alerts,
        RuntimeState(settings, annulus_id) as state,
    ):
        # A replayed config (same version) adds no row and changes nothing.
        with db_engine.connect() as conn:
            from sqlalchemy.orm import Session

            with Session(conn) as session:
                replay = annulus_config_from_db(session, annulus_id, version=version)
        await producer.send(topics.ANNULUS_CONFIG.name, annulus_key(annulus_id), replay.encode())

        # A slow build-up from 50 bar (40 %) to 140 bar (112 %) of MAASP.
        ramp = [50.0 + 90.0 * i / 39 for i in range(40)]
        await producer.readings(
            annulus_id, [_reading(annulus_id, well_id, at[i], p) for i, p in enumerate(ramp)]
        )
        await alerts.wait_for(
            "warning and exceeded",
            lambda: bool(alerts.of(AlertKind.maasp_exceeded)),
            timeout_s=60,
        )
        warning = alerts.of(AlertKind.maasp_warning)
        exceeded = alerts.of(AlertKind.maasp_exceeded)
        assert len(warning) == 1 and len(exceeded) == 1
        assert warning[0].pressure_bar >= 100.0 > ramp[ramp.index(warning[0].pressure_bar) - 1]
        assert exceeded[0].maasp_bar == pytest.approx(125.0)
        assert exceeded[0].limiting_point == "shoe"
        assert exceeded[0].utilisation == pytest.approx(exceeded[0].pressure_bar / 125.0)
        assert exceeded[0].severity == "critical" and exceeded[0].well_id == well_id
        assert "annulus A" in exceeded[0].message and "125.0" in exceeded[0].message
        # Its state is stored (the changelog has it) before it is killed.
        stored = await state.wait_newest(at[39])
        assert stored["level"] == "exceeded"

        # Readings go on at the exceeded level; SIGKILL the worker in the middle of them.
        high = [_reading(annulus_id, well_id, at[40 + i], 135.0 + i % 3) for i in range(40)]
        await producer.readings(annulus_id, high[:20])
        worker.kill()
        await producer.readings(annulus_id, high[20:])

        worker = start_service(stack, "maasp")
        workers.append(worker)
        worker.wait_ready()
        # The restarted worker caught up from its committed offsets and recovered tables:
        # still exceeded, and nothing new was raised for it.
        stored = await state.wait_newest(at[79], timeout_s=90)
        assert stored["level"] == "exceeded"
        await alerts.drain()
        assert alerts.kinds() == {"maasp_warning": 1, "maasp_exceeded": 1}

        # A bleed to near zero clears it, once.
        await producer.readings(
            annulus_id,
            [_reading(annulus_id, well_id, at[80 + i], p) for i, p in enumerate([3.0, 2.0, 2.5])],
        )
        await alerts.wait_for(
            "cleared", lambda: bool(alerts.of(AlertKind.maasp_cleared)), timeout_s=60
        )
        await state.wait_newest(at[82])
        await alerts.drain()
        cleared = alerts.of(AlertKind.maasp_cleared)
        assert cleared[0].details["from_level"] == "exceeded" and cleared[0].level == "normal"
        # Exactly one of each, by event id and on the topic (no raw duplicates either).
        for kind in (AlertKind.maasp_warning, AlertKind.maasp_exceeded, AlertKind.maasp_cleared):
            found = alerts.of(kind)
            assert len({a.event_id for a in found}) == 1, kind
            assert len(found) == 1, f"{kind}: the same alert was published {len(found)} times"

    assert len(_maasp_rows(db_engine, annulus_id)) == 1
    worker.terminate()


def _metric(worker: Any, name: str) -> float:
    import httpx

    body = httpx.get(f"{worker.base_url}/metrics", timeout=5).text
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def _sap_series(start: datetime) -> list[tuple[datetime, float]]:
    """SAP case (a) in one-minute readings: 2 h held at 50 bar, a 10-minute bleed to 2 bar,
    a 4 h build-up back to 40 bar at steady temperature, then 7 h held there (above
    6.9 bar for longer than the 6 h that makes a diagnostic test due)."""
    out: list[tuple[datetime, float]] = []
    minute = 0

    def add(p: float) -> None:
        nonlocal minute
        out.append((start + timedelta(minutes=minute), p))
        minute += 1

    for _ in range(120):
        add(50.0)
    for i in range(10):
        add(50.0 - 48.0 * (i + 1) / 10)
    for i in range(240):
        add(2.0 + 38.0 * (i + 1) / 240)
    for _ in range(420):
        add(40.0)
    return out


async def test_late_bad_garbage_unconfigured_and_sap_readings(
    stack: Stack, settings: Settings, db_engine: Any
) -> None:
    await _with_worker_log(_late_bad_garbage_scenario, stack, settings, db_engine)


def _configs_and_a_stranger(
    db_engine: Any, annulus_ids: tuple[int, ...], stranger: int, well_id: int
) -> list[Any]:
    """The annuli's configs as published from the database, and a copy of the first for an
    annulus this database does not have."""
    with db_engine.connect() as conn:
        from sqlalchemy.orm import Session

        with Session(conn) as session:
            configs = [annulus_config_from_db(session, a) for a in annulus_ids]
    configs.append(configs[0].model_copy(update={"annulus_id": stranger, "well_id": well_id}))
    return configs


async def _send_configs(producer: Producer, configs: list[Any], stored: TopicReader) -> None:
    for c in configs:
        await producer.send(topics.ANNULUS_CONFIG.name, annulus_key(c.annulus_id), c.encode())
    # Configs and readings are different topics with no order between them: readings
    # judged before their annulus's config is in the worker's table are "unknown" by
    # design, so wait until the config table's changelog holds every config.
    await stored.wait_for(
        "every config in the worker's config table",
        lambda: {annulus_key(c.annulus_id) for c in configs} <= {r.key for r in stored.records},
        timeout_s=90,
    )


async def _send_garbage_and_a_bad_field(
    producer: Producer, annulus_id: int, well_id: int, at: list[datetime]
) -> tuple[Any, Any]:
    """Garbage and a reading with a bad field go to the dead letters, not into the level;
    where each was written."""
    garbage_at = await producer.send(topics.READINGS.name, b"x", b"\x00not json{")
    bad_field = orjson.loads(_reading(annulus_id, well_id, at[0], 60.0))
    bad_field["pressure_bar"] = "high"
    field_at = await producer.send(
        topics.READINGS.name, annulus_key(annulus_id), orjson.dumps(bad_field)
    )
    return garbage_at, field_at


async def _late_and_bad_readings_raise_nothing(
    producer: Producer, state: RuntimeState, annulus_id: int, well_id: int, at: list[datetime]
) -> None:
    # In order, then an older reading past MAASP (late), a bad-quality one past MAASP,
    # then in order again: no alert at all.
    normal = [_reading(annulus_id, well_id, at[i], 60.0) for i in range(10)]
    late = _reading(annulus_id, well_id, at[5] + timedelta(seconds=1), 140.0)
    bad = _reading(annulus_id, well_id, at[10], 200.0, quality=Quality.bad)
    await producer.readings(annulus_id, [*normal, late, bad])
    await producer.readings(annulus_id, [_reading(annulus_id, well_id, at[11], 61.0)])
    stored = await state.wait_newest(at[11])
    assert stored["level"] == "normal" and stored["pressure_bar"] == 61.0


async def _push_sap_series(
    producer: Producer,
    annuli: tuple[int, int],
    wells: tuple[int, int],
    sap: list[tuple[datetime, float]],
    late_at: datetime,
) -> None:
    """The same series on a normal annulus and on a gas-lift one, pushed in seconds, and a
    late reading on the normal one after them."""
    (annulus_id, gas_lift), (well_id, gas_well) = annuli, wells
    await producer.readings(annulus_id, [_reading(annulus_id, well_id, t, p) for t, p in sap])
    await producer.readings(gas_lift, [_reading(gas_lift, gas_well, t, p) for t, p in sap])
    # ...and a late one after them: the level follows the newest reading.
    await producer.readings(annulus_id, [_reading(annulus_id, well_id, late_at, 140.0)])


def _check_sap_alerts(
    alerts: Alerts, gas_alerts: Alerts, sap: list[tuple[datetime, float]]
) -> None:
    from shared.domain.sap import detect_sap_series

    expected = detect_sap_series(
        [t.timestamp() for t, _ in sap],
        [p for _, p in sap],
        [40.0] * len(sap),
    )
    assert sorted(f.kind for f in expected) == ["diagnostic_test_due", "sap_detected"]
    assert alerts.kinds() == {"sap_detected": 1, "diagnostic_test_due": 1}
    found = alerts.of(AlertKind.sap_detected)[0]
    sap_finding = next(f for f in expected if f.kind == "sap_detected")
    assert found.ts.timestamp() == pytest.approx(sap_finding.ts)
    assert "rebuilt to" in found.message and found.severity == "warning"
    assert gas_alerts.kinds() == {}, "an imposed (gas lift) pressure is never SAP"


def _check_dead_letters(dead: TopicReader, garbage_at: Any, field_at: Any) -> None:
    letters = [orjson.loads(r.value) for r in dead.records]
    mine = [d for d in letters if d["topic"] == topics.READINGS.name]
    garbage = next(d for d in mine if d["raw"].endswith("not json{"))
    assert "Invalid JSON" in garbage["error"]
    assert (garbage["reason"], garbage["service"]) == ("undecodable", "maasp")
    field = next(d for d in mine if '"high"' in d["raw"])
    assert field["error"].startswith("pressure_bar:")
    assert field["reason"] == "invalid"
    # The record whole (key and value), so a replay puts it back where it was.
    assert base64.b64decode(field["value_b64"]).decode() == field["raw"]
    assert field["key_b64"] is not None
    # Each names where its record is, for whoever replays or inspects it.
    for letter, meta in ((garbage, garbage_at), (field, field_at)):
        assert (letter["partition"], letter["offset"]) == (meta.partition, meta.offset)


def _check_counted(worker: Any, db_engine: Any, stranger: int) -> None:
    assert _maasp_rows(db_engine, stranger) == []
    assert _metric(worker, "wims_maasp_results_not_stored_total") >= 1
    assert _metric(worker, "wims_maasp_readings_late_total") >= 2
    assert _metric(worker, "wims_maasp_readings_unconfigured_total") >= 3
    assert _metric(worker, 'wims_maasp_readings_total{quality="bad"}') >= 1
    assert _metric(worker, "wims_maasp_dead_letters_total") >= 2


async def _late_bad_garbage_scenario(
    stack: Stack, settings: Settings, db_engine: Any, workers: list[Any]
) -> None:
    well_id, annulus_id = _make_annulus(db_engine)
    gas_well, gas_lift = _make_annulus(db_engine, imposed_pressure=True)
    _, unconfigured = _make_annulus(db_engine)
    stranger = _fresh_id()  # a config for an annulus this database does not have

    worker = start_service(stack, "maasp")
    workers.append(worker)
    worker.wait_ready()
    await _wait_changelog_exists(settings)
    configs = _configs_and_a_stranger(db_engine, (annulus_id, gas_lift), stranger, well_id)

    now = datetime.now(UTC).replace(microsecond=0)
    at = [now - timedelta(days=2) + timedelta(seconds=10 * i) for i in range(20)]
    sap = _sap_series(now - timedelta(days=1))
    async with (
        Producer(settings) as producer,
        Alerts(settings, annulus_id) as alerts,
        Alerts(settings, gas_lift) as gas_alerts,
        Alerts(settings, stranger) as stranger_alerts,
        RuntimeState(settings, annulus_id) as state,
        RuntimeState(settings, gas_lift) as gas_state,
        RuntimeState(settings, unconfigured) as unconfigured_state,
        TopicReader(settings, topics.DEAD_LETTERS.name) as dead,
        TopicReader(settings, topics.ANNULUS_STATE.name) as states,
        TopicReader(settings, CONFIGS_CHANGELOG) as configs_stored,
    ):
        await _send_configs(producer, configs, configs_stored)
        garbage_at, field_at = await _send_garbage_and_a_bad_field(
            producer, annulus_id, well_id, at
        )
        await _late_and_bad_readings_raise_nothing(producer, state, annulus_id, well_id, at)

        # The stranger's config is used although its history row could not be stored.
        await producer.readings(stranger, [_reading(stranger, well_id, at[0], 130.0)])
        await stranger_alerts.wait_for(
            "stranger exceeded",
            lambda: bool(stranger_alerts.of(AlertKind.maasp_exceeded)),
            timeout_s=60,
        )

        # No config: judged "unknown", never "normal", and counted.
        await producer.readings(
            unconfigured, [_reading(unconfigured, well_id, at[i], 10.0) for i in range(3)]
        )
        assert (await unconfigured_state.wait_newest(at[2]))["level"] == "unknown"

        # SAP: the same series on a normal annulus and on a gas-lift one.
        await _push_sap_series(producer, (annulus_id, gas_lift), (well_id, gas_well), sap, at[12])
        await gas_state.wait_newest(sap[-1][0])
        await alerts.wait_for(
            "diagnostic test due",
            lambda: bool(alerts.of(AlertKind.diagnostic_test_due)),
            timeout_s=60,
        )
        await state.wait_newest(sap[-1][0])
        await alerts.drain()
        await gas_alerts.drain()
        await dead.drain()
        _check_sap_alerts(alerts, gas_alerts, sap)
        _check_dead_letters(dead, garbage_at, field_at)

        await states.drain()
        unknown_states = [
            s
            for s in (ev.decode(states.topic, r.value) for r in states.records)
            if s.annulus_id == unconfigured
        ]
        assert unknown_states and all(s.level == "unknown" for s in unknown_states)

    _check_counted(worker, db_engine, stranger)
    worker.terminate()


async def test_two_workers_share_the_readings_by_faust_assignment(
    stack: Stack, settings: Settings, db_engine: Any
) -> None:
    await _with_worker_log(_two_workers_scenario, stack, settings, db_engine)


async def _two_workers_scenario(
    stack: Stack, settings: Settings, db_engine: Any, workers: list[Any]
) -> None:
    """Readings are consumed outside faust's stream, following its partition assignment:
    with two workers each judges the annuli of its own partitions, every reading exactly
    once, across the rebalance the second worker's arrival causes."""
    from sqlalchemy.orm import Session

    by_partition = _one_annulus_per_partition(settings, db_engine)
    all_partitions = list(range(settings.topic_partitions))
    annuli = list(by_partition.values())

    first = start_service(stack, "maasp")
    workers.append(first)
    first.wait_ready()
    await _wait_changelog_exists(settings)
    port = int(stack.env["WIMS_MAASP_PORT"]) + 50
    second = start_service(stack, "maasp", {"WIMS_MAASP_PORT": str(port)})
    workers.append(second)
    second.wait_ready()

    def consuming(worker: Any) -> list[int]:
        """The readings partitions a worker last said it consumes (its log)."""
        marker = "readings: consuming partitions ["
        lines = [ln for ln in worker.log_tail(400).splitlines() if marker in ln]
        if not lines:
            return []
        inside = lines[-1].split(marker, 1)[1].split("]", 1)[0]
        return [int(x) for x in inside.split(",") if x.strip()]

    # The rebalance the second worker's arrival causes has split the partitions.
    deadline = time.monotonic() + 60
    while not (consuming(second) and 0 < len(consuming(first)) < settings.topic_partitions):
        assert time.monotonic() < deadline, "the partitions were not shared out"
        await asyncio.sleep(0.2)
    assert sorted(consuming(first) + consuming(second)) == all_partitions

    with db_engine.connect() as conn, Session(conn) as session:
        configs = [annulus_config_from_db(session, a) for _, a in annuli]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    ramp = [50.0 + 90.0 * i / 39 for i in range(40)]
    async with Producer(settings) as producer, Alerts(settings, 0) as alerts:
        for config in configs:
            await producer.send(
                topics.ANNULUS_CONFIG.name, annulus_key(config.annulus_id), config.encode()
            )
        for _, annulus_id in annuli:
            await _wait_rows(db_engine, annulus_id, 1)
        for well_id, annulus_id in annuli:
            await producer.readings(
                annulus_id,
                [
                    _reading(annulus_id, well_id, base + timedelta(minutes=i), p)
                    for i, p in enumerate(ramp)
                ],
            )

        def kinds_of(annulus_id: int) -> dict[str, int]:
            alerts.annulus_id = annulus_id
            return alerts.kinds()

        await alerts.wait_for(
            "an exceeded alert for every annulus",
            lambda: all(kinds_of(a).get("maasp_exceeded") for _, a in annuli),
            timeout_s=90,
        )
        await alerts.drain()
        for _, annulus_id in annuli:
            assert kinds_of(annulus_id) == {"maasp_warning": 1, "maasp_exceeded": 1}

    sent = len(ramp) * len(annuli)
    name = "wims_maasp_readings_total"
    deadline = time.monotonic() + 30
    while _metric(first, name) + _metric(second, name) < sent:
        assert time.monotonic() < deadline, "not every reading was judged"
        await asyncio.sleep(0.2)
    judged = (_metric(first, name), _metric(second, name))
    assert sum(judged) == sent, f"judged {judged}, sent {sent}: a reading judged twice"
    assert all(judged), f"one worker judged nothing: {judged}"
    second.terminate()
    first.terminate()


async def test_no_annulus_judged_without_its_recovered_state(
    stack: Stack, settings: Settings, db_engine: Any
) -> None:
    await _with_worker_log(_split_assignment_scenario, stack, settings, db_engine)


def _start_partial_member(stack: Stack, settings: Settings, n: int) -> Any:
    """A faust member of the MAASP worker's group that subscribes only to the runtime
    table's changelog (tests.support.partial_member)."""
    from tests.support.stack import ServiceProcess

    logs = stack.run_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"partial-member-{n}-{time.monotonic_ns()}.log"
    datadir = stack.run_dir / "faust" / f"partial-member-{n}"
    datadir.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.partial_member",
                "wims-maasp",
                settings.kafka_bootstrap,
                "annulus-runtime",
                str(settings.topic_partitions),
                str(datadir),
            ],
            env=stack.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    member = ServiceProcess(f"partial-member-{n}", proc, "", log_path)
    stack._cleanup.append(member.kill)
    return member


def _consuming(worker: Any) -> list[int] | None:
    """The readings partitions the worker's pump last said it consumes (its log)."""
    marker = "readings: consuming partitions ["
    lines = [ln for ln in worker.log_tail(2000).splitlines() if marker in ln]
    if not lines:
        return None
    inside = lines[-1].split(marker, 1)[1].split("]", 1)[0]
    return [int(x) for x in inside.split(",") if x.strip()]


async def _split_assignment_scenario(
    stack: Stack, settings: Settings, db_engine: Any, workers: list[Any]
) -> None:
    """faust's assignor gives a worker an input partition without the same partition of
    its tables' changelogs when the group's members do not all subscribe the same topics
    (here: two extra members subscribing only to the runtime changelog; in the scale test
    the runtime changelog went missing from an assignment). The MAASP worker must not
    judge those annuli: it has not recovered their runtime state, so it would start them
    from "unknown" and raise, mid-episode, an exceedance already raised ("from_level:
    unknown"). It holds them until an assignment gives them whole, then judges them from
    their recovered state: every alert comes from the level the annulus was at."""
    from sqlalchemy.orm import Session

    by_partition = _one_annulus_per_partition(settings, db_engine)
    all_partitions = list(range(settings.topic_partitions))
    with db_engine.connect() as conn, Session(conn) as session:
        configs = [annulus_config_from_db(session, a) for _, a in by_partition.values()]
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    normal = [base + timedelta(minutes=i) for i in range(5)]  # 50 bar: 40 % of MAASP
    exceeded = [base + timedelta(minutes=10 + i) for i in range(5)]  # 140 bar: 112 %
    name = "wims_maasp_readings_total"

    # 1. One worker alone: every annulus configured and judged normal, states stored.
    first = start_service(stack, "maasp")
    workers.append(first)
    first.wait_ready()
    await _wait_changelog_exists(settings)
    async with Producer(settings) as producer:
        for config in configs:
            await producer.send(
                topics.ANNULUS_CONFIG.name, annulus_key(config.annulus_id), config.encode()
            )
        for _, annulus_id in by_partition.values():
            await _wait_rows(db_engine, annulus_id, 1)
        for well_id, annulus_id in by_partition.values():
            await producer.readings(
                annulus_id, [_reading(annulus_id, well_id, ts, 50.0) for ts in normal]
            )
        deadline = time.monotonic() + 60
        while _metric(first, name) < len(normal) * len(by_partition):
            assert time.monotonic() < deadline, "the normal readings were not all judged"
            await asyncio.sleep(0.2)
    first.terminate()  # graceful: its states are in the changelog

    # 2. Two members that subscribe only to the runtime changelog join the group; the
    # worker starts again beside them and gets every wims.annulus-config partition but
    # only some runtime changelog partitions.
    members = [_start_partial_member(stack, settings, n) for n in (1, 2)]
    for member in members:
        deadline = time.monotonic() + 90
        while "Worker ready" not in member.log_tail(400):
            assert member.proc.poll() is None, f"{member.name} exited:\n{member.log_tail()}"
            assert time.monotonic() < deadline, f"{member.name} not ready:\n{member.log_tail()}"
            await asyncio.sleep(0.2)
    second = start_service(stack, "maasp")
    workers.append(second)
    second.wait_ready()
    deadline = time.monotonic() + 60
    while _consuming(second) is None:
        assert time.monotonic() < deadline, "the worker's pump never took its partitions"
        await asyncio.sleep(0.2)
    consumed = set(_consuming(second) or [])

    # 3. Every annulus goes over its MAASP. What the worker consumes is judged now.
    async with Producer(settings) as producer, Alerts(settings, 0) as alerts:
        for well_id, annulus_id in by_partition.values():
            await producer.readings(
                annulus_id, [_reading(annulus_id, well_id, ts, 140.0) for ts in exceeded]
            )

        def exceeded_alerts(annulus_id: int) -> list[ev.Alert]:
            alerts.annulus_id = annulus_id
            return alerts.of(AlertKind.maasp_exceeded)

        await alerts.wait_for(
            f"an exceeded alert for every annulus of partitions {sorted(consumed)}",
            lambda: all(exceeded_alerts(a) for p, (_, a) in by_partition.items() if p in consumed),
            timeout_s=90,
        )

        # 4. The partial members leave: the next assignment gives the worker everything.
        for member in members:
            member.terminate()
        deadline = time.monotonic() + 90
        while _consuming(second) != all_partitions:
            assert time.monotonic() < deadline, "the worker did not get every partition back"
            await asyncio.sleep(0.2)
        await alerts.wait_for(
            "an exceeded alert for every annulus",
            lambda: all(exceeded_alerts(a) for _, a in by_partition.values()),
            timeout_s=90,
        )
        await alerts.drain()
        raised = {}
        for p, (_, annulus_id) in sorted(by_partition.items()):
            alerts.annulus_id = annulus_id
            raised[p] = sorted(
                (a.kind.value, a.details.get("from_level"))
                for a in alerts.of(AlertKind.maasp_warning) + alerts.of(AlertKind.maasp_exceeded)
            )
    want = [("maasp_exceeded", "normal"), ("maasp_warning", "normal")]
    wrong = {p: r for p, r in raised.items() if r != want}
    assert not wrong, (
        f"alerts (kind, from_level) by partition not raised once each from 'normal': {wrong}; "
        f"the worker consumed {sorted(consumed)} beside the partial members"
    )
    second.terminate()

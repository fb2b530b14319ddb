"""What users look at: well state, fleet, MAASP history, integrity, and measurements
downsampled in SQL over 500,000 rows, from the raw readings and from the hourly and daily
roll-ups (checked against numpy)."""

import asyncio
import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import psycopg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from services.api.store import FLEET_MODEL_SQL, FLEET_TRUTH_SQL
from shared.infrastructure.auth import create_access_token
from shared.infrastructure.settings import Settings
from shared.persistence.models import AnnulusMeasurement, IntegritySnapshot, MaaspResult, Task
from tests.integration.test_api_fixtures import (  # noqa: F401  (fixtures)
    Api,
    Users,
    api_fixture,
    build_well,
    users_fixture,
)

V1 = "/api/v1"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def _reading(
    annulus_id: int, ts: datetime, pressure: float | None, quality: str = "good"
) -> AnnulusMeasurement:
    return AnnulusMeasurement(
        id=uuid4(),
        annulus_id=annulus_id,
        timestamp=ts,
        source="test",
        pressure_bar=pressure,
        temperature_c=40.0,
        quality=quality,
    )


def _maasp(annulus_id: int, version: int, bar: float) -> MaaspResult:
    return MaaspResult(
        annulus_id=annulus_id,
        config_version=version,
        maasp_bar=bar,
        limiting_point_name="packer",
        computed_at=T0 + timedelta(hours=version),
    )


def _snapshot(well_id: int, ts: datetime, status: str, risk: int) -> IntegritySnapshot:
    return IntegritySnapshot(
        event_id=uuid4(),
        well_id=well_id,
        created_at=ts,
        overall_status=status,
        primary_status="intact",
        secondary_status="degraded",
        probability=2,
        consequence=3,
        risk_score=risk,
        risk_category="medium",
    )


async def test_well_state_shows_latest_reading_maasp_utilisation_integrity_and_tasks(
    api: Api, users: Users, db_engine: Engine
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    a = ids["annulus"]
    with Session(db_engine) as s, s.begin():
        s.add_all(
            [
                _reading(a, T0, 100.0),
                _reading(a, T0 + timedelta(minutes=5), 170.0),  # the latest
                _maasp(a, 1, 250.0),
                _maasp(a, 2, 200.0),  # the current one (highest version)
                _snapshot(ids["well"], T0, "green", 12),
                _snapshot(ids["well"], T0 + timedelta(hours=1), "amber", 24),
                Task(well_id=ids["well"], title="open", trigger_type="manual", priority="high"),
                Task(
                    well_id=ids["well"],
                    title="done",
                    trigger_type="manual",
                    priority="low",
                    status="done",
                ),
            ]
        )
    r = await api.client.get(f"{V1}/wells/{ids['well']}/state", headers=users.headers["viewer"])
    assert r.status_code == 200
    state = r.json()
    assert state["well"]["name"] == "W-1"
    assert {x["kind"] for x in state["strings"]} == {"casing", "tubing"}
    assert [e["name"] for e in state["barrier_elements"]] == ["SSSV"]
    (annulus,) = state["annuli"]
    assert annulus["latest_reading"]["pressure_bar"] == 170.0
    assert annulus["maasp_bar"] == 200.0 and annulus["limiting_point_name"] == "packer"
    assert annulus["utilisation"] == 0.85 and annulus["level"] == "warning"
    assert (
        state["integrity"]["overall_status"] == "amber" and state["integrity"]["risk_score"] == 24
    )
    assert [t["title"] for t in state["open_tasks"]] == ["open"]

    missing = await api.client.get(f"{V1}/wells/999/state", headers=users.headers["viewer"])
    assert missing.status_code == 404


def _shown(state: dict) -> tuple:
    (annulus,) = state["annuli"]
    r = annulus["latest_reading"]
    ts = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
    shown = (ts, r["pressure_bar"], r["temperature_c"], r["quality"], r["source"])
    return shown, annulus["maasp_bar"], annulus["limiting_point_name"]


async def test_well_state_follows_late_readings_deletions_and_new_maasp(
    api: Api, users: Users, db_engine: Engine
) -> None:
    """/state's latest reading and MAASP come from the read model the writers' triggers keep
    (migration 0010): each arrives in its own statement, as from the sink and the worker."""
    ids = await build_well(api.client, users.headers["admin"])
    a, url = ids["annulus"], f"{V1}/wells/{ids['well']}/state"
    viewer = users.headers["viewer"]

    def write(*rows: object) -> None:
        with Session(db_engine) as s, s.begin():
            s.add_all(rows)

    async def shown() -> tuple:
        r = await api.client.get(url, headers=viewer)
        assert r.status_code == 200
        return _shown(r.json())

    later = T0 + timedelta(minutes=5)
    write(_reading(a, later, 170.0), _maasp(a, 2, 200.0))
    write(_reading(a, T0, 100.0), _maasp(a, 1, 250.0))  # older ones, arriving late
    assert await shown() == ((later, 170.0, 40.0, "good", "test"), 200.0, "packer")

    manual = _reading(a, later + timedelta(minutes=1), 180.0, quality="uncertain")
    manual.source, manual.temperature_c = "manual", 55.5
    write(
        manual,
        MaaspResult(
            annulus_id=a,
            config_version=3,
            maasp_bar=190.0,
            limiting_point_name="shoe",
            computed_at=T0,
        ),
    )
    assert await shown() == (
        (later + timedelta(minutes=1), 180.0, 55.5, "uncertain", "manual"),
        190.0,
        "shoe",
    )

    with Session(db_engine) as s, s.begin():  # a correction: the manual reading removed
        s.execute(text("DELETE FROM annulus_measurement WHERE source = 'manual'"))
    assert (await shown())[0] == (later, 170.0, 40.0, "good", "test")


async def test_a_user_just_seen_on_a_hot_read_is_demoted_and_deleted_at_once(
    api: Api, users: Users
) -> None:
    """The API keeps users it has read (WIMS_API_USER_CACHE_S); a change through the users
    routes must still apply to the very next request: a role change revokes the user's
    tokens (their version moves on), and a token issued after it carries the new role."""
    ids = await build_well(api.client, users.headers["admin"])
    engineer = users.headers["engineer"]
    state = f"{V1}/wells/{ids['well']}/state"
    assert (await api.client.get(state, headers=engineer)).status_code == 200  # now cached
    r = await api.client.patch(
        f"{V1}/users/{users.ids['engineer']}",
        json={"role": "viewer"},
        headers=users.headers["admin"],
    )
    assert r.status_code == 200
    me = await api.client.get(f"{V1}/auth/me", headers=engineer)
    assert me.status_code == 401 and "revoked" in me.json()["detail"]
    demoted = {
        "Authorization": "Bearer "
        + create_access_token(
            users.ids["engineer"],
            "viewer",
            api.settings.jwt_secret,
            timedelta(minutes=5),
            version=1,  # one change since the user was made
        )
    }
    me = await api.client.get(f"{V1}/auth/me", headers=demoted)
    assert me.status_code == 200 and me.json()["role"] == "viewer"
    well = {"name": "W-2", "field": "F", "type": "observation", "location": "onshore"}
    r = await api.client.post(f"{V1}/wells", json=well | {"measured_depth": 100}, headers=demoted)
    assert r.status_code == 403
    assert (await api.client.get(state, headers=demoted)).status_code == 200  # cached again
    r = await api.client.delete(
        f"{V1}/users/{users.ids['engineer']}", headers=users.headers["admin"]
    )
    assert r.status_code == 204
    assert (await api.client.get(state, headers=demoted)).status_code == 401


async def test_a_bad_reading_is_shown_but_never_used(
    api: Api, users: Users, db_engine: Engine
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    with Session(db_engine) as s, s.begin():
        s.add_all([_reading(ids["annulus"], T0, 999.0, "bad"), _maasp(ids["annulus"], 1, 200.0)])
    state = (
        await api.client.get(f"{V1}/wells/{ids['well']}/state", headers=users.headers["viewer"])
    ).json()
    (annulus,) = state["annuli"]
    assert annulus["latest_reading"]["quality"] == "bad"
    assert annulus["utilisation"] is None and annulus["level"] == "unknown"


async def test_fleet_lists_every_well_with_colour_risk_utilisation_and_tasks(
    api: Api, users: Users, db_engine: Engine
) -> None:
    admin = users.headers["admin"]
    first = await build_well(api.client, admin, "W-1")
    second = await build_well(api.client, admin, "W-2")
    with Session(db_engine) as s, s.begin():
        s.add_all(
            [
                _reading(first["annulus"], T0, 210.0),
                _maasp(first["annulus"], 1, 200.0),
                _snapshot(first["well"], T0, "red", 60),
                Task(
                    well_id=first["well"],
                    title="a",
                    trigger_type="manual",
                    priority="critical",
                    due_date=T0,
                ),
                Task(well_id=first["well"], title="b", trigger_type="manual", priority="normal"),
            ]
        )
    r = await api.client.get(f"{V1}/fleet", headers=users.headers["viewer"])
    assert r.status_code == 200
    wells = {w["name"]: w for w in r.json()["wells"]}
    assert set(wells) == {"W-1", "W-2"}
    w1, w2 = wells["W-1"], wells["W-2"]
    assert (w1["colour"], w1["risk_score"]) == ("red", 60)
    assert w1["highest_utilisation"] == 1.05 and w1["highest_level"] == "exceeded"
    assert (w1["open_tasks"], w1["critical_open_tasks"], w1["overdue_open_tasks"]) == (2, 1, 1)
    assert w2["colour"] is None and w2["highest_utilisation"] is None
    assert w2["highest_level"] == "unknown" and w2["open_tasks"] == 0
    red = await api.client.get(f"{V1}/fleet?colour=red", headers=users.headers["viewer"])
    assert [w["name"] for w in red.json()["wells"]] == ["W-1"]
    assert second["well"] != first["well"]


async def test_maasp_current_and_history(api: Api, users: Users, db_engine: Engine) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    with Session(db_engine) as s, s.begin():
        s.add_all([_maasp(ids["annulus"], v, 200.0 + v) for v in (1, 2, 3)])
    r = await api.client.get(f"{V1}/annuli/{ids['annulus']}/maasp", headers=users.headers["viewer"])
    body = r.json()
    assert body["current"]["config_version"] == 3 and body["current"]["maasp_bar"] == 203.0
    assert [m["config_version"] for m in body["history"]] == [3, 2, 1]


async def test_integrity_latest_and_history(api: Api, users: Users, db_engine: Engine) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    v = users.headers["viewer"]
    none_yet = await api.client.get(f"{V1}/wells/{ids['well']}/integrity", headers=v)
    assert none_yet.status_code == 404 and "no integrity snapshot" in none_yet.json()["detail"]
    with Session(db_engine) as s, s.begin():
        s.add_all([_snapshot(ids["well"], T0 + timedelta(days=d), "green", d) for d in range(5)])
    latest = (await api.client.get(f"{V1}/wells/{ids['well']}/integrity", headers=v)).json()
    assert latest["risk_score"] == 4
    hist = await api.client.get(
        f"{V1}/wells/{ids['well']}/integrity/history",
        params={
            "from": (T0 + timedelta(days=1)).isoformat(),
            "to": (T0 + timedelta(days=4)).isoformat(),
        },
        headers=v,
    )
    assert [x["risk_score"] for x in hist.json()] == [3, 2, 1]
    # Each bound alone, and none (the statement holds only the bounds given).
    for params, scores in (
        ({"from": (T0 + timedelta(days=1)).isoformat()}, [4, 3, 2, 1]),
        ({"to": (T0 + timedelta(days=1)).isoformat()}, [0]),
        ({}, [4, 3, 2, 1, 0]),
    ):
        page = await api.client.get(
            f"{V1}/wells/{ids['well']}/integrity/history", params=params, headers=v
        )
        assert [x["risk_score"] for x in page.json()] == scores, params


async def test_measurements_raw_and_bad_parameters(
    api: Api, users: Users, db_engine: Engine
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    with Session(db_engine) as s, s.begin():
        s.add_all([_reading(ids["annulus"], T0 + timedelta(minutes=i), float(i)) for i in range(5)])
    url = f"{V1}/annuli/{ids['annulus']}/measurements"
    v = users.headers["viewer"]
    params = {"from": T0.isoformat(), "to": (T0 + timedelta(hours=1)).isoformat()}
    raw = (await api.client.get(url, params={**params, "limit": 3}, headers=v)).json()
    assert [p["pressure_bar"] for p in raw["points"]] == [0.0, 1.0, 2.0] and raw["truncated"]
    for bad, field in [
        ({"resolution": "5 minutes"}, "resolution"),
        ({"resolution": "1s", "from": "2020-01-01T00:00:00Z"}, "resolution"),
        ({"from": params["to"], "to": params["from"]}, "from"),
        ({"from": "2025-01-01T00:00:00"}, "from"),
        ({"from": "yesterday"}, "from"),
    ]:
        r = await api.client.get(url, params={**params, **bad}, headers=v)
        assert r.status_code == 422, bad
        assert r.json()["errors"][0]["field"] == field, (bad, r.json())


async def test_downsampled_measurements_over_500k_rows_match_numpy(
    api: Api, users: Users, db_engine: Engine
) -> None:
    ids = await build_well(api.client, users.headers["admin"])
    annulus = ids["annulus"]
    n = 500_000
    rng = np.random.default_rng(7)
    seconds = np.arange(n, dtype=np.int64) * 60  # one reading a minute: ~347 days
    pressure = 150 + 20 * np.sin(seconds / 86_400) + rng.normal(0, 3, n)
    quality = np.where(rng.random(n) < 0.01, "bad", "good")  # bad readings never count
    pressure[quality == "bad"] = 9_999.0

    def copy_rows() -> None:
        buf = io.StringIO()
        for s_, p, q in zip(seconds.tolist(), pressure.tolist(), quality.tolist(), strict=True):
            ts = T0 + timedelta(seconds=s_)
            buf.write(f"{uuid4()}\t{annulus}\t{ts.isoformat()}\tbench\t{p!r}\t\\N\t{q}\n")
        dsn = api.settings.libpq_url
        with psycopg.connect(dsn) as conn, conn.cursor() as cur:
            with cur.copy(
                "COPY annulus_measurement (id, annulus_id, timestamp, source, pressure_bar, "
                "temperature_c, quality) FROM STDIN"
            ) as copy:
                copy.write(buf.getvalue())

    await asyncio.to_thread(copy_rows)

    async def check(start: datetime, end: datetime, resolution: str, width_s: int) -> None:
        r = await api.client.get(
            f"{V1}/annuli/{annulus}/measurements",
            params={"from": start.isoformat(), "to": end.isoformat(), "resolution": resolution},
            headers=users.headers["viewer"],
        )
        assert r.status_code == 200, r.text
        buckets = r.json()["buckets"]
        lo, hi = (start - T0).total_seconds(), (end - T0).total_seconds()
        good = (seconds >= lo) & (seconds < hi) & (quality == "good")
        bucket_of = (seconds[good] - int(lo)) // width_s
        values = pressure[good]
        expected_count = np.bincount(bucket_of)
        assert len(buckets) == len(expected_count)
        for i, b in enumerate(buckets):
            sel = values[bucket_of == i]
            bucket_start = start + timedelta(seconds=i * width_s)
            assert b["bucket_start"].startswith(bucket_start.strftime("%Y-%m-%dT%H:%M"))
            assert b["count"] == len(sel) == expected_count[i]
            assert b["min"] == sel.min() and b["max"] == sel.max()
            assert abs(b["avg"] - sel.mean()) < 1e-9

    day = 86_400
    # Not on a UTC hour: raw readings, aggregated in SQL.
    await check(T0 + timedelta(hours=7), T0 + timedelta(days=340, hours=7), "1d", day)
    # On a UTC day: the daily roll-ups, then raw readings for the last, unfinished day.
    await check(T0 + timedelta(days=1), T0 + timedelta(days=340, hours=5), "1d", day)
    await check(T0 + timedelta(days=1), T0 + timedelta(days=337), "7d", 7 * day)
    # On a UTC hour: the hourly roll-ups, and a raw tail of 25 minutes.
    await check(T0 + timedelta(hours=3), T0 + timedelta(days=20, minutes=25), "6h", 6 * 3600)


def _fleet_rows(db_engine: Engine, sql: str) -> list[tuple]:
    with db_engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]


async def _fleet(api: Api, users: Users) -> dict[str, dict]:
    r = await api.client.get(f"{V1}/fleet", headers=users.headers["viewer"])
    assert r.status_code == 200
    return {w["name"]: w for w in r.json()["wells"]}


async def test_fleet_read_model_follows_every_writer_and_equals_the_aggregate(
    api: Api, users: Users, db_engine: Engine, settings: Settings
) -> None:
    """The fleet read model is kept by the writers' own statements (ORM inserts, COPY like
    the ingest sink's, deletes), replays and late rows included, and always equals what
    aggregating the history tables gives."""
    admin = users.headers["admin"]
    w1 = await build_well(api.client, admin, "W-1")
    w2 = await build_well(api.client, admin, "W-2")
    a1, a2 = w1["annulus"], w2["annulus"]
    with Session(db_engine) as s, s.begin():
        s.add_all(
            [
                _reading(a1, T0, 100.0),
                _maasp(a1, 1, 200.0),
                _snapshot(w1["well"], T0, "green", 12),
                _reading(a2, T0, 50.0),
                _maasp(a2, 1, 100.0),
            ]
        )
    fleet = await _fleet(api, users)
    assert (fleet["W-1"]["colour"], fleet["W-1"]["highest_utilisation"]) == ("green", 0.5)
    assert fleet["W-1"]["highest_level"] == "normal" and fleet["W-2"]["colour"] is None

    # A newer snapshot and reading change the board; an older reading, a snapshot older than
    # the latest and a lower MAASP version do not.
    with Session(db_engine) as s, s.begin():
        s.add_all(
            [
                _snapshot(w1["well"], T0 + timedelta(hours=1), "red", 60),
                _snapshot(w1["well"], T0 - timedelta(hours=1), "amber", 30),
                _reading(a1, T0 - timedelta(minutes=1), 10.0),
                _maasp(a1, 2, 100.0),
            ]
        )
    with Session(db_engine) as s, s.begin():
        s.add(_maasp(a1, 0, 1000.0))
    # Readings COPYed in bulk, as the ingest sink stores them: the latest of the batch counts.
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY annulus_measurement (id, annulus_id, timestamp, source, pressure_bar, quality) "
            "FROM STDIN"
        ) as copy:
            for minutes, pressure in ((2, 80.0), (3, 85.0), (1, 95.0)):
                copy.write_row(
                    (uuid4(), a2, T0 + timedelta(minutes=minutes), "scada", pressure, "good")
                )
    fleet = await _fleet(api, users)
    assert (fleet["W-1"]["colour"], fleet["W-1"]["risk_score"]) == ("red", 60)
    assert fleet["W-1"]["highest_utilisation"] == 1.0  # 100 bar over MAASP v2, 100 bar
    assert fleet["W-1"]["highest_level"] == "exceeded"
    assert (
        fleet["W-2"]["highest_utilisation"] == 0.85 and fleet["W-2"]["highest_level"] == "warning"
    )

    # Deleting the latest reading falls back to the one before it.
    with db_engine.begin() as conn:
        conn.execute(
            text("DELETE FROM annulus_measurement WHERE annulus_id = :a AND pressure_bar = 85"),
            {"a": a2},
        )
    fleet = await _fleet(api, users)
    assert fleet["W-2"]["highest_utilisation"] == 0.8
    assert _fleet_rows(db_engine, FLEET_MODEL_SQL) == _fleet_rows(db_engine, FLEET_TRUTH_SQL)


async def test_fleet_reuses_its_well_rows_until_a_change_and_never_answers_stale(
    api: Api, users: Users, db_engine: Engine, settings: Settings
) -> None:
    """The API keeps /fleet's well-level rows in memory: two reads with nothing written in
    between read them once; a write through any connection (a task, a snapshot, a well
    renamed), a task falling due and a lost listening connection each show on the very
    next read, never an answer behind what was committed before it was asked."""
    well = (await build_well(api.client, users.headers["admin"], "W-1"))["well"]

    async def rows_read_from(source: str) -> float:
        text_ = (await api.client.get("/metrics")).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text_)
            for s in family.samples
            if s.name == "wims_api_fleet_well_rows_total" and s.labels["source"] == source
        )

    async def w1() -> dict:
        return (await _fleet(api, users))["W-1"]

    def write(sql: str, **params: object) -> None:
        with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
            conn.execute(sql, params)

    await w1()
    reads, reuses = await rows_read_from("database"), await rows_read_from("memory")
    assert (await w1())["open_tasks"] == 0 and (await w1())["colour"] is None
    assert await rows_read_from("database") == reads  # nothing written: not read again
    assert await rows_read_from("memory") == reuses + 2

    write(
        "INSERT INTO task (well_id, title, trigger_type, priority, status) "
        "VALUES (%(w)s, 'a', 'manual', 'critical', 'open')",
        w=well,
    )
    assert ((await w1())["open_tasks"], (await w1())["critical_open_tasks"]) == (1, 1)
    with Session(db_engine) as s, s.begin():
        s.add(_snapshot(well, T0, "red", 60))
    assert ((await w1())["colour"], (await w1())["risk_score"]) == ("red", 60)
    write("UPDATE well SET field = 'Renamed' WHERE id = %(w)s", w=well)
    assert (await w1())["field"] == "Renamed"
    assert await rows_read_from("database") == reads + 3  # once after each write

    # A task falls due with no write: the overdue count changes when it does.
    write(
        "INSERT INTO task (well_id, title, trigger_type, priority, status, due_date) "
        "VALUES (%(w)s, 'b', 'manual', 'normal', 'open', now() + interval '1.5 seconds')",
        w=well,
    )
    assert (await w1())["overdue_open_tasks"] == 0
    with psycopg.connect(settings.libpq_url) as conn:
        (due_in_s,) = conn.execute(
            "SELECT extract(epoch FROM due_date - now())::float8 FROM task WHERE title = 'b'"
        ).fetchone()
    await asyncio.sleep(max(0.0, due_in_s) + 0.05)  # waiting for the clock, not for a race
    assert (await w1())["overdue_open_tasks"] == 1

    # The listening connection dropped: the next read reads (and listens again).
    write(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'wims-api-fleet-listener'"
    )
    write("UPDATE task SET status = 'cancelled' WHERE title = 'a'")
    assert (await w1())["open_tasks"] == 1
    write("UPDATE task SET status = 'cancelled' WHERE title = 'b'")
    assert (await w1())["open_tasks"] == 0


async def test_loop_lag_pool_wait_and_request_timing_on_metrics(
    api: Api, users: Users, db_engine: Engine
) -> None:
    """After some reads, /metrics shows the event-loop lag sampled, the read pool's
    checkout waits and each request timed by its route template, all with sensible values
    (milliseconds on an idle test API, not seconds)."""

    async def scrape() -> dict[tuple[str, tuple], float]:
        text_ = (await api.client.get("/metrics")).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text_)
            for s in family.samples
        }

    ids = await build_well(api.client, users.headers["admin"])
    before = await scrape()
    for _ in range(5):
        r = await api.client.get(f"{V1}/wells/{ids['well']}/state", headers=users.headers["viewer"])
        assert r.status_code == 200
    deadline = asyncio.get_running_loop().time() + 10
    while True:  # the lag sampler wakes every 100 ms
        after = await scrape()
        lag = ("wims_event_loop_lag_seconds_count", ())
        if after.get(lag, 0) > before.get(lag, 0) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.1)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("wims_event_loop_lag_seconds_count") >= 1
    assert after[("wims_event_loop_lag_seconds_sum", ())] / after[lag] < 0.5
    waits = delta("wims_db_pool_wait_seconds_count", pool="read")
    assert waits >= 5  # every GET checked a read connection out
    assert delta("wims_db_pool_wait_seconds_sum", pool="read") / waits < 0.5
    route = "/wells/{well_id}/state"
    timed = [k for k in after if k[0] == "wims_api_request_duration_seconds_count"]
    (state_key,) = [k for k in timed if dict(k[1])["route"].endswith(route)]
    assert delta(state_key[0], **dict(state_key[1])) == 5
    assert delta(state_key[0].replace("_count", "_sum"), **dict(state_key[1])) < 5 * 1.0


async def test_a_hot_read_on_connections_the_database_dropped_fails_once_then_recovers(
    api: Api, users: Users, db_engine: Engine, settings: Settings
) -> None:
    """/state reads on the pooled driver connection: when PostgreSQL drops every
    connection (as a restart does), one read is answered 503 and the pool is renewed, as
    through a session; never a 500, never one failure per pooled connection."""
    ids = await build_well(api.client, users.headers["admin"])
    url = f"{V1}/wells/{ids['well']}/state"
    viewer = users.headers["viewer"]
    assert (await api.client.get(url, headers=viewer)).status_code == 200
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
            "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
        )
    db_engine.dispose()  # this test process's own pooled connections were dropped too
    statuses = [(await api.client.get(url, headers=viewer)).status_code for _ in range(5)]
    assert statuses == [503, 200, 200, 200, 200]

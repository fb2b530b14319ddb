"""What users look at: well state, fleet, MAASP history, integrity, and measurements
downsampled in SQL over 500,000 rows (checked against numpy)."""

import asyncio
import io
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import numpy as np
import psycopg
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared.auth import create_access_token
from shared.models import AnnulusMeasurement, IntegritySnapshot, MaaspResult, Task
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
    start, end = T0 + timedelta(hours=7), T0 + timedelta(days=340, hours=7)
    r = await api.client.get(
        f"{V1}/annuli/{annulus}/measurements",
        params={"from": start.isoformat(), "to": end.isoformat(), "resolution": "1d"},
        headers=users.headers["viewer"],
    )
    assert r.status_code == 200, r.text
    buckets = r.json()["buckets"]

    in_range = (seconds >= (start - T0).total_seconds()) & (seconds < (end - T0).total_seconds())
    good = in_range & (quality == "good")
    bucket_of = (seconds[good] - int((start - T0).total_seconds())) // 86_400
    values = pressure[good]
    expected_count = np.bincount(bucket_of)
    assert len(buckets) == len(expected_count) == 340
    for i, b in enumerate(buckets):
        sel = values[bucket_of == i]
        assert b["bucket_start"].startswith((start + timedelta(days=i)).strftime("%Y-%m-%dT%H:%M"))
        assert b["count"] == len(sel) == expected_count[i]
        assert b["min"] == sel.min() and b["max"] == sel.max()
        assert abs(b["avg"] - sel.mean()) < 1e-9

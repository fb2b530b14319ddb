"""A SCADA push becomes an alert on the operations screen, a task and a colour — end to end,
through the public interfaces only (HTTP and Kafka)."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import SseListener, build_well, poll, readings
from tests.support import worked_example as wx

ADMIN_EMAIL = "e2e-admin@wims.example"
ADMIN_PASSWORD = "e2e-admin-password"
DEADLINE_S = 5.0


async def is_colour(api: httpx.AsyncClient, well: int, expected: str) -> bool:
    r = await api.get(f"/wells/{well}/integrity")
    return r.status_code == 200 and r.json()["overall_status"] == expected


async def wait_first_maasp_and_green(api: httpx.AsyncClient, ids: dict[str, int]) -> None:
    async def maasp_known():
        r = await api.get(f"/annuli/{ids['annulus']}/maasp")
        cur = r.json().get("current") if r.status_code == 200 else None
        # each critical point added is a config version: wait for the one with both
        return cur if cur and cur["maasp_bar"] == pytest.approx(100.0) else None

    current = await poll(maasp_known, "the MAASP result of the new annulus", within_s=60)
    assert current["maasp_bar"] == pytest.approx(100.0, abs=1e-6)
    assert current["limiting_point_name"] == "tubing collapse at 1000 m"
    await poll(
        lambda: is_colour(api, ids["well"], "green"),
        "the new well's first snapshot: green",
        within_s=60,
    )


async def push_past_maasp(
    ingest: httpx.AsyncClient,
    scada: dict[str, str],
    sse: SseListener,
    ids: dict[str, int],
    tag: str,
    t0: datetime,
) -> tuple[list[float], float]:
    """A slow build-up (warning), then past MAASP: the exceeded alert on the stream within
    the deadline. The build-up's pressures and when the excursion was pushed."""
    # A slow build-up: 40 -> 96 bar (warning from 80), then 105 bar (exceeded).
    build = [40.0 + 2.0 * i for i in range(29)]
    r = await ingest.post("/readings", json=readings(tag, build, t0), headers=scada)
    assert r.status_code == 202 and r.json()["accepted"] == len(build), r.text
    await sse.wait_for("maasp_warning", within_s=15)

    pushed_at = time.monotonic()
    r = await ingest.post(
        "/readings",
        json=readings(tag, [105.0, 106.0], t0 + timedelta(seconds=40)),
        headers=scada,
    )
    assert r.status_code == 202, r.text
    seen_at, alert = await sse.wait_for("maasp_exceeded", within_s=DEADLINE_S)
    assert seen_at - pushed_at < DEADLINE_S
    assert alert["annulus_id"] == ids["annulus"] and alert["severity"] == "critical"
    assert alert["maasp_bar"] == pytest.approx(100.0) and alert["pressure_bar"] == pytest.approx(
        105.0
    )
    return build, pushed_at


async def check_every_screen_red(
    api: httpx.AsyncClient, ids: dict[str, int], pushed_at: float
) -> None:
    """A critical task, the well red in /fleet within the deadline, and its state."""

    async def critical_task():
        r = await api.get("/tasks", params={"well_id": ids["well"]})
        items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        return [
            t
            for t in items
            if t["trigger_type"] == "maasp_exceed"
            and t["priority"] == "critical"
            and t["status"] == "open"
        ]

    tasks = await poll(critical_task, "a critical maasp_exceed task", within_s=DEADLINE_S)
    assert len(tasks) == 1 and "105" in tasks[0]["description"]

    async def fleet_red():
        r = await api.get("/fleet")
        row = next(w for w in r.json()["wells"] if w["id"] == ids["well"])
        return row if row["colour"] == "red" else None

    row = await poll(fleet_red, "the well red in /fleet", within_s=DEADLINE_S)
    assert row["highest_level"] == "exceeded" and row["critical_open_tasks"] >= 1
    assert time.monotonic() - pushed_at < DEADLINE_S + 1.0

    state = (await api.get(f"/wells/{ids['well']}/state")).json()
    assert state["integrity"]["overall_status"] == "red"
    ann = state["annuli"][0]
    assert ann["level"] == "exceeded" and ann["maasp_bar"] == pytest.approx(100.0)
    assert ann["latest_reading"]["pressure_bar"] == pytest.approx(106.0)


async def check_history(
    api: httpx.AsyncClient, ids: dict[str, int], t0: datetime, build: list[float]
) -> None:
    async def stored():
        r = await api.get(
            f"/annuli/{ids['annulus']}/measurements",
            params={
                "from": (t0 - timedelta(minutes=1)).isoformat(),
                "to": datetime.now(UTC).isoformat(),
                "resolution": "raw",
            },
        )
        pts = r.json()["points"] or []
        return pts if len(pts) == len(build) + 2 else None

    points = await poll(stored, "every pushed reading in the history query", within_s=15)
    assert [p["pressure_bar"] for p in points][-2:] == [105.0, 106.0]


async def fail_the_sssv_test(api: httpx.AsyncClient, ids: dict[str, int]) -> None:
    """A failed SSSV inflow test: primary envelope failed, the well amber, a critical task."""
    r = await api.post(
        f"/barrier-elements/{ids['sssv']}/tests",
        json={
            "test_type": "inflow",
            "test_date": datetime.now(UTC).isoformat(),
            "result": "fail",
            "leak_rate": 0.9,
            "leak_rate_unit": "m3/min",
        },
    )
    assert r.status_code == 201, r.text

    async def amber_snapshot():
        r = await api.get(f"/wells/{ids['well']}/integrity")
        body = r.json()
        return (
            body
            if body["overall_status"] == "amber" and body["primary_status"] == "failed"
            else None
        )

    snap = await poll(
        amber_snapshot, "an amber snapshot with the primary envelope failed", within_s=15
    )
    assert any(f["code"] == "element_failed" for f in snap["findings"])

    async def sssv_task():
        r = await api.get("/tasks", params={"well_id": ids["well"]})
        items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        return [
            t
            for t in items
            if t["trigger_type"] == "failed_test" and t["barrier_element_id"] == ids["sssv"]
        ]

    found = await poll(sssv_task, "a failed_test task for the SSSV", within_s=15)
    assert found[0]["priority"] == "critical"


async def test_push_past_maasp_reaches_every_screen_then_clears(
    running_stack: RunningStack,
) -> None:
    rs = running_stack
    made = rs.wims("create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    headers = rs.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    tag = f"E2E/{uuid.uuid4().hex[:6]}/ANN-A/PT"
    async with (
        httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api,
        httpx.AsyncClient(base_url=rs.ingest, timeout=30) as ingest,
    ):
        ids = await build_well(api, tag)
        key = (
            await api.post("/api-keys", json={"name": "e2e historian", "source": "e2e-scada"})
        ).json()
        scada = {"X-API-Key": key["secret"]}
        await wait_first_maasp_and_green(api, ids)

        sse = SseListener(f"{rs.api}/alerts/stream", headers, ids["well"])
        sse.start()
        await asyncio.wait_for(sse.connected.wait(), 10)

        t0 = datetime.now(UTC) - timedelta(minutes=2)
        build, pushed_at = await push_past_maasp(ingest, scada, sse, ids, tag, t0)
        await check_every_screen_red(api, ids, pushed_at)
        await check_history(api, ids, t0, build)

        # Bleed-down: the alert clears and the colour returns.
        r = await ingest.post(
            "/readings",
            json=readings(tag, [20.0, 3.0, 2.0], t0 + timedelta(seconds=60)),
            headers=scada,
        )
        assert r.status_code == 202
        await sse.wait_for("maasp_cleared", within_s=DEADLINE_S)
        await poll(
            lambda: is_colour(api, ids["well"], "green"),
            "the well green again after the bleed",
            within_s=15,
        )

        await fail_the_sssv_test(api, ids)
        await sse.stop()
        assert sse.kinds().count("maasp_exceeded") == 1


def test_every_metric_the_operators_monitoring_reads_is_exported(
    running_stack: RunningStack,
) -> None:
    """The alert rules (deploy/prometheus/rules.yml) and the Grafana dashboard read metrics
    by name: a rename in a service would leave a rule that never fires. Each named metric
    must be on some running service's /metrics page (declared, with samples or not)."""
    from services.cli import SERVICES
    from tests.support.monitoring import (
        PROMETHEUS_OWN,
        dashboard_expressions,
        exported_names,
        metric_names,
        rule_expressions,
    )

    exported: set[str] = set()
    for service in SERVICES:
        page = httpx.get(f"{running_stack.base_url(service)}/metrics", timeout=10)
        assert page.status_code == 200, f"{service} /metrics: {page.status_code}"
        exported |= exported_names(page.text)
    wanted = metric_names(rule_expressions() + dashboard_expressions()) - PROMETHEUS_OWN
    assert wanted <= exported, (
        f"named by the monitoring, exported by no service: {sorted(wanted - exported)}"
    )


async def test_derived_points_accepted_give_the_worked_example_maasp(
    running_stack: RunningStack,
) -> None:
    """Well 2/8-A-2A with a survey and its full architecture and no manual point: the
    engineer accepts the derived points, and the MAASP worker's MAASPs, read through the
    API, are the published ones (A 3710 psi from tubing collapse, C 1782 psi from burst)."""
    rs = running_stack
    email = "e2e-derived@wims.example"
    made = rs.wims("create-admin", "--email", email, "--password", ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    async with httpx.AsyncClient(
        base_url=rs.api, headers=rs.login(email, ADMIN_PASSWORD), timeout=30
    ) as api:

        async def post(path: str, body: dict) -> dict:
            r = await api.post(path, json=body)
            assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
            return r.json()

        async def put(path: str, body: dict) -> dict:
            r = await api.put(path, json=body)
            assert r.status_code == 200, f"PUT {path}: {r.status_code} {r.text}"
            return r.json()

        ids = await wx.build(post, put, name=f"2/8-A-2A-{uuid.uuid4().hex[:6]}")
        for name in ("A", "C"):
            r = await api.post(f"/annuli/{ids[name]}/derived-critical-points/accept")
            assert r.status_code == 200, r.text
            assert r.json()["accepted"], f"no derived point accepted for annulus {name}"

        async def maasp_of(annulus_id: int):
            r = await api.get(f"/annuli/{annulus_id}/maasp")
            current = r.json().get("current") if r.status_code == 200 else None
            return current if current and current["maasp_bar"] is not None else None

        a = await poll(lambda: maasp_of(ids["A"]), "the A annulus MAASP", within_s=30)
        c = await poll(lambda: maasp_of(ids["C"]), "the C annulus MAASP", within_s=30)
    assert a["maasp_bar"] == pytest.approx(wx.A_MAASP_BAR, abs=0.07)  # 3710 psi ± 1 psi
    assert a["limiting_point_name"] == "tubing collapse at packer"
    assert c["maasp_bar"] == pytest.approx(wx.C_MAASP_BAR, abs=0.07)  # 1782 psi ± 1 psi
    assert c["limiting_point_name"] == "20in burst at shoe"

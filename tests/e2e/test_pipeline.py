"""A SCADA push becomes an alert on the operations screen, a task and a colour — end to end,
through the public interfaces only (HTTP and Kafka)."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from tests.e2e.conftest import RunningStack

ADMIN_EMAIL = "e2e-admin@wims.example"
ADMIN_PASSWORD = "e2e-admin-password"
DEADLINE_S = 5.0


async def poll(fn, what: str, within_s: float = 30.0, interval: float = 0.1) -> Any:
    """Wait for fn() to return something truthy; fail with `what` after ``within_s``."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within_s} s waiting for {what}; last: {last!r}")


class SseListener:
    """Collects alerts from /alerts/stream in the background, like the operations centre."""

    def __init__(self, url: str, headers: dict[str, str], well_id: int) -> None:
        self.url, self.headers, self.well_id = url, headers, well_id
        self.events: list[tuple[float, str, dict]] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            params = {"well_id": self.well_id}
            async with client.stream("GET", self.url, headers=self.headers, params=params) as r:
                assert r.status_code == 200
                self.connected.set()
                kind, data = None, None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data = orjson.loads(line.removeprefix("data:").strip())
                    elif line == "" and data is not None:
                        self.events.append((time.monotonic(), kind or "", data))
                        kind, data = None, None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def kinds(self) -> list[str]:
        return [k for _, k, _ in self.events]

    async def wait_for(self, kind: str, within_s: float) -> tuple[float, dict]:
        async def find():
            for t, k, d in self.events:
                if k == kind:
                    return (t, d)
            return None

        return await poll(find, f"a {kind} alert on the SSE stream", within_s)


async def build_well(client: httpx.AsyncClient, tag: str) -> dict[str, int]:
    """A well with casing, tubing, cement, an A annulus (MAASP 100 bar) and two envelopes."""

    async def post(path: str, body: dict) -> dict:
        r = await client.post(path, json=body)
        assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    name = f"E2E-{uuid.uuid4().hex[:8]}"
    well = await post(
        "/wells",
        {
            "name": name,
            "field": "E2E",
            "well_type": "gas_producer",
            "location": "platform",
            "measured_depth": 3000,
            "true_vertical_depth": 2800,
        },
    )
    wid = well["id"]
    prod = await post(
        f"/wells/{wid}/casing-strings",
        {
            "name": "production",
            "casing_type": "production",
            "outer_diameter_in": 9.625,
            "inner_diameter_in": 8.681,
            "top_md": 0,
            "bottom_md": 2900,
            "burst_rating_bar": 548,
        },
    )
    await post(
        f"/wells/{wid}/casing-strings",
        {
            "name": "intermediate",
            "casing_type": "intermediate",
            "outer_diameter_in": 13.375,
            "inner_diameter_in": 12.347,
            "top_md": 0,
            "bottom_md": 1800,
        },
    )
    tubing = await post(
        f"/wells/{wid}/tubing-strings",
        {
            "name": "tubing",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0,
            "bottom_md": 2700,
            "packer_depth_md": 2650,
        },
    )
    await post(
        f"/wells/{wid}/cement-intervals",
        {"casing_string_id": prod["id"], "top_md": 2000, "bottom_md": 2900, "verified_by": "CBL"},
    )
    annulus = await post(
        f"/wells/{wid}/annuli",
        {
            "name": "A",
            "inner_tubing_string_id": tubing["id"],
            "outer_casing_string_id": prod["id"],
            "fluid_gradient_bar_per_m": 0.1,
        },
    )
    aid = annulus["id"]
    # 0.9 x 2000/9 - 0.1 x 1000 = 100 bar governs over the wellhead (0.9 x 345 = 310.5 bar)
    await post(
        f"/annuli/{aid}/critical-points",
        {
            "name": "wellhead",
            "point_type": "wellhead",
            "depth_md": 0,
            "tvd_m": 0,
            "pressure_limit_bar": 345,
        },
    )
    await post(
        f"/annuli/{aid}/critical-points",
        {
            "name": "tubing collapse at 1000 m",
            "point_type": "inner_string_collapse",
            "depth_md": 1050,
            "tvd_m": 1000,
            "pressure_limit_bar": 2000 / 9,
        },
    )
    primary = await post(
        f"/wells/{wid}/barrier-envelopes", {"envelope_type": "primary", "name": "primary"}
    )
    secondary = await post(
        f"/wells/{wid}/barrier-envelopes", {"envelope_type": "secondary", "name": "secondary"}
    )
    now = datetime.now(UTC).isoformat()
    ids = {"well": wid, "annulus": aid}
    for env, elements in (
        (primary, ["sssv", "tubing", "packer"]),
        (secondary, ["casing", "wellhead", "tree_valve"]),
    ):
        for element_type in elements:
            e = await post(
                f"/barrier-envelopes/{env['id']}/barrier-elements",
                {
                    "name": element_type.upper(),
                    "element_type": element_type,
                    "status": "ok",
                    "last_tested_at": now,
                },
            )
            ids[element_type] = e["id"]
    await post("/scada-tags", {"tag": tag, "annulus_id": aid})
    return ids


def readings(tag: str, pressures: list[float], start: datetime, step_s: float = 1.0) -> list[dict]:
    return [
        {
            "tag": tag,
            "timestamp": (start + timedelta(seconds=i * step_s)).isoformat(),
            "pressure": p,
            "temperature": 40.0,
        }
        for i, p in enumerate(pressures)
    ]


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
        key = (await api.post("/api-keys", json={"name": "e2e historian", "source": "e2e-scada"})).json()
        scada = {"X-API-Key": key["secret"]}

        async def maasp_known():
            r = await api.get(f"/annuli/{ids['annulus']}/maasp")
            cur = r.json().get("current") if r.status_code == 200 else None
            return cur if cur and cur["maasp_bar"] is not None else None

        current = await poll(maasp_known, "the MAASP result of the new annulus", within_s=60)
        assert current["maasp_bar"] == pytest.approx(100.0, abs=1e-6)
        assert current["limiting_point_name"] == "tubing collapse at 1000 m"

        async def colour(expected: str):
            r = await api.get(f"/wells/{ids['well']}/integrity")
            return r.status_code == 200 and r.json()["status"] == expected

        await poll(lambda: colour("green"), "the new well's first snapshot: green", within_s=60)

        sse = SseListener(f"{rs.api}/alerts/stream", headers, ids["well"])
        sse.start()
        await asyncio.wait_for(sse.connected.wait(), 10)

        # A slow build-up: 40 -> 96 bar (warning from 80), then 105 bar (exceeded).
        t0 = datetime.now(UTC) - timedelta(minutes=2)
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
        assert alert["maasp_bar"] == pytest.approx(100.0) and alert[
            "pressure_bar"
        ] == pytest.approx(105.0)

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
        assert state["integrity"]["status"] == "red"
        ann = state["annuli"][0]
        assert ann["level"] == "exceeded" and ann["maasp_bar"] == pytest.approx(100.0)
        assert ann["latest_reading"]["pressure_bar"] == pytest.approx(106.0)

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

        # Bleed-down: the alert clears and the colour returns.
        r = await ingest.post(
            "/readings",
            json=readings(tag, [20.0, 3.0, 2.0], t0 + timedelta(seconds=60)),
            headers=scada,
        )
        assert r.status_code == 202
        await sse.wait_for("maasp_cleared", within_s=DEADLINE_S)
        await poll(lambda: colour("green"), "the well green again after the bleed", within_s=15)

        # A failed SSSV inflow test: primary envelope failed, the well amber, a critical task.
        r = await api.post(
            f"/barrier-elements/{ids['sssv']}/tests",
            json={
                "test_type": "inflow",
                "performed_at": datetime.now(UTC).isoformat(),
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
                if body["status"] == "amber" and body["primary_envelope_status"] == "failed"
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
        await sse.stop()
        assert sse.kinds().count("maasp_exceeded") == 1

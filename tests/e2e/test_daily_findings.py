"""The daily findings of integrity engineers, end to end: a silent tag, an annulus without a
MAASP, a rise of more than 200 psig after a diagnostic test, and two annuli that communicate
each become an alert on the alert history and a task, through the public interfaces only.

The findings sweep runs every second here; staleness uses the well's own (3 s) setting and the
re-test and communication rules run in event time on series dated in the past."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import RunningStack, services_up
from tests.e2e.helpers import build_well, poll, readings
from tests.support.stack import Stack

ADMIN_EMAIL = "findings-admin@wims.example"
ADMIN_PASSWORD = "findings-admin-password"
WITHIN_S = 30.0


@pytest.fixture(scope="module")
def running_stack(stack: Stack) -> Iterator[RunningStack]:
    with services_up(stack, WIMS_FINDINGS_SWEEP_SECONDS="1", WIMS_MAASP_MISSING_GRACE_S="2") as rs:
        yield rs


@pytest.fixture(scope="module")
def headers(running_stack: RunningStack) -> dict[str, str]:
    rs = running_stack
    made = rs.wims("create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    return rs.login(ADMIN_EMAIL, ADMIN_PASSWORD)


class Clients:
    def __init__(self, rs: RunningStack, headers: dict[str, str]) -> None:
        self.api = httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30)
        self.ingest = httpx.AsyncClient(base_url=rs.ingest, timeout=30)
        self.scada: dict[str, str] = {}

    async def __aenter__(self) -> "Clients":
        r = await self.api.post(
            "/api-keys", json={"name": f"findings {uuid.uuid4().hex[:6]}", "source": "e2e-scada"}
        )
        assert r.status_code == 201, r.text
        self.scada = {"X-API-Key": r.json()["secret"]}
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.api.aclose()
        await self.ingest.aclose()

    async def push(self, rows: list[dict]) -> None:
        r = await self.ingest.post("/readings", json=rows, headers=self.scada)
        assert r.status_code == 202 and r.json()["accepted"] == len(rows), r.text

    async def alerts(self, well_id: int, kind: str) -> list[dict[str, Any]]:
        r = await self.api.get("/alerts", params={"well_id": well_id, "kind": kind})
        assert r.status_code == 200, r.text
        body = r.json()
        return body["items"] if isinstance(body, dict) else body

    async def tasks(self, well_id: int, trigger: str) -> list[dict[str, Any]]:
        r = await self.api.get("/tasks", params={"well_id": well_id})
        assert r.status_code == 200, r.text
        body = r.json()
        items = body["items"] if isinstance(body, dict) else body
        return [t for t in items if t["trigger_type"] == trigger]

    async def wait_maasp(self, annulus_id: int, maasp_bar: float) -> None:
        """Wait until the maasp worker knows the annulus' limit: readings judged before
        its configuration arrived would not be judged for SAP."""

        async def known():
            r = await self.api.get(f"/annuli/{annulus_id}/maasp")
            cur = r.json().get("current") if r.status_code == 200 else None
            return bool(cur and cur["maasp_bar"] == pytest.approx(maasp_bar))

        await poll(known, f"MAASP {maasp_bar} bar of annulus {annulus_id}", within_s=WITHIN_S)

    async def wait_alert(self, well_id: int, kind: str, what: str) -> dict[str, Any]:
        async def found():
            return await self.alerts(well_id, kind)

        return (await poll(found, what, within_s=WITHIN_S))[0]

    async def wait_task(self, well_id: int, trigger: str, what: str) -> dict[str, Any]:
        async def found():
            return await self.tasks(well_id, trigger)

        return (await poll(found, what, within_s=WITHIN_S))[0]


def tag_of(name: str) -> str:
    return f"E2E/{uuid.uuid4().hex[:6]}/{name}/PT"


async def test_a_silent_tag_raises_data_stale_once_and_a_reading_clears_it(
    running_stack: RunningStack, headers: dict[str, str]
) -> None:
    tag = tag_of("ANN-A")
    async with Clients(running_stack, headers) as c:
        ids = await build_well(c.api, tag)
        well = ids["well"]
        await c.push(readings(tag, [30.0], datetime.now(UTC)))
        r = await c.api.patch(f"/wells/{well}", json={"data_stale_after_s": 3})
        assert r.status_code == 200 and r.json()["data_stale_after_s"] == 3, r.text

        alert = await c.wait_alert(well, "data_stale", "data_stale after 3 s of silence")
        assert alert["annulus_id"] == ids["annulus"]
        assert "data stale" in alert["message"]
        task = await c.wait_task(well, "data_stale", "a data_stale task")
        assert task["status"] == "open" and task["annulus_id"] == ids["annulus"]

        await c.push(readings(tag, [31.0], datetime.now(UTC)))
        # A day again at once, so the tag does not go stale anew before the counts below.
        r = await c.api.patch(f"/wells/{well}", json={"data_stale_after_s": 86400})
        assert r.status_code == 200, r.text
        cleared = await c.wait_alert(well, "data_stale_cleared", "data_stale cleared")
        assert cleared["annulus_id"] == ids["annulus"]
        # Raised once and cleared once, though the sweep ran every second meanwhile.
        assert len(await c.alerts(well, "data_stale")) == 1
        assert len(await c.tasks(well, "data_stale")) == 1


async def test_an_annulus_without_a_maasp_is_raised_once_and_cleared_by_a_limit(
    running_stack: RunningStack, headers: dict[str, str]
) -> None:
    async with Clients(running_stack, headers) as c:
        r = await c.api.post(
            "/wells",
            json={
                "name": f"E2E-NOMAASP-{uuid.uuid4().hex[:6]}",
                "field": "E2E",
                "type": "oil_producer",
                "location": "subsea",
                "measured_depth": 2000,
            },
        )
        assert r.status_code == 201, r.text
        well = r.json()["id"]
        r = await c.api.post(
            f"/wells/{well}/annuli", json={"name": "A", "fluid_gradient_bar_per_m": 0.1}
        )
        assert r.status_code == 201, r.text
        annulus = r.json()["id"]

        alert = await c.wait_alert(well, "maasp_missing", "maasp_missing for the bare annulus")
        assert alert["annulus_id"] == annulus and "no MAASP" in alert["message"]
        task = await c.wait_task(well, "maasp_missing", "a maasp_missing task")
        assert task["annulus_id"] == annulus

        r = await c.api.post(
            f"/annuli/{annulus}/critical-points",
            json={
                "label": "wellhead",
                "point_type": "wellhead",
                "depth_md": 0,
                "tvd_m": 0,
                "pressure_limit_bar": 345,
            },
        )
        assert r.status_code == 201, r.text
        cleared = await c.wait_alert(well, "maasp_missing_cleared", "maasp_missing cleared")
        assert "MAASP 310.5 bar" in cleared["message"]
        assert len(await c.alerts(well, "maasp_missing")) == 1


def sap_then_rise() -> list[float]:
    """1-minute pressures: 20 bar held 2 h, bled to 1 bar in 10 min, held 20 min, built back
    to 20 bar over 30 min and on to 40 bar (20 bar above the test), held 90 min."""
    held = [20.0] * 120
    bleed = [20.0 - 1.9 * i for i in range(1, 11)]
    low = [1.0] * 20
    back = [1.0 + 19.0 * i / 30 for i in range(1, 31)]
    rise = [20.0 + 20.0 * i / 30 for i in range(1, 31)]
    top = [40.0] * 90
    return held + bleed + low + back + rise + top


async def test_a_rise_of_200_psig_after_a_diagnostic_test_makes_it_due_again(
    running_stack: RunningStack, headers: dict[str, str]
) -> None:
    tag = tag_of("ANN-A")
    async with Clients(running_stack, headers) as c:
        ids = await build_well(c.api, tag)
        well = ids["well"]
        await c.wait_maasp(ids["annulus"], 100.0)
        pressures = sap_then_rise()
        start = datetime.now(UTC) - timedelta(minutes=len(pressures) + 1)
        await c.push(readings(tag, pressures, start, step_s=60.0))

        sap = await c.wait_alert(well, "sap_detected", "the bleed-down/build-up seen as SAP")
        assert sap["annulus_id"] == ids["annulus"]

        async def retest():
            found = await c.alerts(well, "diagnostic_test_due")
            return [a for a in found if a["payload"]["details"].get("rule") == "30 CFR 250.521"]

        alert = (await poll(retest, "the 30 CFR 250.521 re-test alert", within_s=WITHIN_S))[0]
        details = alert["payload"]["details"]
        assert details["test_pressure_bar"] == pytest.approx(20.0)
        assert alert["payload"]["pressure_bar"] > 33.8
        assert "diagnostic test due again" in alert["message"]
        task = await c.wait_task(well, "diagnostic_test_due", "a diagnostic_test_due task")
        assert "pressure at the last diagnostic test 20.0 bar" in task["description"]


async def add_b_annulus(c: Clients, ids: dict[str, int], tag: str) -> int:
    casings = (await c.api.get(f"/wells/{ids['well']}/casing-strings")).json()
    casings = casings["items"] if isinstance(casings, dict) else casings
    by_name = {x["name"]: x["id"] for x in casings}
    r = await c.api.post(
        f"/wells/{ids['well']}/annuli",
        json={
            "name": "B",
            "inner_casing_string_id": by_name["production"],
            "outer_casing_string_id": by_name["intermediate"],
            "fluid_gradient_bar_per_m": 0.1,
        },
    )
    assert r.status_code == 201, r.text
    b = r.json()["id"]
    r = await c.api.post(
        f"/annuli/{b}/critical-points",
        json={
            "label": "wellhead",
            "point_type": "wellhead",
            "depth_md": 0,
            "tvd_m": 0,
            "pressure_limit_bar": 345,
        },
    )
    assert r.status_code == 201, r.text
    r = await c.api.post("/scada-tags", json={"tag": tag, "annulus_id": b})
    assert r.status_code == 201, r.text
    return b


async def test_b_answering_a_bleed_of_a_is_annulus_communication(
    running_stack: RunningStack, headers: dict[str, str]
) -> None:
    tag_a, tag_b = tag_of("ANN-A"), tag_of("ANN-B")
    async with Clients(running_stack, headers) as c:
        ids = await build_well(c.api, tag_a)
        well = ids["well"]
        b = await add_b_annulus(c, ids, tag_b)
        await c.wait_maasp(ids["annulus"], 100.0)
        await c.wait_maasp(b, 310.5)
        # 1-minute series over 4 h: A at 40 bar, bled to 2 bar in 10 min at 2 h and left
        # there; B at 20 bar follows a quarter of A's drop with a 15-minute lag.
        a_p = [40.0] * 120 + [40.0 - 3.8 * i for i in range(1, 11)] + [2.0] * 110
        b_p, lagged = [], 40.0
        for p in a_p:
            lagged += (p - lagged) * (1 - 2.718281828 ** (-1 / 15))
            b_p.append(20.0 + 0.25 * (lagged - 40.0))
        start = datetime.now(UTC) - timedelta(minutes=len(a_p) + 1)
        await c.push(readings(tag_a, a_p, start, step_s=60.0))
        await c.push(readings(tag_b, b_p, start, step_s=60.0))

        alert = await c.wait_alert(well, "annulus_communication", "annulus_communication")
        details = alert["payload"]["details"]
        assert (alert["annulus_id"], details["annulus_name"]) == (b, "B")
        assert (details["other_annulus_id"], details["other_annulus_name"]) == (ids["annulus"], "A")
        assert details["direction"] == "bleed-down" and details["step_bar"] < -30
        assert "between annuli A and B" in alert["message"]
        task = await c.wait_task(well, "annulus_communication", "an annulus_communication task")
        lo, hi = sorted((b, ids["annulus"]))
        assert task["target"] == f"annuli:{lo}-{hi}"
        assert "A annulus" in task["description"] and "B annulus" in task["description"]
        assert len(await c.alerts(well, "annulus_communication")) == 1

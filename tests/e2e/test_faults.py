"""Faults a real site has, while readings flow: workers killed, the broker and the database
restarted, batches pushed twice and out of order. Afterwards nothing is lost or doubled and
every service is ready again by itself.

Run alone with ``make test-fault`` (pytest -m fault).
"""

import asyncio
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg
import pytest

from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_CODES,
    levels_for_series,
    utilisation_array,
)
from shared.enums import UtilisationLevel
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import build_well, poll

pytestmark = pytest.mark.fault

ADMIN_EMAIL = "fault-admin@wims.example"
ADMIN_PASSWORD = "fault-admin-password"
ANNULI = 4
TICK_WALL_S = 0.25  # one reading per annulus every 0.25 s of wall time
PERIOD = 80  # ticks between exceedance episodes of one annulus
MAASP_BAR = 100.0


def pressure(annulus_index: int, tick: int) -> float:
    """A steady 50 bar with, once per PERIOD ticks, 12 ticks at 110 bar (an exceedance)."""
    phase = (tick + annulus_index * PERIOD // ANNULI) % PERIOD
    return 110.0 if 40 <= phase < 52 else 50.0


@dataclass
class Pusher:
    """Pushes one reading per annulus per tick; retries a batch on 503 as a historian does."""

    url: str
    key: str
    tags: list[str]
    t0: datetime
    tick: int = 0
    sent_batches: list[list[dict]] = field(default_factory=list)
    accepted: set[tuple[str, str]] = field(default_factory=set)
    responses: dict[int, int] = field(default_factory=dict)
    running: bool = True

    def batch(self, tick: int) -> list[dict]:
        ts = (self.t0 + timedelta(seconds=tick)).isoformat()
        return [
            {"tag": tag, "timestamp": ts, "pressure": pressure(i, tick), "temperature": 40.0}
            for i, tag in enumerate(self.tags)
        ]

    async def push(self, client: httpx.AsyncClient, records: list[dict]) -> None:
        while True:
            try:
                r = await client.post(self.url, json=records, headers={"X-API-Key": self.key})
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            self.responses[r.status_code] = self.responses.get(r.status_code, 0) + 1
            if r.status_code == 202:
                body = r.json()
                rejected = {e["index"] for e in body["rejected"]}
                assert not rejected, body  # every record here is valid
                self.accepted.update((rec["tag"], rec["timestamp"]) for rec in records)
                return
            assert r.status_code == 503, f"ingest answered {r.status_code}: {r.text}"
            await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            start = time.monotonic()
            while self.running:
                records = self.batch(self.tick)
                await self.push(client, records)
                self.sent_batches.append(records)
                self.tick += 1
                wait = start + self.tick * TICK_WALL_S - time.monotonic()
                await asyncio.sleep(max(0.0, wait))


def expected_exceedances(ticks: int) -> int:
    """Exceedance episodes in the in-order series, judged with the product's own rules."""
    total = 0
    for i in range(ANNULI):
        series = np.array([pressure(i, t) for t in range(ticks)])
        levels = levels_for_series(
            UtilisationLevel.unknown,
            utilisation_array(series, np.full(ticks, MAASP_BAR)),
            DEFAULT_THRESHOLDS,
        )
        exceeded = levels == LEVEL_CODES[UtilisationLevel.exceeded]
        total += int(np.count_nonzero(exceeded[1:] & ~exceeded[:-1]) + exceeded[0])
    return total


def kill_service(rs: RunningStack, name: str) -> None:
    pid = int((rs.settings.run_dir / "pids" / f"{name}.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


async def all_ready(rs: RunningStack) -> bool:
    async with httpx.AsyncClient(timeout=3) as client:
        for name in ("api", "ingest", "maasp", "integrity", "tasks"):
            try:
                if (await client.get(f"{rs.base_url(name)}/readyz")).status_code != 200:
                    return False
            except httpx.HTTPError:
                return False
    return True


async def test_nothing_lost_or_doubled_through_kills_outages_and_replays(
    running_stack: RunningStack,
) -> None:
    rs = running_stack
    assert (
        rs.wims("create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD).returncode
        == 0
    )
    headers = rs.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    run = uuid.uuid4().hex[:6]
    tags = [f"FAULT/{run}/{i}/ANN-A/PT" for i in range(ANNULI)]
    async with httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api:
        wells = [await build_well(api, tag, name=f"FAULT-{run}-{i}") for i, tag in enumerate(tags)]
        key = (await api.post("/api-keys", json={"name": "fault", "source": f"fault-{run}"})).json()

        async def maasp_everywhere() -> bool:
            for w in wells:
                cur = (await api.get(f"/annuli/{w['annulus']}/maasp")).json().get("current")
                if not cur or cur["maasp_bar"] != pytest.approx(MAASP_BAR):
                    return False
            return True

        await poll(maasp_everywhere, "MAASP known for every annulus", within_s=60)

    pusher = Pusher(
        f"{rs.ingest}/readings", key["secret"], tags, datetime.now(UTC) - timedelta(hours=1)
    )
    flow = asyncio.create_task(pusher.run())

    async def after(seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert not flow.done(), flow.exception() if flow.done() else None

    # (a) SIGKILL each stream worker in turn and restart it the README way (`wims up`).
    for worker in ("maasp", "integrity", "tasks"):
        await after(8)
        kill_service(rs, worker)
        up = await asyncio.to_thread(rs.wims, "up", "--timeout", "120")
        assert up.returncode == 0, up.stdout + up.stderr
    # (b) the broker stops and comes back; nobody touches the services.
    await after(5)
    await asyncio.to_thread(rs.stack.stop_kafka)
    await asyncio.sleep(8)
    await asyncio.to_thread(rs.stack.start_kafka)
    # (c) the database stops and comes back.
    await after(10)
    await asyncio.to_thread(rs.stack.stop_postgres)
    await asyncio.sleep(8)
    await asyncio.to_thread(rs.stack.start_postgres)
    await after(10)
    pusher.running = False
    await flow
    # (d) the same batches again, and older ones after newer ones (a historian replay).
    async with httpx.AsyncClient(timeout=30) as client:
        for records in pusher.sent_batches[-20:]:
            await pusher.push(client, records)
        for records in reversed(pusher.sent_batches[::7]):
            await pusher.push(client, records)

    ticks = pusher.tick
    sources = [f"fault-{run}"]
    expected_rows = len(pusher.accepted)
    assert expected_rows == ticks * ANNULI

    await poll(
        lambda: all_ready(rs), "every service's /readyz green again", within_s=180, interval=1
    )
    url = rs.settings.libpq_url

    def stored() -> tuple[int, int]:
        with psycopg.connect(url) as conn:
            total, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (annulus_id, timestamp)) FROM annulus_measurement"
                " WHERE source = ANY(%s)",
                (sources,),
            ).fetchone()
        return total, distinct

    async def all_stored():
        total, _ = await asyncio.to_thread(stored)
        return total >= expected_rows or None

    await poll(
        all_stored, "every accepted reading in annulus_measurement", within_s=180, interval=1
    )
    total, distinct = await asyncio.to_thread(stored)

    expected_alerts = expected_exceedances(ticks)
    async with httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api:

        async def exceedances() -> list[dict]:
            found = []
            for w in wells:
                r = await api.get(
                    "/alerts",
                    params={"annulus_id": w["annulus"], "kind": "maasp_exceeded", "limit": 500},
                )
                found += r.json()
            return found

        async def all_alerts():
            found = await exceedances()
            return found if len(found) >= expected_alerts else None

        await poll(
            all_alerts,
            f"{expected_alerts} exceedance alerts in the history",
            within_s=120,
            interval=1,
        )
        await asyncio.sleep(0)  # the history is read once more below, after the wait
        alerts = await exceedances()

    with psycopg.connect(url) as conn:
        duplicated_tasks = conn.execute(
            "SELECT trigger_type, target, count(*) FROM task WHERE auto_generated"
            " AND status IN ('open', 'in_progress') GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()
        open_exceed_tasks = conn.execute(
            "SELECT count(*) FROM task WHERE trigger_type = 'maasp_exceed'"
            " AND status = 'open' AND well_id = ANY(%s)",
            ([w["well"] for w in wells],),
        ).fetchone()[0]

    print(
        f"\nfault run: ticks {ticks}, sent {ticks * ANNULI} readings (+ replays), "
        f"accepted {expected_rows}, stored {total}, duplicates {total - distinct}, "
        f"lost {expected_rows - distinct}, responses {pusher.responses}, "
        f"exceedances expected {expected_alerts} / in history {len(alerts)} "
        f"(distinct {len({a['event_id'] for a in alerts})}), duplicated open tasks "
        f"{len(duplicated_tasks)}"
    )
    assert total == distinct == expected_rows, "every accepted reading stored exactly once"
    assert len(alerts) == len({a["event_id"] for a in alerts}) == expected_alerts
    assert duplicated_tasks == []
    assert open_exceed_tasks == len(wells), "one open exceedance task per annulus, not more"
    assert pusher.responses.get(503, 0) >= 1, "the broker outage was seen by the pushes"

"""Faults a real site has, while readings flow: workers killed, the broker and the database
restarted, batches pushed twice and out of order. Afterwards nothing is lost or doubled and
every service is ready again by itself.

Run alone with ``make test-fault`` (pytest -m fault).
"""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import build_well, poll
from tests.e2e.load import (
    Pusher,
    alert_history,
    duplicated_open_tasks,
    every_process_ready,
    exceedances,
    kill,
    maasp_known,
    open_exceed_tasks,
    stored_readings,
)

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
        await poll(lambda: maasp_known(api, wells, MAASP_BAR), "MAASP known for every annulus", 60)

    pusher = Pusher(
        f"{rs.ingest}/readings",
        key["secret"],
        tags,
        datetime.now(UTC) - timedelta(hours=1),
        pressure,
        tick_s=TICK_WALL_S,
        keep_batches=True,
    )
    flow = asyncio.create_task(pusher.run())

    async def after(seconds: float) -> None:
        await asyncio.sleep(seconds)
        assert not flow.done(), flow.exception() if flow.done() else None

    # (a) SIGKILL each stream worker in turn and restart it the README way (`wims up`).
    for worker in ("maasp", "integrity", "tasks"):
        await after(8)
        await asyncio.to_thread(kill, rs.settings, worker)
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

    ticks = pusher.ticks
    sources = [f"fault-{run}"]
    expected_rows = len(pusher.accepted)
    assert expected_rows == ticks * ANNULI

    await poll(
        lambda: asyncio.to_thread(every_process_ready, rs.settings),
        "every service's /readyz green again",
        within_s=180,
        interval=1,
    )
    url = rs.settings.libpq_url

    async def all_stored():
        total, _ = await asyncio.to_thread(stored_readings, url, sources)
        return total >= expected_rows or None

    await poll(
        all_stored, "every accepted reading in annulus_measurement", within_s=180, interval=1
    )
    total, distinct = await asyncio.to_thread(stored_readings, url, sources)

    expected_alerts = sum(exceedances(pusher.series(i), MAASP_BAR) for i in range(ANNULI))
    async with httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api:

        async def exceedance_alerts() -> list[dict]:
            found = []
            for w in wells:
                found += await alert_history(api, w["annulus"], "maasp_exceeded")
            return found

        async def all_alerts():
            found = await exceedance_alerts()
            return found if len(found) >= expected_alerts else None

        await poll(
            all_alerts,
            f"{expected_alerts} exceedance alerts in the history",
            within_s=120,
            interval=1,
        )
        await asyncio.sleep(0)  # the history is read once more below, after the wait
        alerts = await exceedance_alerts()

    duplicated_tasks = duplicated_open_tasks(url)
    open_exceed = open_exceed_tasks(url, [w["well"] for w in wells])

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
    assert open_exceed == len(wells), "one open exceedance task per annulus, not more"
    assert pusher.responses.get(503, 0) >= 1, "the broker outage was seen by the pushes"

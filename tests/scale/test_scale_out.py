"""Scale-out under load: readings flow at a steady rate through two processes of each
stream worker (maasp, integrity, tasks) and of ingest, while one process of each is
SIGKILLed, then one is started again (each service's third process), then one is stopped
gracefully (SIGTERM). Afterwards every accepted reading is stored once, every exceedance
the series holds is one alert, no automatic task is open twice, and each well's integrity
snapshots follow its levels as with one worker. The pause each event caused (time without
progress while work waited) is printed per signal.

Not part of `make test` (minutes): `make test-scale` (pytest -m scale).
"""

import asyncio
import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from aiokafka.partitioner import DefaultPartitioner

from services import processes
from services.processes import STREAM_WORKERS, Instance
from shared.contracts.enums import UtilisationLevel
from shared.contracts.topics import entity_key
from shared.domain.utilisation import level_for
from tests.e2e.conftest import RunningStack
from tests.e2e.helpers import build_well, poll
from tests.e2e.load import (
    Pusher,
    alert_history,
    duplicated_open_tasks,
    every_process_ready,
    exceedances,
    kill,
    level_runs,
    maasp_known,
    open_exceed_tasks,
    snapshot_series,
    stored_readings,
)
from tests.scale.conftest import SCALE
from tests.scale.progress import MEMBER_GROUPS, Progress, group_members

pytestmark = pytest.mark.scale

ADMIN_EMAIL = "scale-admin@wims.example"
ADMIN_PASSWORD = "scale-admin-password"
MAASP_BAR = 100.0
PERIOD = 40  # readings of one annulus between the starts of two exceedance episodes
EPISODE = 8  # readings at 110 bar in an episode
TICK_S = 0.25  # one reading of every annulus per tick
SCALED = (*STREAM_WORKERS, "ingest")
STEADY_S = 12.0  # steady flow before the first event and after each recovery


def pressure(annulus: int, index: int) -> float:
    phase = (index + annulus * 7) % PERIOD
    return 110.0 if PERIOD // 2 <= phase < PERIOD // 2 + EPISODE else 50.0


async def build_wells(api: httpx.AsyncClient, run: str) -> tuple[list[dict], list[str]]:
    """Wells (one annulus each) until every partition holds an annulus and a well, so each
    process of each service has work whatever share of the partitions it gets."""
    partitions = list(range(6))
    partitioner = DefaultPartitioner()
    wells: list[dict] = []
    tags: list[str] = []
    by_annulus: set[int] = set()
    by_well: set[int] = set()
    while len(wells) < 8 or len(by_annulus) < 6 or len(by_well) < 6:
        assert len(wells) < 30, "the ids do not spread over the partitions"
        tag = f"SCALE/{run}/{len(wells)}/ANN-A/PT"
        w = await build_well(api, tag, name=f"SCALE-{run}-{len(wells)}")
        wells.append(w)
        tags.append(tag)
        by_annulus.add(partitioner(entity_key(w["annulus"]), partitions, partitions))
        by_well.add(partitioner(entity_key(w["well"]), partitions, partitions))
    return wells, tags


async def held_partitions(rs: RunningStack) -> dict[str, list[int] | None]:
    return {name: await group_members(rs.settings, g) for name, g in MEMBER_GROUPS.items()}


def snapshot_levels(series: list[tuple[str, float | None]]) -> list[UtilisationLevel]:
    """The utilisation bands a well's snapshots record, each run once; a ``warning``
    between two others is left out: a reading that jumps past both bands raises
    maasp_warning and maasp_exceeded at one instant, and which of the two topics the
    integrity worker reads first decides whether an amber snapshot comes in between (with
    one worker as with two)."""
    runs: list[UtilisationLevel] = []
    for _status, utilisation in series:
        if utilisation is None:
            continue  # before the first reading
        level = level_for(utilisation)
        if level is UtilisationLevel.warning or (runs and runs[-1] is level):
            continue
        runs.append(level)
    return runs


async def set_up(rs: RunningStack, run: str) -> tuple[dict[str, str], list[dict], list[str], dict]:
    """The admin's headers, the wells, their tags and an ingest key, every MAASP known."""
    made = rs.wims("create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD)
    assert made.returncode == 0, made.stderr
    headers = rs.login(ADMIN_EMAIL, ADMIN_PASSWORD)
    async with httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api:
        wells, tags = await build_wells(api, run)
        key = (await api.post("/api-keys", json={"name": "scale", "source": f"scale-{run}"})).json()
        await poll(lambda: maasp_known(api, wells, MAASP_BAR), "MAASP of every annulus", 90)
    return headers, wells, tags, key


class Flow:
    """The readings flowing (``flow``) and the progress watched (``watch``) while processes
    are killed, started and stopped."""

    def __init__(
        self, rs: RunningStack, pusher: Pusher, progress: Progress, flow: asyncio.Task
    ) -> None:
        self.rs, self.pusher, self.progress, self.flow = rs, pusher, progress, flow
        self.watch = asyncio.create_task(progress.run())
        self.totals: dict[str, int] = {}  # partitions each group's members hold together

    async def steady(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        for task in (self.flow, self.watch):
            assert not task.done(), task.exception() if task.done() else None

    async def settled(self, what: str, members: int) -> dict[str, list[int]]:
        """Until each group has ``members`` processes, each holding partitions, and every
        annulus and partition with work waiting moves again; returns who holds what."""

        async def groups_done():
            held = await held_partitions(self.rs)
            for name, h in held.items():
                # Stable, each member holding some, and every partition held by someone.
                if h is None or len(h) != members or min(h) < 1:
                    return None
                if sum(h) != self.totals.setdefault(name, sum(h)):
                    return None
            return held

        held = await poll(
            groups_done, f"{members} process(es) per group after the {what}", 120, interval=1
        )

        async def moving():
            return not self.progress.recovered(since)

        since = time.monotonic()
        await poll(moving, f"progress after the {what}", within_s=120, interval=0.5)
        await self.steady(STEADY_S / 2)
        return held

    async def kill_start_stop(
        self, marks: list[tuple[str, float]]
    ) -> tuple[dict[str, list[int]], ...]:
        """SIGKILL one process of each, start one again, stop one gracefully; who held
        what before the kill, after the start and after the stop."""
        settings = self.rs.settings
        await self.steady(STEADY_S)
        # Two processes of each hold partitions: the load really goes through both.
        before = await self.settled("start-up", 2)
        marks.append(("kill", time.monotonic()))
        for service in SCALED:
            await asyncio.to_thread(kill, settings, service, 1)
        await self.settled("kill", 1)

        marks.append(("start", time.monotonic()))
        up = await asyncio.to_thread(self.rs.wims, "up", "--scale", SCALE, "--timeout", "180")
        assert up.returncode == 0, up.stdout + up.stderr
        after_start = await self.settled("start", 2)

        marks.append(("stop", time.monotonic()))
        stop = await asyncio.to_thread(self.rs.wims, "stop", *(f"{s}.2" for s in SCALED))
        assert stop.returncode == 0, stop.stdout + stop.stderr
        after_stop = await self.settled("stop", 1)
        marks.append(("end", time.monotonic()))
        self.pusher.running = False
        await self.flow
        return before, after_start, after_stop


async def wait_until_all_judged(
    rs: RunningStack,
    headers: dict[str, str],
    pusher: Pusher,
    wells: list[dict],
    url: str,
    expected: dict[int, int],
) -> dict[int, list[dict]]:
    """Until every expected exceedance alert is in the history and each well's snapshots
    reach its last level; returns the alerts per annulus."""
    well_ids = [w["well"] for w in wells]
    async with httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api:

        async def alerts_by_annulus() -> dict[int, list[dict]]:
            return {a: await alert_history(api, a, "maasp_exceeded") for a in expected}

        async def all_alerts():
            found = await alerts_by_annulus()
            return all(len(found[a]) >= n for a, n in expected.items()) or None

        await poll(all_alerts, "every expected exceedance alert", within_s=120, interval=1)
        want_levels = {
            w["well"]: level_runs(pusher.series(i), MAASP_BAR) for i, w in enumerate(wells)
        }

        async def snapshots_done():
            got = await asyncio.to_thread(snapshot_series, url, well_ids)
            return all(snapshot_levels(got[w]) == want_levels[w] for w in well_ids) or None

        await poll(snapshots_done, "each well's snapshots at its last level", 120, interval=1)
        return await alerts_by_annulus()


async def test_two_of_each_through_a_kill_a_start_and_a_graceful_stop(
    running_stack: RunningStack,
) -> None:
    rs = running_stack
    settings = rs.settings
    run = uuid.uuid4().hex[:6]
    headers, wells, tags, key = await set_up(rs, run)
    well_ids = [w["well"] for w in wells]

    pusher = Pusher(
        f"{rs.ingest}/readings",
        key["secret"],
        tags,
        datetime.now(UTC) - timedelta(hours=2),
        pressure,
        tick_s=TICK_S,
    )
    progress = Progress(settings, f"scale-{run}", well_ids)
    flow = Flow(rs, pusher, progress, asyncio.create_task(pusher.run()))
    marks: list[tuple[str, float]] = []
    before, after_start, after_stop = await flow.kill_start_stop(marks)

    # --- what the stack made of it -----------------------------------------------------------
    assert await asyncio.to_thread(every_process_ready, settings)
    url, sources = settings.libpq_url, [f"scale-{run}"]
    accepted = len(pusher.accepted)
    assert accepted == sum(pusher.sent)

    async def all_stored():
        total, _ = await asyncio.to_thread(stored_readings, url, sources)
        return total >= accepted or None

    await poll(all_stored, "every accepted reading stored", within_s=120, interval=1)
    expected = {w["annulus"]: exceedances(pusher.series(i), MAASP_BAR) for i, w in enumerate(wells)}
    alerts = await wait_until_all_judged(rs, headers, pusher, wells, url, expected)
    progress.running = False
    await flow.watch
    total, distinct = await asyncio.to_thread(stored_readings, url, sources)
    snapshots = await asyncio.to_thread(snapshot_series, url, well_ids)
    duplicated = await asyncio.to_thread(duplicated_open_tasks, url)
    open_exceed = await asyncio.to_thread(open_exceed_tasks, url, well_ids)

    report(progress, marks, before, after_start, after_stop)
    print(
        f"  {len(wells)} annuli; readings accepted {accepted}, stored {total} (distinct "
        f"{distinct}); ingest answers {pusher.responses}; exceedance alerts expected "
        f"{sum(expected.values())}, in history {sum(len(a) for a in alerts.values())}; "
        f"snapshots {sum(len(s) for s in snapshots.values())}; duplicated open tasks "
        f"{len(duplicated)}"
    )
    assert total == distinct == accepted, "every accepted reading stored exactly once"
    for annulus, n in expected.items():
        ids = {a["event_id"] for a in alerts[annulus]}
        assert len(alerts[annulus]) == len(ids) == n, f"annulus {annulus}: {alerts[annulus]}"
    assert duplicated == []
    assert open_exceed == len(wells), "one open exceedance task per annulus"
    for w in well_ids:
        # No snapshot twice: with one worker two in a row never record the same thing.
        recorded = [s for s in snapshots[w] if s[1] is not None]
        assert all(a != b for a, b in itertools.pairwise(recorded)), recorded
    for service in SCALED:
        assert processes.read_pid(settings, Instance(service, 2)) is None


def report(
    progress: Progress,
    marks: list[tuple[str, float]],
    *held: dict[str, list[int]],
) -> None:
    """Pause per event and signal: the longest time without progress, from the event to
    the next one; ``steady`` is the same measure before the first event."""
    t0 = progress.counters[next(iter(progress.counters))].samples[0][0]
    windows = [("steady", t0 + 2.0, marks[0][1])]
    windows += [(name, at, marks[i + 1][1]) for i, (name, at) in enumerate(marks[:-1])]
    signals = progress.signals()
    print("\nscale-out pauses (s without progress while work waited; loaded machine):")
    print("  " + f"{'event':<8}" + "".join(f"{s:>18}" for s in signals))
    for name, start, end in windows:
        row = "".join(f"{progress.pause(s, start, end):>18.1f}" for s in signals)
        print(f"  {name:<8}{row}")
    labels = ("before the kill", "after the start", "after the stop")
    for label, h in zip(labels, held, strict=True):
        print(f"  partitions held per process {label}: {h}")

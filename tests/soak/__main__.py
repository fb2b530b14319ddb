"""``make soak``: the whole stack under a steady load for a bounded time, with the faults a
site has along the way; not part of ``make test`` (minutes, and the machine's cores).

    python -m tests.soak [--minutes 10] [--rate 500] [--wells 20]

It starts its own Kafka and PostgreSQL like the tests do (tests/support/stack.py, on the test
ports, WIMS_TEST_PORT_OFFSET moves them) and the five services with `wims up`, builds wells
through the API and pushes readings through ingest at ``--rate`` readings/s: a steady 50 bar
on every annulus with, every PERIOD readings, an exceedance episode at 110 bar (MAASP is
100). Along the way the wellhead critical point of every annulus is edited through the API
(new config versions that leave MAASP as it is), each stream worker (maasp, integrity,
tasks) is SIGKILLed and restarted with `wims up`, and the broker is stopped and started.

At the end it prints readings accepted / stored / judged, exceedance alerts expected (from
the scripted series, judged with the product's own rules) / raised, dead letters and each
worker's RSS at the start and end of each of its lives (a leak shows as growth), and exits 1
when a reading accepted is not stored exactly once, a dead letter exists, or an alert is
missing or doubled.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from services import processes
from services.cli import SERVICES
from services.deadletters import read_dead_letters
from services.processes import Instance
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.e2e.helpers import build_well
from tests.e2e.load import (
    Pusher,
    alert_history,
    exceedances,
    kill,
    maasp_known,
    open_exceed_tasks,
    stored_readings,
)
from tests.support.stack import Stack, local_stack

ADMIN_EMAIL = "soak-admin@wims.example"
ADMIN_PASSWORD = "soak-admin-password"
MAASP_BAR = 100.0
PERIOD = 400  # readings of one annulus between the starts of two exceedance episodes
EPISODE = 20  # readings at 110 bar in an episode
TICK_S = 0.2  # one push every TICK_S of wall time
STREAM_WORKERS = ("maasp", "integrity", "tasks")


def pressure(annulus: int, index: int) -> float:
    phase = (index + annulus * 37) % PERIOD
    return 110.0 if PERIOD // 2 <= phase < PERIOD // 2 + EPISODE else 50.0


def wims(stack: Stack, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=stack.env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def pid_of(settings: Settings, service: str) -> int:
    pid = processes.read_pid(settings, Instance(service, 1))
    if pid is None:
        raise ValueError(f"{service} is not running")
    return pid


def rss_mb(pid: int) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def metric_total(text: str, name: str) -> float:
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


@dataclass
class Lives:
    """Each process of a service: its RSS when first seen and last seen, and (maasp) the
    readings it judged, so counters lost with a killed process are still counted."""

    rss: dict[int, list[float]] = field(default_factory=dict)  # pid -> [first, last]
    judged: dict[int, float] = field(default_factory=dict)  # pid -> last counter value

    def sample(self, pid: int, judged: float | None = None) -> None:
        mb = rss_mb(pid)
        if mb is not None:
            self.rss.setdefault(pid, [mb, mb])[1] = mb
        if judged is not None:
            self.judged[pid] = judged


async def scrape(client: httpx.AsyncClient, settings: Settings, service: str) -> str | None:
    try:
        r = await client.get(f"http://127.0.0.1:{settings.port_of(service)}/metrics", timeout=5)
        return r.text if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


async def sample_all(client: httpx.AsyncClient, settings: Settings, lives: dict) -> None:
    for service in SERVICES:
        try:
            pid = pid_of(settings, service)
        except (OSError, ValueError):
            continue
        judged = None
        if service == "maasp":
            page = await scrape(client, settings, service)
            judged = None if page is None else metric_total(page, "wims_maasp_readings_total")
        lives[service].sample(pid, judged)


async def wait_ready(settings: Settings, within_s: float = 240) -> None:
    deadline = time.monotonic() + within_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            ok = True
            for s in SERVICES:
                try:
                    r = await client.get(f"http://127.0.0.1:{settings.port_of(s)}/readyz")
                    ok = ok and r.status_code == 200
                except httpx.HTTPError:
                    ok = False
            if ok:
                return
            await asyncio.sleep(1)
    raise RuntimeError(f"the services were not ready again within {within_s:.0f} s")


# What happens when, as fractions of the run.
PLAN = [
    (0.15, "edit"),
    (0.30, "kill maasp"),
    (0.40, "kill integrity"),
    (0.50, "kill tasks"),
    (0.55, "edit"),
    (0.60, "broker"),
    (0.80, "edit"),
]


@dataclass
class Site:
    """What the soak built through the API: one well with one annulus per tag."""

    tags: list[str]
    wells: list[dict]
    key: dict
    wellheads: list[int]  # the wellhead critical point of every annulus


@dataclass
class Counts:
    """What the stack made of the push, counted once everything has settled."""

    expected: int  # exceedance alerts the series holds
    stored: int
    distinct_stored: int
    rows: int  # exceedance alerts in the history
    distinct: int  # ... by event id
    open_exceed: int


async def bring_up(stack: Stack, settings: Settings, api_url: str) -> dict[str, str] | None:
    """`wims up`, an admin, and its bearer header (None, and why printed, if up fails)."""
    up = await asyncio.to_thread(wims, stack, "up", "--timeout", "240")
    if up.returncode != 0:
        print(up.stdout, up.stderr)
        return None
    made = await asyncio.to_thread(
        wims, stack, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD
    )
    assert made.returncode == 0, made.stderr
    async with httpx.AsyncClient(timeout=30) as client:
        r = await client.post(
            f"{api_url}/auth/token", data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
        )
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def build_site(api_url: str, headers: dict[str, str], run: str, wells_n: int) -> Site | None:
    """The wells, an ingest key and the wellhead points, once every MAASP is known (None,
    and why printed, if not within 120 s)."""
    tags = [f"SOAK/{run}/{i}/ANN-A/PT" for i in range(wells_n)]
    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api:
        wells = [await build_well(api, tag, name=f"SOAK-{run}-{i}") for i, tag in enumerate(tags)]
        key = (await api.post("/api-keys", json={"name": "soak", "source": f"soak-{run}"})).json()
        wellheads = []
        for w in wells:
            points = (await api.get(f"/annuli/{w['annulus']}/critical-points")).json()
            wellheads += [p["id"] for p in points if p["point_type"] == "wellhead"]

        deadline = time.monotonic() + 120
        while not await maasp_known(api, wells, MAASP_BAR):
            if time.monotonic() > deadline:
                print("MAASP not known for every annulus within 120 s")
                return None
            await asyncio.sleep(0.5)
    return Site(tags, wells, key, wellheads)


def make_pusher(settings: Settings, args: argparse.Namespace, site: Site) -> Pusher:
    duration = args.minutes * 60
    per_annulus_s = args.rate / len(site.tags)
    # event time 1 s a reading: start far enough back that it never passes the wall clock
    t0 = datetime.now(UTC) - timedelta(seconds=duration * per_annulus_s * 1.5 + 3600)
    return Pusher(
        f"http://127.0.0.1:{settings.ingest_port}/ingest/v1/readings",
        site.key["secret"],
        site.tags,
        t0,
        pressure,
        tick_s=TICK_S,
        per_tick=max(1, round(args.rate * TICK_S / len(site.tags))),
    )


async def fault(
    stack: Stack,
    settings: Settings,
    api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    lives: dict,
    what: str,
    edits: int,
    wellheads: list[int],
) -> int:
    """One event of the plan; returns the number of config edits made so far."""
    if what == "edit":
        # A new config version for every annulus; the wellhead never limits (0.9 x
        # limit is far above 100 bar), so MAASP and the expected alerts stay as they are.
        edits += 1
        for cp in wellheads:
            r = await api.patch(f"/critical-points/{cp}", json={"pressure_limit_bar": 345 - edits})
            assert r.status_code == 200, r.text
    elif what.startswith("kill "):
        service = what.removeprefix("kill ")
        await sample_all(client, settings, lives)
        await asyncio.to_thread(kill, settings, service)
        again = await asyncio.to_thread(wims, stack, "up", "--timeout", "240")
        assert again.returncode == 0, again.stdout + again.stderr
    elif what == "broker":
        await asyncio.to_thread(stack.stop_kafka)
        await asyncio.sleep(8)
        await asyncio.to_thread(stack.start_kafka)
    return edits


async def follow_plan(
    stack: Stack,
    settings: Settings,
    api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    lives: dict,
    flow: asyncio.Task,
    start: float,
    duration: float,
    wellheads: list[int],
) -> int:
    """The push through the plan's events to the end of the run, the processes sampled
    every 2 s; returns the number of config edits."""
    edits = 0
    await sample_all(client, settings, lives)
    for at, what in PLAN:
        while time.monotonic() < start + at * duration:
            if flow.done():
                flow.result()  # the pusher failed: say why
            await sample_all(client, settings, lives)
            await asyncio.sleep(2)
        print(f"  {time.monotonic() - start:6.0f} s  {what}", flush=True)
        edits = await fault(stack, settings, api, client, lives, what, edits, wellheads)
    while time.monotonic() < start + duration:
        if flow.done():
            flow.result()
        await sample_all(client, settings, lives)
        await asyncio.sleep(2)
    return edits


async def settle(
    settings: Settings,
    api: httpx.AsyncClient,
    client: httpx.AsyncClient,
    lives: dict,
    pusher: Pusher,
    site: Site,
    run: str,
) -> Counts:
    """Wait (at most 180 s) until every accepted reading is stored and every expected alert
    raised, 5 s more for anything late, then count."""
    url, sources = settings.libpq_url, [f"soak-{run}"]
    expected = sum(exceedances(pusher.series(a), MAASP_BAR) for a in range(len(site.tags)))

    async def raised() -> tuple[int, int]:
        rows, ids = 0, set()
        for w in site.wells:
            found = await alert_history(api, w["annulus"], "maasp_exceeded")
            rows += len(found)
            ids |= {a["event_id"] for a in found}
        return rows, len(ids)

    settle = time.monotonic() + 180
    while time.monotonic() < settle:
        n_stored, _ = await asyncio.to_thread(stored_readings, url, sources)
        rows, distinct = await raised()
        await sample_all(client, settings, lives)
        if n_stored >= len(pusher.accepted) and distinct >= expected:
            break
        await asyncio.sleep(2)
    await asyncio.sleep(5)  # anything late (a double) has time to show
    await sample_all(client, settings, lives)
    n_stored, distinct_stored = await asyncio.to_thread(stored_readings, url, sources)
    rows, distinct = await raised()
    open_exceed = open_exceed_tasks(url, [w["well"] for w in site.wells])
    return Counts(expected, n_stored, distinct_stored, rows, distinct, open_exceed)


def verdict(
    args: argparse.Namespace,
    site: Site,
    pusher: Pusher,
    counts: Counts,
    lives: dict,
    letters: list,
    pushed_s: float,
    edits: int,
) -> int:
    """Print the result; 1 when a reading is not stored exactly once, a dead letter
    exists, or an alert is missing or doubled."""
    c = counts
    judged = sum(lives["maasp"].judged.values())
    print(f"\nsoak result after {pushed_s:.0f} s of push ({args.rate:.0f}/s asked):")
    print(
        f"  readings accepted {len(pusher.accepted)}, stored {c.stored} (distinct {c.distinct_stored})"
    )
    print(f"  readings judged by the MAASP worker {judged:.0f} (summed over its lives; a")
    print("    restart re-judges what its last life had not committed)")
    print(f"  ingest answers {dict(sorted(pusher.responses.items()))}")
    print(f"  exceedance alerts expected {c.expected}, raised {c.distinct} (history rows {c.rows})")
    print(f"  open maasp_exceed tasks {c.open_exceed} for {len(site.wells)} annuli")
    print(f"  config edits {edits} x {len(site.wellheads)} critical points")
    print(f"  dead letters {len(letters)}")
    for x in letters[:20]:
        print(f"    {x.id} {x.letter.service} {x.letter.reason}: {x.letter.error}")
    print("  RSS MB per process life (first seen -> last seen):")
    for service in SERVICES:
        life = "; ".join(
            f"pid {pid} {a:.0f} -> {b:.0f}" for pid, (a, b) in lives[service].rss.items()
        )
        print(f"    {service:<10} {life}")
    failures = []
    if not (len(pusher.accepted) == c.stored == c.distinct_stored):
        failures.append("accepted != stored exactly once")
    if letters:
        failures.append("dead letters exist")
    if c.distinct != c.expected:
        failures.append(
            "exceedance alerts missing" if c.distinct < c.expected else "alerts doubled"
        )
    if c.rows != c.distinct:
        failures.append("an alert is stored twice")
    print(f"  verdict: {'FAIL: ' + ', '.join(failures) if failures else 'ok'}")
    return 1 if failures else 0


async def soak(stack: Stack, args: argparse.Namespace) -> int:
    settings = stack.settings()
    began = time.monotonic()
    api_url = f"http://127.0.0.1:{settings.api_port}/api/v1"
    headers = await bring_up(stack, settings, api_url)
    if headers is None:
        return 1
    run = uuid.uuid4().hex[:6]
    site = await build_site(api_url, headers, run, args.wells)
    if site is None:
        return 1

    lives = {s: Lives() for s in SERVICES}
    duration = args.minutes * 60
    pusher = make_pusher(settings, args, site)
    flow = asyncio.create_task(pusher.run())
    start = time.monotonic()
    print(
        f"soak: {len(site.tags)} annuli, {args.rate:.0f} readings/s for {args.minutes:g} min "
        f"(stack up in {start - began:.0f} s)",
        flush=True,
    )
    async with (
        httpx.AsyncClient(timeout=10) as client,
        httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as api,
    ):
        edits = await follow_plan(
            stack, settings, api, client, lives, flow, start, duration, site.wellheads
        )
        pusher.running = False
        await flow
        pushed_s = time.monotonic() - start
        print(f"  {pushed_s:6.0f} s  push stopped; waiting for everything to be stored")
        await wait_ready(settings)
        counts = await settle(settings, api, client, lives, pusher, site, run)
    letters = (await read_dead_letters(settings, timeout_s=60)).letters
    return verdict(args, site, pusher, counts, lives, letters, pushed_s, edits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="of steady push")
    parser.add_argument("--rate", type=float, default=500.0, help="readings per second")
    parser.add_argument("--wells", type=int, default=20, help="one annulus each")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.rate <= 0 or args.wells < 1:
        parser.error("--minutes and --rate must be > 0, --wells >= 1")
    t0 = time.monotonic()
    with local_stack() as stack:
        from shared.infrastructure.kafka import ensure_topics
        from shared.persistence.migrate import upgrade

        upgrade(stack.settings())
        asyncio.run(ensure_topics(stack.settings()))
        try:
            rc = asyncio.run(soak(stack, args))
        finally:
            wims(stack, "down", "--services-only")
    print(f"soak took {time.monotonic() - t0:.0f} s in all")
    return rc


if __name__ == "__main__":
    sys.exit(main())

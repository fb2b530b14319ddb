"""The first minutes of a new install: `wims up` from an empty run folder (a broker that has
never seen the stream workers' changelog topics), wells created through the API the moment
every /readyz is green, readings pushed at once. Every annulus must get its MAASP, every
excursion its alert and task, and nothing valid may be dead-lettered.

This is the report of issue 14: a new user's first annulus configs were all dead-lettered by
the MAASP worker (its producer did not know a fresh table changelog topic's partitions yet).
It needs a broker of its own, started by `wims up` itself, so it does not use the session's
stack: it runs on the test ports shifted by 5 (apart from the session's stack, which a
module before it may still hold).
"""

import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.cli import SERVICES
from services.deadletters import read_dead_letters
from shared.infrastructure.settings import PROJECT_ROOT
from tests.e2e.conftest import RunningStack, describe_dead_letters
from tests.e2e.helpers import poll
from tests.support.stack import TEST_PORTS, Stack, keep_logs

ADMIN_EMAIL = "first-admin@wims.example"
ADMIN_PASSWORD = "first-admin-password"
WELLS = 5
# Annulus A: MAASP 100 bar, B: 150 bar (see build_well_with_two_annuli).
MAASP = {"A": 100.0, "B": 150.0}
# The excursion of each annulus: A passes warning (90 %) then exceeded (105 %), B warning.
EXCURSION = {"A": [90.0, 105.0], "B": [130.0]}
EXPECTED_ALERTS = {"A": {"maasp_warning", "maasp_exceeded"}, "B": {"maasp_warning"}}
EXPECTED_TASKS = {"A": {"maasp_warning", "maasp_exceed"}, "B": {"maasp_warning"}}
SHIFT = 5


@pytest.fixture(scope="module")
def running_stack() -> Iterator[RunningStack]:
    """A fresh run folder and nothing else: `wims up` starts the broker, the database, the
    migrations, the topics and the five services, as `make up` does. The test starts it
    itself (it races it); this fixture only cleans up."""
    run_dir = Path(tempfile.mkdtemp(prefix="wims-first-"))
    os.chmod(run_dir, 0o755)  # the postgres user must reach its data folder inside
    ports = {k: str(int(v) + SHIFT) for k, v in TEST_PORTS.items()}
    env = {
        **os.environ,
        **ports,
        "WIMS_RUN_DIR": str(run_dir),
        "WIMS_ENVIRONMENT": "test",
        "WIMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{ports['WIMS_KAFKA_PORT']}",
        "WIMS_PG_FAST": "1",
        "WIMS_KAFKA_HEAP": "768m",
    }
    env.pop("WIMS_DATABASE_URL", None)
    stack = Stack(env=env, run_dir=run_dir)
    rs = RunningStack(stack, stack.settings())
    try:
        yield rs
    finally:
        rs.wims("down")  # services, broker and database
        keep_logs(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


async def all_ready(
    client: httpx.AsyncClient, rs: RunningStack, services: tuple[str, ...] = SERVICES
) -> bool:
    async def one(service: str) -> bool:
        try:
            r = await client.get(f"{rs.base_url(service)}/readyz", timeout=1)
            return r.status_code == 200
        except httpx.HTTPError:
            return False

    return all(await asyncio.gather(*(one(s) for s in services)))


async def build_well_with_two_annuli(api: httpx.AsyncClient, name: str) -> dict[str, int]:
    """A well with annuli A (tubing x production, MAASP 100 bar) and B (production x
    intermediate, MAASP 150 bar), two critical points each: every point is a config
    version, so each annulus' config reaches the MAASP worker twice."""

    async def post(path: str, body: dict) -> dict:
        r = await api.post(path, json=body)
        assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    well = await post(
        "/wells",
        {
            "name": name,
            "field": "FIRST",
            "type": "oil_producer",
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
        },
    )
    inter = await post(
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
        },
    )
    ids = {"well": wid}
    for name_, inner, outer in (
        ("A", {"inner_tubing_string_id": tubing["id"]}, prod["id"]),
        ("B", {"inner_casing_string_id": prod["id"]}, inter["id"]),
    ):
        annulus = await post(
            f"/wells/{wid}/annuli",
            {
                "name": name_,
                **inner,
                "outer_casing_string_id": outer,
                "fluid_gradient_bar_per_m": 0.1,
            },
        )
        aid = annulus["id"]
        ids[name_] = aid
        await post(
            f"/annuli/{aid}/critical-points",
            {
                "label": "wellhead",
                "point_type": "wellhead",
                "depth_md": 0,
                "tvd_m": 0,
                "pressure_limit_bar": 345,
            },
        )
        # 0.9 x limit - 0.1 x 1000 = MAASP governs over the wellhead (0.9 x 345 = 310.5)
        await post(
            f"/annuli/{aid}/critical-points",
            {
                "label": "collapse at 1000 m",
                "point_type": "inner_string_collapse",
                "depth_md": 1050,
                "tvd_m": 1000,
                "pressure_limit_bar": (MAASP[name_] + 100.0) / 0.9,
            },
        )
    return ids


def reading(tag: str, ts: datetime, pressure: float) -> dict:
    return {"tag": tag, "timestamp": ts.isoformat(), "pressure": pressure, "temperature": 40.0}


async def push(ingest: httpx.AsyncClient, key: str, records: list[dict]) -> None:
    """Push until every record is accepted: a tag created a moment ago may be unknown to
    ingest until its next lookup reload (at most WIMS_INGEST_LOOKUP_MISS_REFRESH_S)."""

    async def accepted():
        r = await ingest.post("/readings", json=records, headers={"X-API-Key": key})
        if r.status_code == 202 and not r.json()["rejected"]:
            return True
        assert r.status_code in (202, 422, 503), f"ingest answered {r.status_code}: {r.text}"
        return False

    await poll(accepted, f"ingest accepting {len(records)} readings", within_s=30, interval=0.2)


async def explained(rs: RunningStack, waiting, *args, **kwargs):
    """poll(), and when it times out, the dead letters so far: a config the MAASP worker
    dead-lettered shows here as a missing alert (GET /annuli/{id}/maasp can still answer,
    the result is stored before the worker's table write that fails)."""
    try:
        return await poll(waiting, *args, **kwargs)
    except AssertionError as exc:
        found = (await read_dead_letters(rs.settings)).letters
        raise AssertionError(f"{exc}\n{describe_dead_letters(found)}") from None


def metric_total(text: str, name: str) -> float:
    """Sum of every sample of ``name`` in a Prometheus text page (absent: 0)."""
    pattern = re.compile(rf"^{re.escape(name)}(?:\{{[^}}]*\}})? (\S+)$", re.MULTILINE)
    return sum(float(v) for v in pattern.findall(text))


def start_wims_up(rs: RunningStack) -> tuple[subprocess.Popen, Path]:
    """`wims up` in the background (the test races it), its output in the run folder."""
    out = rs.settings.run_dir / "wims-up.out"
    with open(out, "wb") as sink:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "up", "--timeout", "240"],
            env=rs.stack.env,
            cwd=PROJECT_ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    return up, out


def output(out: Path) -> str:
    """What `wims up` printed so far (a small file, read at each poll as before)."""
    return out.read_text(errors="replace")


async def wait_migrated_and_make_admin(rs: RunningStack, up: subprocess.Popen, out: Path) -> None:
    """The admin needs the schema; `wims up` migrates before it starts the services."""

    async def migrated():
        assert up.poll() in (None, 0), output(out)
        return "database: migrated to head" in output(out)

    await poll(migrated, "`wims up` migrating the database", within_s=240, interval=0.1)
    made = await asyncio.to_thread(
        rs.wims, "create-admin", "--email", ADMIN_EMAIL, "--password", ADMIN_PASSWORD
    )
    assert made.returncode == 0, made.stderr


async def wait_ready_logged_in(
    rs: RunningStack, client: httpx.AsyncClient, up: subprocess.Popen, out: Path
) -> dict[str, str]:
    """Every /readyz green, and the admin's bearer header, got while the workers start."""
    headers: dict[str, str] = {}

    async def ready():
        assert up.poll() in (None, 0), output(out)
        if not headers and await all_ready(client, rs, ("api",)):
            # Logged in while the workers still start, so that nothing but the wells
            # follows the moment every /readyz is green (a login costs a password hash).
            r = await client.post(
                f"{rs.api}/auth/token",
                data={"username": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            )
            assert r.status_code == 200, r.text
            headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        return bool(headers) and await all_ready(client, rs)

    await poll(ready, "every /readyz green", within_s=240, interval=0.02)
    return headers


async def make_tags(
    api: httpx.AsyncClient, wells: list[dict[str, int]], run: str
) -> dict[int, tuple[str, str]]:
    """A SCADA tag for each annulus: annulus id -> (annulus name, tag)."""
    tags = {}
    for i, w in enumerate(wells):
        for name in ("A", "B"):
            tag = f"FIRST/{run}/{i}/ANN-{name}/PT"
            r = await api.post("/scada-tags", json={"tag": tag, "annulus_id": w[name]})
            assert r.status_code == 201, r.text
            tags[w[name]] = (name, tag)
    return tags


async def alert_kinds(api: httpx.AsyncClient, aid: int) -> list[str]:
    r = await api.get("/alerts", params={"annulus_id": aid, "limit": 500})
    return sorted(a["kind"] for a in r.json())


async def tasks_of(api: httpx.AsyncClient, well: int) -> list[dict]:
    r = await api.get("/tasks", params={"well_id": well, "limit": 500})
    body = r.json()
    return body["items"] if isinstance(body, dict) else body


async def wait_maasp_everywhere(
    rs: RunningStack, api: httpx.AsyncClient, tags: dict[int, tuple[str, str]]
) -> None:
    async def maasp_everywhere():
        missing = []
        for aid, (name, _) in tags.items():
            r = await api.get(f"/annuli/{aid}/maasp")
            cur = r.json().get("current") if r.status_code == 200 else None
            if not cur or cur["maasp_bar"] != pytest.approx(MAASP[name]):
                missing.append(aid)
        return not missing

    await explained(rs, maasp_everywhere, "the MAASP of every annulus", within_s=90)


async def wait_alerts_and_tasks_everywhere(
    rs: RunningStack,
    api: httpx.AsyncClient,
    tags: dict[int, tuple[str, str]],
    wells: list[dict[str, int]],
) -> None:
    async def alerts_everywhere():
        for aid, (name, _) in tags.items():
            if set(await alert_kinds(api, aid)) != EXPECTED_ALERTS[name]:
                return False
        return True

    await explained(rs, alerts_everywhere, "every annulus' alerts", within_s=60, interval=0.5)

    async def tasks_everywhere():
        for w in wells:
            found = await tasks_of(api, w["well"])
            for name in ("A", "B"):
                mine = {
                    t["trigger_type"]
                    for t in found
                    if t["annulus_id"] == w[name] and t["status"] == "open"
                }
                if mine != EXPECTED_TASKS[name]:
                    return False
        return True

    await explained(rs, tasks_everywhere, "every annulus' tasks", within_s=60, interval=0.5)


async def check_each_alert_and_task_once(
    api: httpx.AsyncClient, tags: dict[int, tuple[str, str]], wells: list[dict[str, int]]
) -> None:
    # Each alert once: a level raised once is one alert, not one per config version.
    for aid, (name, _) in tags.items():
        assert await alert_kinds(api, aid) == sorted(EXPECTED_ALERTS[name])
    for w in wells:
        found = [t for t in await tasks_of(api, w["well"]) if t["auto_generated"]]
        # one task per excursion of each annulus, not one per config version; the
        # well's own (integrity turned red: a review) once at most
        for name in ("A", "B"):
            mine = [t["trigger_type"] for t in found if t["annulus_id"] == w[name]]
            assert sorted(mine) == sorted(EXPECTED_TASKS[name]), (name, found)
        keys = [(t["trigger_type"], t["target"]) for t in found]
        assert len(keys) == len(set(keys)), f"a task doubled: {found}"
        exceed = [t for t in found if t["trigger_type"] == "maasp_exceed"]
        assert [t["priority"] for t in exceed] == ["critical"]


async def check_nothing_dead_lettered(
    rs: RunningStack,
    client: httpx.AsyncClient,
    api: httpx.AsyncClient,
    tags: dict[int, tuple[str, str]],
    wells: list[dict[str, int]],
) -> None:
    """No dead letter on the topic nor counted by any service; then the summary line."""
    letters = (await read_dead_letters(rs.settings)).letters
    assert not letters, describe_dead_letters(letters)
    dead_total = 0.0
    for service in SERVICES:
        page = (await client.get(f"{rs.base_url(service)}/metrics")).text
        for name in ("wims_dead_letters_total", "wims_maasp_dead_letters_total"):
            assert metric_total(page, name) == 0, f"{service}: {name} > 0"
            dead_total += metric_total(page, name)
    kinds: Counter[str] = Counter()
    for aid in tags:
        kinds.update(await alert_kinds(api, aid))
    auto: Counter[str] = Counter()
    for w in wells:
        auto.update(
            t["trigger_type"] for t in await tasks_of(api, w["well"]) if t["auto_generated"]
        )
    print(
        f"first minutes: {len(tags)} annuli with their MAASP; alerts {dict(kinds)}; "
        f"auto tasks {dict(auto)}; dead letters {len(letters)} on the topic, "
        f"{dead_total:.0f} counted by the services"
    )


async def test_wells_created_the_moment_the_stack_is_ready_are_all_judged(
    running_stack: RunningStack,
) -> None:
    rs = running_stack
    up, out = start_wims_up(rs)
    run = uuid.uuid4().hex[:6]
    async with httpx.AsyncClient(timeout=30) as client:
        await wait_migrated_and_make_admin(rs, up, out)
        headers = await wait_ready_logged_in(rs, client, up, out)
        ready_at = time.monotonic()

        async with (
            httpx.AsyncClient(base_url=rs.api, headers=headers, timeout=30) as api,
            httpx.AsyncClient(base_url=rs.ingest, timeout=30) as ingest,
        ):
            first_write_s = time.monotonic() - ready_at
            wells = await asyncio.gather(
                *(build_well_with_two_annuli(api, f"FIRST-{run}-{i}") for i in range(WELLS))
            )
            built_s = time.monotonic() - ready_at
            key = (await api.post("/api-keys", json={"name": "first", "source": "first"})).json()
            tags = await make_tags(api, wells, run)
            # Readings at once, while the configs are still on their way to the worker.
            t0 = datetime.now(UTC) - timedelta(minutes=10)
            baseline = [
                reading(tag, t0 + timedelta(seconds=s), 50.0)
                for _, tag in tags.values()
                for s in range(20)
            ]
            await push(ingest, key["secret"], baseline)
            print(
                f"\nfirst minutes: first write {first_write_s:.3f} s after every /readyz was "
                f"green, {WELLS} wells x 2 annuli built {built_s:.1f} s after"
            )
            await wait_maasp_everywhere(rs, api, tags)

            excursions = [
                reading(tag, t0 + timedelta(seconds=60 + s), p)
                for name, tag in tags.values()
                for s, p in enumerate(EXCURSION[name])
            ]
            await push(ingest, key["secret"], excursions)
            await wait_alerts_and_tasks_everywhere(rs, api, tags, wells)
            await check_each_alert_and_task_once(api, tags, wells)
            await check_nothing_dead_lettered(rs, client, api, tags, wells)
    assert up.wait(60) == 0, out.read_text(errors="replace")
    assert first_write_s < 1.0, "the wells are created within the first second"

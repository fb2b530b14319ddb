"""Steady load through ingest and what the stack must have made of it: shared by the fault
test, the scale test and the soak.

- :class:`Pusher` pushes readings at a steady pace as a historian does (a 503 or a broken
  connection: the same batch again) and remembers what was accepted;
- :func:`exceedances` and :func:`level_runs` say, with the product's own level rules, which
  alerts and integrity snapshots the in-order series of one annulus must give;
- the ``stored_*`` / ``*_tasks`` queries read what the stack wrote (the only place these
  tests name the tables' columns);
- :func:`kill` SIGKILLs one process of a service `wims up` started.
"""

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import numpy as np
import psycopg

from services import processes
from services.processes import Instance
from shared.contracts.enums import UtilisationLevel
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_CODES,
    levels_for_series,
    utilisation_array,
)
from shared.infrastructure.settings import Settings

#: pressure of annulus ``a`` at its reading number ``i``
PressureFn = Callable[[int, int], float]


@dataclass
class Pusher:
    """Every ``tick_s`` of wall time one push of ``per_tick`` readings of each tag, one
    second of event time apart from ``t0``, pressure from ``pressure``. A 503 or a broken
    connection is answered by pushing the same batch again (ids are derived: storage keeps
    one row); any other status, or a valid reading rejected, stops it with an error."""

    url: str
    key: str
    tags: list[str]
    t0: datetime
    pressure: PressureFn
    tick_s: float = 0.25
    per_tick: int = 1
    keep_batches: bool = False  # the fault test pushes them again afterwards
    sent: list[int] = field(default_factory=list)  # readings pushed, per tag
    sent_batches: list[list[dict]] = field(default_factory=list)
    accepted: set[tuple[str, str]] = field(default_factory=set)
    responses: dict[int, int] = field(default_factory=dict)
    ticks: int = 0
    running: bool = True

    def __post_init__(self) -> None:
        self.sent = [0] * len(self.tags)

    def next_batch(self) -> list[dict]:
        records = []
        for a, tag in enumerate(self.tags):
            for _ in range(self.per_tick):
                i = self.sent[a]
                self.sent[a] += 1
                records.append(
                    {
                        "tag": tag,
                        "timestamp": (self.t0 + timedelta(seconds=i)).isoformat(),
                        "pressure": self.pressure(a, i),
                        "temperature": 40.0,
                    }
                )
        return records

    async def push(self, client: httpx.AsyncClient, records: list[dict]) -> None:
        while True:
            try:
                r = await client.post(self.url, json=records, headers={"X-API-Key": self.key})
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            self.responses[r.status_code] = self.responses.get(r.status_code, 0) + 1
            if r.status_code == 202:
                rejected = r.json()["rejected"]
                if rejected:
                    raise AssertionError(f"valid readings rejected: {rejected[:3]}")
                self.accepted.update((rec["tag"], rec["timestamp"]) for rec in records)
                return
            if r.status_code != 503:
                raise AssertionError(f"ingest answered {r.status_code}: {r.text}")
            await asyncio.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))

    async def run(self) -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            start = time.monotonic()
            while self.running:
                records = self.next_batch()
                await self.push(client, records)
                if self.keep_batches:
                    self.sent_batches.append(records)
                self.ticks += 1
                await asyncio.sleep(max(0.0, start + self.ticks * self.tick_s - time.monotonic()))

    def series(self, a: int) -> np.ndarray:
        """The pressures pushed for tag ``a``, in event-time order."""
        return np.array([self.pressure(a, i) for i in range(self.sent[a])])


def _levels(series: np.ndarray, maasp_bar: float) -> np.ndarray:
    return levels_for_series(
        UtilisationLevel.unknown,
        utilisation_array(series, np.full(len(series), maasp_bar)),
        DEFAULT_THRESHOLDS,
    )


def exceedances(series: np.ndarray, maasp_bar: float) -> int:
    """maasp_exceeded alerts the in-order series of one annulus raises."""
    if len(series) == 0:
        return 0
    exceeded = _levels(series, maasp_bar) == LEVEL_CODES[UtilisationLevel.exceeded]
    return int(np.count_nonzero(exceeded[1:] & ~exceeded[:-1]) + exceeded[0])


def level_runs(series: np.ndarray, maasp_bar: float) -> list[UtilisationLevel]:
    """The levels the series passes through, each run of equal levels once."""
    by_code = {code: level for level, code in LEVEL_CODES.items()}
    runs: list[UtilisationLevel] = []
    for code in _levels(series, maasp_bar):
        if not runs or runs[-1] is not by_code[int(code)]:
            runs.append(by_code[int(code)])
    return runs


def stored_readings(url: str, sources: list[str]) -> tuple[int, int]:
    """(rows, distinct (annulus, time) pairs) in annulus_measurement from these sources."""
    with psycopg.connect(url) as conn:
        total, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (annulus_id, timestamp)) FROM annulus_measurement"
            " WHERE source = ANY(%s)",
            (sources,),
        ).fetchone()
    return total, distinct


def duplicated_open_tasks(url: str) -> list[tuple]:
    """(trigger, target, count) of every automatic task open more than once."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT trigger_type, target, count(*) FROM task WHERE auto_generated"
            " AND status IN ('open', 'in_progress') GROUP BY 1, 2 HAVING count(*) > 1"
        ).fetchall()


def open_exceed_tasks(url: str, well_ids: list[int]) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM task WHERE trigger_type = 'maasp_exceed'"
            " AND status = 'open' AND well_id = ANY(%s)",
            (well_ids,),
        ).fetchone()[0]


def kill(settings: Settings, service: str, index: int = 1) -> int:
    """SIGKILL one process `wims up` started; returns once it is gone (its pid file stays,
    as after a crash, so a later `wims up` starts it again)."""
    pid = processes.read_pid(settings, Instance(service, index))
    assert pid is not None, f"{service}.{index} is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while processes.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return pid


def every_process_ready(settings: Settings) -> bool:
    """Every process `wims up` started (and nobody stopped) is alive and ready."""
    return all(
        processes.ready(settings, inst)
        for service in processes.SERVICES
        for inst in processes.known(settings, service)
    )


async def maasp_known(api: httpx.AsyncClient, wells: list[dict], maasp_bar: float) -> bool:
    """Every annulus of ``wells`` (built by ``build_well``) has its MAASP at ``maasp_bar``."""
    for w in wells:
        current = (await api.get(f"/annuli/{w['annulus']}/maasp")).json().get("current")
        if not current or abs(current["maasp_bar"] - maasp_bar) > 1e-6:
            return False
    return True


async def alert_history(api: httpx.AsyncClient, annulus_id: int, kind: str) -> list[dict]:
    """The alert history of one annulus, of one kind (the api's /alerts).

    Right after a database restart the api answers a read on a pooled connection the restart
    killed with 503 "try again shortly" (once, then the pool is renewed), as it tells any
    client: the pollers here ask again, so this is read as "nothing yet", never as an answer.
    Any other status fails."""
    r = await api.get("/alerts", params={"annulus_id": annulus_id, "kind": kind, "limit": 500})
    if r.status_code == 503:
        return []
    assert r.status_code == 200, r.text
    return r.json()


def snapshot_series(url: str, well_ids: list[int]) -> dict[int, list[tuple[str, float | None]]]:
    """Each well's integrity snapshots in the order they were taken: (overall status,
    highest annulus utilisation)."""
    out: dict[int, list[tuple[str, float | None]]] = {w: [] for w in well_ids}
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT well_id, overall_status::text, highest_annulus_utilisation FROM integrity_snapshot"
            " WHERE well_id = ANY(%s) ORDER BY well_id, created_at, id",
            (well_ids,),
        ).fetchall()
    for well_id, status, utilisation in rows:
        out[well_id].append((status, utilisation))
    return out

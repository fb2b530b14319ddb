"""A SCADA simulator: realistic annulus readings pushed to the ingest service.

``wims simulate --ingest-url URL --api-key KEY --rate 2000 --duration 120
[--bad-share 0.02] [--time-scale 60] [--scenario buildup:17] [--scenario sap:23]``

Values (pure, :func:`generate_tick`, unit-tested without any I/O):

- a baseline per annulus (a share of its MAASP, or 20 bar when it has no limit), a daily
  thermal cycle whose temperature moves with it (the thermal part of a rise is explained
  by temperature, as the SAP rule in docs/domain.md expects), gaussian noise on both;
- a chosen share of bad points sent the way PI sends them: a digital state ("Bad Input",
  "I/O Timeout"...) in place of the value;
- some annuli report in psi and degF (every third annulus), as mixed historians do;
- scripted scenarios: ``buildup`` ramps the pressure past MAASP (to 115 %) over
  ``BUILDUP_S`` of event time; ``sap`` bleeds down to near zero then builds up again towards
  the earlier level with a flat temperature (sustained annulus pressure).

Event time: the simulator writes ``time_scale`` seconds of readings per wall second. So that
no timestamp lands in the future (ingest refuses > 5 min ahead), the run starts
``duration x time_scale`` seconds in the past and ends at about now: with ``--time-scale
60`` a two-minute run covers two hours and shows a full SAP episode.
"""

import argparse
import asyncio
import math
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.domain.maasp import CriticalPoint, maasp
from shared.domain.readings import PSI_TO_BAR

PI_DIGITAL_STATES = ("Bad Input", "I/O Timeout", "Equip Fail", "Scan Off", "Comm Fail")
BUILDUP_S = 3600.0  # event seconds from baseline to 115 % of MAASP
# The SAP detector only calls a drop a bleed-down when the level was held before it (see
# shared/domain/sap.py), so the scenario holds its baseline for an hour first.
SAP_NORMAL_S, SAP_BLEED_S, SAP_BUILD_S = 3600.0, 300.0, 3600.0
DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class AnnulusProfile:
    annulus_id: int
    maasp_bar: float | None
    baseline_bar: float
    temperature_c: float
    thermal_bar: float  # amplitude of the daily pressure swing
    phase: float  # radians, so annuli do not all peak together
    imperial: bool  # reports in psi / degF


@dataclass(frozen=True, slots=True)
class Scenario:
    kind: str  # "buildup" or "sap"
    annulus_id: int

    @classmethod
    def parse(cls, text: str) -> "Scenario":
        kind, _, aid = text.partition(":")
        if kind not in ("buildup", "sap") or not aid.strip().isdigit():
            raise ValueError(f"scenario {text!r}: expected buildup:ANNULUS_ID or sap:ANNULUS_ID")
        return cls(kind, int(aid))


def make_profile(annulus_id: int, maasp_bar: float | None, seed: int = 0) -> AnnulusProfile:
    rng = random.Random(annulus_id * 7919 + seed)
    limit = maasp_bar if maasp_bar and maasp_bar > 0 else None
    baseline = limit * rng.uniform(0.25, 0.5) if limit else 20.0
    return AnnulusProfile(
        annulus_id=annulus_id,
        maasp_bar=limit,
        baseline_bar=baseline,
        temperature_c=rng.uniform(30.0, 70.0),
        thermal_bar=baseline * 0.05,
        phase=rng.uniform(0, 2 * math.pi),
        imperial=annulus_id % 3 == 0,
    )


def scenario_pressure(kind: str, profile: AnnulusProfile, elapsed_s: float) -> float:
    """Pressure (bar) of a scripted scenario ``elapsed_s`` event seconds after its start."""
    base = profile.baseline_bar
    if kind == "buildup":
        target = 1.15 * (profile.maasp_bar or base * 3)
        return base + (target - base) * min(1.0, max(0.0, elapsed_s) / BUILDUP_S)
    if kind == "sap":
        if elapsed_s < SAP_NORMAL_S:
            return base
        t = elapsed_s - SAP_NORMAL_S
        low = 0.02 * base
        if t < SAP_BLEED_S:  # fast bleed-down to near zero
            return base - (base - low) * (t / SAP_BLEED_S)
        t -= SAP_BLEED_S
        # Rebuilds towards the earlier level (exponential approach), temperature flat.
        return low + (base - low) * (1 - math.exp(-3.0 * min(t, SAP_BUILD_S) / SAP_BUILD_S))
    raise ValueError(f"unknown scenario {kind!r}")


def generate_tick(
    profiles: Sequence[AnnulusProfile],
    ts: datetime,
    elapsed_s: float,
    rng: random.Random,
    bad_share: float = 0.0,
    scenarios: dict[int, str] | None = None,
) -> list[dict[str, Any]]:
    """One reading per annulus at ``ts`` (wire format), ``elapsed_s`` event seconds into the run."""
    stamp = ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    day = 2 * math.pi * (ts.timestamp() % DAY_S) / DAY_S
    scenarios = scenarios or {}
    out: list[dict[str, Any]] = []
    for p in profiles:
        cycle = math.sin(day + p.phase)
        kind = scenarios.get(p.annulus_id)
        if kind is None:
            pressure = p.baseline_bar + p.thermal_bar * cycle
            temperature = p.temperature_c + 8.0 * cycle
        else:
            pressure = scenario_pressure(kind, p, elapsed_s)
            temperature = p.temperature_c  # flat: the rise is not thermal
        pressure = max(0.0, pressure + rng.gauss(0.0, 0.003 * p.baseline_bar + 0.02))
        temperature += rng.gauss(0.0, 0.1)
        record: dict[str, Any] = {"annulus_id": p.annulus_id, "timestamp": stamp}
        if bad_share and rng.random() < bad_share:
            record["pressure"] = rng.choice(PI_DIGITAL_STATES)
            record["quality"] = "bad"
        elif p.imperial:
            record["pressure"] = round(pressure / PSI_TO_BAR, 2)
            record["pressure_unit"] = "psi"
            record["temperature"] = round(temperature * 9 / 5 + 32, 2)
            record["temperature_unit"] = "degF"
        else:
            record["pressure"] = round(pressure, 3)
            record["temperature"] = round(temperature, 2)
        out.append(record)
    return out


# --- I/O: loading annuli, pushing ------------------------------------------------------------


def load_profiles(database_url: str, seed: int = 0) -> list[AnnulusProfile]:
    """Every annulus with its latest MAASP (or one computed from its critical points)."""
    import psycopg

    with psycopg.connect(database_url) as conn:
        annuli = conn.execute(
            "SELECT id, fluid_gradient_bar_per_m, safety_factor FROM annulus ORDER BY id"
        ).fetchall()
        latest = dict(
            conn.execute(
                "SELECT DISTINCT ON (annulus_id) annulus_id, maasp_bar FROM maasp_result "
                "ORDER BY annulus_id, computed_at DESC"
            ).fetchall()
        )
        points: dict[int, list[CriticalPoint]] = {}
        for aid, cid, label, tvd, limit in conn.execute(
            "SELECT annulus_id, id, label, tvd_m, pressure_limit_bar FROM critical_point"
        ):
            points.setdefault(aid, []).append(CriticalPoint(cid, label, tvd, limit))
    profiles = []
    for aid, gradient, safety in annuli:
        limit = latest.get(aid)
        if limit is None and points.get(aid):
            limit = maasp(points[aid], gradient, safety).maasp_bar
        profiles.append(make_profile(aid, limit, seed))
    return profiles


async def push(
    profiles: Sequence[AnnulusProfile],
    ingest_url: str,
    api_key: str,
    rate: float,
    duration_s: float,
    bad_share: float,
    scenarios: Sequence[Scenario],
    time_scale: float,
    batch_size: int = 1000,
    seed: int = 0,
) -> dict[str, int]:
    import httpx
    import orjson

    if not profiles:
        raise ValueError("no annuli to simulate: create wells and annuli first")
    rng = random.Random(seed)
    by_annulus = {s.annulus_id: s.kind for s in scenarios}
    ticks_per_s = max(rate / len(profiles), 1e-3)
    event_step = timedelta(seconds=time_scale / ticks_per_s)
    start_event = datetime.now(UTC) - timedelta(seconds=duration_s * time_scale)
    totals = {"sent": 0, "accepted": 0, "rejected": 0, "retries": 0}
    url = ingest_url.rstrip("/") + "/ingest/v1/readings"
    headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
    pending: list[dict[str, Any]] = []
    t0 = time.monotonic()
    tick = 0
    async with httpx.AsyncClient(timeout=60) as client:

        async def send(records: list[dict[str, Any]]) -> None:
            while True:
                r = await client.post(url, content=orjson.dumps(records), headers=headers)
                if r.status_code == 503:  # Kafka away: wait as told, push the same again
                    totals["retries"] += 1
                    await asyncio.sleep(float(r.headers.get("Retry-After", "5")))
                    continue
                if r.status_code not in (202, 422):
                    raise RuntimeError(f"ingest answered {r.status_code}: {r.text[:300]}")
                body = r.json()
                totals["sent"] += len(records)
                totals["accepted"] += body["accepted"]
                totals["rejected"] += len(body["rejected"])
                return

        while time.monotonic() - t0 < duration_s:
            due = int((time.monotonic() - t0) * ticks_per_s) + 1
            while tick < due:
                ts = start_event + event_step * tick
                elapsed = (ts - start_event).total_seconds()
                pending.extend(generate_tick(profiles, ts, elapsed, rng, bad_share, by_annulus))
                tick += 1
                if len(pending) >= batch_size:
                    await send(pending)
                    pending = []
            await asyncio.sleep(min(0.2, max(0.0, tick / ticks_per_s - (time.monotonic() - t0))))
        if pending:
            await send(pending)
    return totals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ingest-url", required=True, help="e.g. http://127.0.0.1:8001")
    parser.add_argument("--api-key", required=True, help="an API key (created through the API)")
    parser.add_argument("--rate", type=float, default=1000.0, help="readings per wall second")
    parser.add_argument("--duration", type=float, default=60.0, help="wall seconds to run")
    parser.add_argument("--bad-share", type=float, default=0.02, help="share of bad points")
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="event seconds per wall second"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        default=[],
        help="buildup:ANNULUS_ID (past MAASP) or sap:ANNULUS_ID (bleed-down then build-up)",
    )
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)


def run(database_url: str, args: argparse.Namespace) -> int:
    try:
        scenarios = [Scenario.parse(s) for s in args.scenario]
    except ValueError as exc:
        print(f"error: --scenario: {exc}", file=sys.stderr)
        return 2
    if not 0.0 <= args.bad_share <= 1.0 or args.rate <= 0 or args.time_scale <= 0:
        print("error: --bad-share in [0, 1], --rate and --time-scale > 0", file=sys.stderr)
        return 2
    profiles = load_profiles(database_url, args.seed)
    known = {p.annulus_id for p in profiles}
    missing = [s.annulus_id for s in scenarios if s.annulus_id not in known]
    if missing:
        print(f"error: --scenario: unknown annulus {missing}", file=sys.stderr)
        return 2
    print(
        f"simulating {len(profiles)} annuli at {args.rate:g} readings/s for {args.duration:g} s "
        f"(event time x{args.time_scale:g}), scenarios: {args.scenario or 'none'}"
    )
    totals = asyncio.run(
        push(
            profiles,
            args.ingest_url,
            args.api_key,
            args.rate,
            args.duration,
            args.bad_share,
            scenarios,
            args.time_scale,
            args.batch_size,
            args.seed,
        )
    )
    print(
        f"sent {totals['sent']}, accepted {totals['accepted']}, rejected {totals['rejected']}, "
        f"retries after 503: {totals['retries']}"
    )
    return 0

"""``python -m bench.alarms``: the alarm load of ``wims demo`` from a clean start.

An operator can act on about one alarm per ten minutes (EEMUA 191, ISA-18.2), so this
counts what the demo raises: it starts ``wims demo`` on a fresh run folder (its own Kafka
and PostgreSQL, on the test ports of WIMS_TEST_PORT_OFFSET, so a developer's stack is left
alone), lets it seed the field and simulate for ``--minutes``, then reads every alert on
wims.alerts and prints them by kind and by well, with the integrity colour sequence of each
well and the rate per well per hour. The stack is stopped and its folder removed at the end.

``--tree PATH`` measures another checkout (its own .venv), e.g. the code before a change.
Not part of ``make bench``: it takes minutes (``make measure-alarms``). Ends with one JSON
line of figures.
"""

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.contracts import events as ev
from shared.contracts import topics
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import TEST_PORTS

DEMO_ADMIN = "demo-admin@wims.example"
DEMO_PASSWORD = "wims-demo-password"


def stack_env(run_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {
        **os.environ,
        **TEST_PORTS,
        "WIMS_RUN_DIR": str(run_dir),
        "WIMS_KAFKA_BOOTSTRAP": f"127.0.0.1:{TEST_PORTS['WIMS_KAFKA_PORT']}",
        "WIMS_KAFKA_HEAP": "768m",
        **extra,
    }
    env.pop("WIMS_DATABASE_URL", None)
    return env


async def read_alerts(settings: Settings) -> list[tuple[int, ev.Alert]]:
    """Every alert on the topic (a fresh broker: all of this run), with its broker time (ms)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topics.ALERTS.name, p) for p in range(settings.topic_partitions)]
        consumer.assign(parts)
        ends = await consumer.end_offsets(parts)
        out: list[tuple[int, ev.Alert]] = []
        while [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                out.extend((r.timestamp, ev.decode(topics.ALERTS.name, r.value)) for r in records)
        return sorted(out, key=lambda x: x[0])
    finally:
        await consumer.stop()


def well_names(settings: Settings) -> dict[int, str]:
    api = f"http://{settings.bind_host}:{settings.api_port}/api/v1"
    r = httpx.post(
        f"{api}/auth/token", data={"username": DEMO_ADMIN, "password": DEMO_PASSWORD}, timeout=30
    )
    r.raise_for_status()
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    wells = httpx.get(f"{api}/wells", params={"limit": 500}, headers=headers, timeout=30).json()
    return {w["id"]: w["name"] for w in wells}


def report(alerts: list[tuple[int, ev.Alert]], names: dict[int, str], hours: float) -> dict:
    by_kind = collections.Counter(a.kind.value for _, a in alerts)
    by_well: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    colours: dict[int, list[str]] = collections.defaultdict(list)
    for ts_ms, a in alerts:
        by_well[a.well_id][a.kind.value] += 1
        if a.kind.value == "integrity_status_changed":
            at = time.strftime("%H:%M:%S", time.gmtime(ts_ms / 1000))
            colours[a.well_id].append(f"{a.previous_status or 'new'}->{a.status} {at}")
    n_wells = max(len(names), 1)
    print(f"\nalerts by kind ({hours * 60:.1f} min, {len(names)} wells):")
    for kind, count in by_kind.most_common():
        print(f"  {kind:<28} {count:>5}   {count / n_wells / hours:8.1f} per well per hour")
    print("\nalerts by well:")
    for well_id in sorted(by_well):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(by_well[well_id].items()))
        print(f"  {names.get(well_id, well_id)!s:<8} {counts}")
        if colours[well_id]:
            print(f"  {'':<8} colours: {'; '.join(colours[well_id])}")
    total = sum(by_kind.values())
    status = by_kind.get("integrity_status_changed", 0)
    return {
        "minutes": round(hours * 60, 1),
        "wells": len(names),
        "alerts": total,
        "by_kind": dict(by_kind),
        "alerts_per_well_per_hour": round(total / n_wells / hours, 2),
        "integrity_status_changed_per_well_per_hour": round(status / n_wells / hours, 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=6.0, help="simulated wall minutes")
    parser.add_argument("--tree", type=Path, default=PROJECT_ROOT, help="checkout to measure")
    parser.add_argument(
        "--set", action="append", default=[], metavar="WIMS_X=V", help="extra setting"
    )
    args = parser.parse_args()
    tree = args.tree.resolve()
    python = tree / ".venv" / "bin" / "python"
    run_dir = Path(tempfile.mkdtemp(prefix="wims-alarms-"))
    os.chmod(run_dir, 0o755)  # the postgres user must reach its data folder inside
    extra = dict(item.split("=", 1) for item in args.set)
    env = stack_env(run_dir, extra)
    settings = Settings(
        **{k.removeprefix("WIMS_").lower(): v for k, v in env.items() if k.startswith("WIMS_")}
    )
    log = run_dir.parent / f"{run_dir.name}-demo.log"
    print(f"wims demo from {tree} for {args.minutes} min; its output in {log}", flush=True)
    started = time.time()
    try:
        with open(log, "w") as out:
            demo = subprocess.run(
                [str(python), "-m", "services.cli", "demo", "--duration", str(args.minutes * 60)],
                cwd=tree,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        hours = (time.time() - started) / 3600
        if demo.returncode != 0:
            print(f"wims demo failed ({demo.returncode}); see {log}")
        alerts = asyncio.run(read_alerts(settings))
        figures = report(alerts, well_names(settings), hours)
        figures["tree"] = str(tree)
        figures["settings"] = extra
    finally:
        subprocess.run(
            [str(python), "-m", "services.cli", "down"], cwd=tree, env=env, capture_output=True
        )
        shutil.rmtree(run_dir, ignore_errors=True)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())

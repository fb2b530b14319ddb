"""``python -m bench.scale``: throughput with 1 and 2 processes of a service, each beside
its bare baseline measured in the same run, and the scaling efficiency
(2-process rate / (2 x 1-process rate)).

1. MAASP. 1,000 annuli (as bench.maasp). ``BENCH_SCALE_N`` readings (default 600,000;
   the worker counts a batch of up to 50,000 at once, so fewer would measure coarsely)
   preloaded, then one worker judges them; then as many newer readings, and two workers
   started together judge those. Rate: from the moment every worker has judged a reading
   (start-up, table recovery and the rebalance the second worker causes are not counted)
   until the sum of their ``wims_maasp_readings_total`` reaches N. Baseline: bare aiokafka
   consumers draining the topic, 1 process, then 2 processes at once (half the partitions
   each).
2. Integrity. The 1,000 wells' configs, then ``BENCH_SCALE_STATES`` annulus states
   (default 10,000; a well's level changes every 5th of its states, so a fifth of them
   writes a snapshot and raises an alert) for 1 worker, as many newer ones for 2 workers,
   measured the same way with
   ``wims_integrity_events_processed_total{topic="wims.annulus-state"}``.
   Baseline: bare consumers draining wims.annulus-state, 1 and 2 processes.
3. Ingest. 1 then 2 ingest processes on the one port (SO_REUSEPORT; the sink off, as in
   bench.ingest), pushed 1,000-reading JSON batches by 8 concurrent requests for
   ``BENCH_SCALE_PUSH_S`` seconds (default 8). Baseline: bare aiokafka producers
   (bench/scale/bare.py), 1 process, then 2 at once.

During each measured stretch the CPU time of the broker, PostgreSQL (postmaster and its
backends), each service process, the bare clients and this process (the load client) is
read from /proc/<pid>/stat; the table shows which one was busy (100 % = one core).

Ends with one JSON line of figures (bench/__main__.py collects it). WIMS_TEST_PORT_OFFSET
moves the ports as for the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaProducer

from bench.ingest.__main__ import make_bodies, push_phase
from bench.ingest.__main__ import setup as setup_ingest
from bench.maasp.__main__ import (
    ANNULI,
    apply_configs,
    metric,
    produce_preload,
    setup_database,
)
from services.processes import free_port, listens_on
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import (
    ElementStatus,
    ElementType,
    EnvelopeType,
    UtilisationLevel,
    WellType,
)
from shared.contracts.topics import entity_key
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import ServiceProcess, Stack, local_stack, start_service

N = int(os.environ.get("BENCH_SCALE_N", "600000"))
STATES = int(os.environ.get("BENCH_SCALE_STATES", "10000"))
PUSH_S = float(os.environ.get("BENCH_SCALE_PUSH_S", "8"))
CHANGE_EVERY = 5  # states of a well between two level changes
CONCURRENCY = 8
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- CPU per process ---------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def postgres_pids(run_dir: Path) -> list[int]:
    """The postmaster and every process it forked (backends, writer, WAL writer ...)."""
    try:
        postmaster = int((run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    pids = [postmaster]
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[1]) == postmaster:
                pids.append(int(entry))
    return pids


class Cpu:
    """CPU % of named groups of processes over a stretch of time (100 % = one core)."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.start: dict[str, dict[int, float]] = {}
        self.t0 = 0.0

    def _read(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, pids in self.groups.items():
            out[name] = {pid: s for pid in pids() if (s := cpu_seconds(pid)) is not None}
        return out

    def begin(self) -> None:
        self.start, self.t0 = self._read(), time.monotonic()

    def end(self) -> dict[str, float]:
        now, took = self._read(), time.monotonic() - self.t0
        # A process born during the stretch (a PostgreSQL backend) counts from zero.
        return {
            name: 100 * sum(s - self.start[name].get(pid, 0.0) for pid, s in pids.items()) / took
            for name, pids in now.items()
        }


# --- service processes ---------------------------------------------------------------------


def start_workers(stack: Stack, service: str, count: int, **env: str) -> list[ServiceProcess]:
    """``count`` processes of a service started together; stream workers on ports of their
    own (the first on the service's port), ingest on the shared one."""
    procs = []
    for i in range(count):
        extra = dict(env)
        if service != "ingest" and i > 0:
            extra[f"WIMS_{service.upper()}_PORT"] = str(free_port("127.0.0.1"))
        port = extra.get(f"WIMS_{service.upper()}_PORT", stack.env[f"WIMS_{service.upper()}_PORT"])
        svc = start_service(stack, service, extra)
        svc.base_url = f"http://127.0.0.1:{port}"
        procs.append(svc)
    for svc in procs:
        svc.wait_ready(timeout_s=180)
    if service == "ingest":  # every process listening, not only the first to answer
        port = int(stack.env["WIMS_INGEST_PORT"])
        deadline = time.monotonic() + 60
        while not all(listens_on(s.proc.pid, port) for s in procs):
            assert time.monotonic() < deadline, "an ingest process never listened"
            time.sleep(0.2)
    return procs


def stop_all(procs: list[ServiceProcess]) -> None:
    for svc in procs:
        svc.terminate(signal.SIGTERM, timeout_s=60)


def measure(procs: list[ServiceProcess], name: str, n: int, cpu: Cpu) -> float:
    """Work done per second summed over ``procs``, from the moment each has done some until
    the sum reaches ``n``; the CPU table covers the same stretch."""
    deadline = time.monotonic() + 600
    t0: float | None = None
    done0 = 0.0
    while True:
        values = [metric(p.base_url, name) for p in procs]
        now = time.monotonic()
        if t0 is None and all(v > 0 for v in values):
            t0, done0 = now, sum(values)
            cpu.begin()
        if sum(values) >= n:
            break
        if now > deadline:
            raise TimeoutError(f"{name}: {sum(values):.0f} of {n} in 600 s")
        time.sleep(0.05)
    assert t0 is not None and now > t0, "the work was done before every process took part"
    return (n - done0) / (now - t0)


# --- bare baselines -----------------------------------------------------------------------------


def bare(stack: Stack, runs: list[list[str]], cpu: Cpu, names: list[str]) -> float:
    """Run bench/scale/bare.py processes at once; the sum of their rates."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.scale.bare", *args],
            env=stack.env,
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for args in runs
    ]
    cpu.groups.update({n: (lambda p=p: [p.pid]) for n, p in zip(names, procs, strict=True)})
    cpu.begin()
    total = 0.0
    for p in procs:
        out, err = p.communicate(timeout=600)
        rate = [line for line in out.splitlines() if line.startswith("RATE ")]
        assert p.returncode == 0 and rate, f"bare client failed:\n{out}\n{err[-2000:]}"
        total += float(rate[0].split()[1])
    return total


def consume_baseline(stack: Stack, topic: str, count: int, cpu: Cpu) -> float:
    parts = stack.settings().topic_partitions
    runs = [
        ["consume", topic, ",".join(str(p) for p in range(parts) if p % count == k)]
        for k in range(count)
    ]
    return bare(stack, runs, cpu, [f"bare consumer {k + 1}" for k in range(count)])


def produce_baseline(stack: Stack, count: int, cpu: Cpu) -> float:
    start_at = time.time() + 20  # each reads its records back first
    runs = [["produce", str(PUSH_S), str(start_at)] for _ in range(count)]
    return bare(stack, runs, cpu, [f"bare producer {k + 1}" for k in range(count)])


# --- the three services -----------------------------------------------------------------------


def infra_groups(stack: Stack) -> dict[str, Callable[[], list[int]]]:
    kafka = int((stack.run_dir / "pids" / "kafka.pid").read_text())
    return {
        "kafka": lambda: [kafka],
        "postgres": lambda: postgres_pids(stack.run_dir),
        "bench client": lambda: [os.getpid()],
    }


def phase(
    stack: Stack,
    service: str,
    count: int,
    metric_name: str,
    n: int,
    env: dict[str, str] | None = None,
) -> tuple[float, dict[str, float]]:
    cpu = Cpu(infra_groups(stack))
    procs = start_workers(stack, service, count, **(env or {}))
    cpu.groups.update(
        {f"{service} {k + 1}": (lambda p=p: [p.proc.pid]) for k, p in enumerate(procs)}
    )
    try:
        rate = measure(procs, metric_name, n, cpu)
        return rate, cpu.end()
    finally:
        stop_all(procs)


def maasp_figures(stack: Stack) -> dict[str, Any]:
    settings = stack.settings()
    apply_configs(stack)
    out: dict[str, Any] = {}
    start = time.time() - 4 * 86400
    for count in (1, 2):
        # Newer readings each time: the second run judges fresh ones, not late ones.
        took = asyncio.run(produce_preload(settings, N, start + (count - 1) * (N // ANNULI + 60)))
        print(f"maasp: {N:,} readings preloaded in {took:.1f} s", flush=True)
        cpu = Cpu(infra_groups(stack))
        base = consume_baseline(stack, topics.READINGS.name, count, cpu)
        out[f"bare {count}"], out[f"bare cpu {count}"] = base, cpu.end()
        rate, out[f"cpu {count}"] = phase(stack, "maasp", count, "wims_maasp_readings_total", N)
        out[f"rate {count}"] = rate
        print(f"maasp {count} worker(s): {rate:,.0f} readings/s; bare {base:,.0f}/s", flush=True)
    return out


def well_config(i: int) -> ev.WellConfig:
    tested = datetime.now(UTC) - timedelta(days=10)
    elements = [
        ev.BarrierElementConfig(
            id=10 * i + k,
            name=element.value,
            element_type=element,
            envelope_type=envelope,
            status=ElementStatus.ok,
            last_tested_at=tested,
            next_test_due=tested + timedelta(days=180),
        )
        for k, (element, envelope) in enumerate(
            [
                (ElementType.sssv, EnvelopeType.primary),
                (ElementType.packer, EnvelopeType.primary),
                (ElementType.wellhead, EnvelopeType.secondary),
                (ElementType.casing, EnvelopeType.secondary),
            ]
        )
    ]
    return ev.WellConfig(
        well_id=i,
        version=1,
        name=f"BENCH-{i}",
        well_type=WellType.oil_producer,
        consequence_level=3,
        annuli=[ev.AnnulusRef(id=i, name="A")],
        elements=elements,
    )


async def produce_states(settings: Settings, start: datetime, first_step: int) -> None:
    """STATES annulus states over the wells, one per well per second from ``start``; the
    level of a well changes every CHANGE_EVERY-th state (counted from ``first_step``)."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = []
        for k in range(STATES):
            i, step = k % ANNULI + 1, k // ANNULI
            high = ((first_step + step) // CHANGE_EVERY) % 2 == 1
            state = ev.AnnulusState(
                well_id=i,
                annulus_id=i,
                annulus_name="A",
                ts=start + timedelta(seconds=step),
                pressure_bar=85.0 if high else 50.0,
                maasp_bar=100.0,
                utilisation=0.85 if high else 0.5,
                level=UtilisationLevel.warning if high else UtilisationLevel.normal,
                reason="level_change" if step % CHANGE_EVERY == 0 else "heartbeat",
            )
            futures.append(
                await producer.send(
                    topics.ANNULUS_STATE.name, value=state.encode(), key=entity_key(i)
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def publish_well_configs(settings: Settings) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                topics.WELL_CONFIG.name, value=well_config(i).encode(), key=entity_key(i)
            )
            for i in range(1, ANNULI + 1)
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def integrity_figures(stack: Stack) -> dict[str, Any]:
    settings = stack.settings()
    asyncio.run(publish_well_configs(settings))
    (worker,) = start_workers(stack, "integrity", 1)
    applied = 'wims_integrity_events_processed_total{topic="wims.well-config"}'
    deadline = time.monotonic() + 180
    while metric(worker.base_url, applied) < ANNULI:
        assert time.monotonic() < deadline, "the well configs were not applied"
        time.sleep(0.2)
    stop_all([worker])
    print(f"integrity: {ANNULI} well configs applied", flush=True)
    out: dict[str, Any] = {}
    start = datetime.now(UTC) - timedelta(days=3)
    name = 'wims_integrity_events_processed_total{topic="wims.annulus-state"}'
    for count in (1, 2):
        first_step = (count - 1) * STATES // ANNULI
        asyncio.run(produce_states(settings, start + timedelta(days=count - 1), first_step))
        cpu = Cpu(infra_groups(stack))
        base = consume_baseline(stack, topics.ANNULUS_STATE.name, count, cpu)
        out[f"bare {count}"], out[f"bare cpu {count}"] = base, cpu.end()
        rate, out[f"cpu {count}"] = phase(stack, "integrity", count, name, STATES)
        out[f"rate {count}"] = rate
        print(f"integrity {count} worker(s): {rate:,.0f} states/s; bare {base:,.0f}/s", flush=True)
    return out


def make_room(settings: Settings) -> None:
    """bench.maasp's wells carry explicit ids and the names bench.ingest gives its own:
    move the id sequences past them and rename them, so bench.ingest's setup can add its
    wells beside them."""
    import psycopg

    with psycopg.connect(settings.libpq_url) as conn:
        for table in ("well", "annulus", "critical_point"):
            conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 100000)")
        conn.execute("UPDATE well SET name = 'SCALE-' || id")


def ingest_figures(stack: Stack) -> dict[str, Any]:
    settings = stack.settings()
    make_room(settings)
    annuli, key = setup_ingest(settings)
    bodies = make_bodies(annuli)
    out: dict[str, Any] = {}
    for count in (1, 2):
        cpu = Cpu(infra_groups(stack))
        procs = start_workers(stack, "ingest", count, WIMS_INGEST_SINK_ENABLED="false")
        cpu.groups.update(
            {f"ingest {k + 1}": (lambda p=p: [p.proc.pid]) for k, p in enumerate(procs)}
        )
        try:
            cpu.begin()
            push = asyncio.run(push_phase(procs[0].base_url, key, bodies, CONCURRENCY))
            out[f"cpu {count}"] = cpu.end()
        finally:
            stop_all(procs)
        assert push["errors"] == 0, push
        out[f"rate {count}"] = push["rate"]
        cpu = Cpu(infra_groups(stack))
        base = produce_baseline(stack, count, cpu)
        out[f"bare {count}"], out[f"bare cpu {count}"] = base, cpu.end()
        print(
            f"ingest {count} process(es): {push['rate']:,.0f} readings/s; bare {base:,.0f}/s",
            flush=True,
        )
    return out


def rows_for(label: str, unit: str, f: dict[str, Any]) -> list[dict[str, Any]]:
    r1, r2, b1, b2 = f["rate 1"], f["rate 2"], f["bare 1"], f["bare 2"]
    return [
        {"name": f"scale: {label}, 1 process", "value": round(r1), "unit": unit,
         "baseline": round(b1), "ratio": round(r1 / b1, 3), "target": ""},
        {"name": f"scale: {label}, 2 processes", "value": round(r2), "unit": unit,
         "baseline": round(b2), "ratio": round(r2 / b2, 3), "target": ""},
        {"name": f"scale: {label}, efficiency 2 vs 2x1", "value": round(r2), "unit": unit,
         "baseline": round(2 * r1), "ratio": round(r2 / (2 * r1), 3),
         "target": "bare efficiency: " + f"{b2 / (2 * b1):.2f}"},
    ]  # fmt: skip


def print_cpu(label: str, f: dict[str, Any]) -> None:
    for key in ("bare cpu 1", "cpu 1", "bare cpu 2", "cpu 2"):
        busy = ", ".join(f"{name} {pct:.0f} %" for name, pct in f[key].items())
        print(f"  {label} {key.replace('cpu', 'CPU')}: {busy}")


PARTS = {
    "maasp": (maasp_figures, "maasp worker", "readings/s"),
    "integrity": (integrity_figures, "integrity worker", "states/s"),
    "ingest": (ingest_figures, "ingest", "readings/s"),
}


def main(argv: list[str]) -> int:
    """``python -m bench.scale [maasp] [integrity] [ingest]``: those parts only."""
    parts = argv or list(PARTS)
    if unknown := set(parts) - PARTS.keys():
        print(f"unknown part(s) {sorted(unknown)}; choose from {list(PARTS)}")
        return 2
    with local_stack() as stack:
        settings = stack.settings()
        from shared.infrastructure.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        setup_database(settings)
        figures = {part: PARTS[part][0](stack) for part in parts}
    print("\nCPU per process while measuring (100 % = one core; the machine has "
          f"{os.cpu_count()}):")  # fmt: skip
    for label, f in figures.items():
        print_cpu(label, f)
    rows = [row for part, f in figures.items() for row in rows_for(*PARTS[part][1:], f)]
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

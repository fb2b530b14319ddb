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
backends), each service process, the bare clients (each with any process below it, see
bench/scale/cpu.py) and this process alone (the load client) is read from /proc; the table
shows which one was busy (100 % = one core). A bare client's stretch is the one it measures
its rate over: it says BEGIN and RATE, then waits to be let go, so it is read alive.

Ends with one JSON line of figures (bench/__main__.py collects it). WIMS_TEST_PORT_OFFSET
moves the ports as for the tests.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
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
from bench.scale.cpu import Cpu, Group, Stretch
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


# --- CPU per process ---------------------------------------------------------------------------


def postmaster_pid(run_dir: Path) -> int | None:
    try:
        return int((run_dir / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


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


def bare(stack: Stack, runs: list[list[str]], cpu: Cpu, names: list[str]) -> tuple[float, Stretch]:
    """Run bench/scale/bare.py processes at once; the sum of their rates and the CPU table
    (``cpu``'s groups and theirs). The CPU stretch is their measured one: from the moment
    every client has printed BEGIN until every one has printed RATE. Each then waits for its
    stdin to close, so that its CPU is read while it still exists (sampled after its exit,
    when /proc no longer has it, a bare client showed 0 %)."""
    procs = [
        BareClient(
            subprocess.Popen(
                [sys.executable, "-m", "bench.scale.bare", *args],
                env=stack.env,
                cwd=PROJECT_ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        for args in runs
    ]
    try:
        cpu.groups.update(
            {n: Group(lambda p=p: p.proc.pid) for n, p in zip(names, procs, strict=True)}
        )
        deadline = time.monotonic() + 600
        for p in procs:
            p.wait_for("BEGIN", deadline)
        cpu.begin()
        rates = [float(p.wait_for("RATE ", deadline).split()[1]) for p in procs]
        busy = cpu.end()
    finally:
        codes = [p.finish() for p in procs]
    assert codes == [0] * len(procs), f"bare clients exited {codes}"
    return sum(rates), busy


class BareClient:
    """A bare.py process and the lines it printed (stdout and stderr), read by a thread."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def wait_for(self, prefix: str, deadline: float) -> str:
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"bare client: no {prefix!r} line in time") from None
            if line is None:
                tail = "\n".join(self.seen[-40:])
                raise RuntimeError(
                    f"bare client exited ({self.proc.wait()}) before {prefix!r}:\n{tail}"
                )
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def finish(self) -> int:
        """Let it exit (it waits for its stdin to close), kill it if it does not; its exit
        status."""
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def consume_baseline(stack: Stack, topic: str, count: int, cpu: Cpu) -> tuple[float, Stretch]:
    parts = stack.settings().topic_partitions
    runs = [
        ["consume", topic, ",".join(str(p) for p in range(parts) if p % count == k)]
        for k in range(count)
    ]
    return bare(stack, runs, cpu, [f"bare consumer {k + 1}" for k in range(count)])


def produce_baseline(stack: Stack, count: int, cpu: Cpu) -> tuple[float, Stretch]:
    start_at = time.time() + 20  # each reads its records back first
    runs = [["produce", str(PUSH_S), str(start_at)] for _ in range(count)]
    return bare(stack, runs, cpu, [f"bare producer {k + 1}" for k in range(count)])


# --- the three services -----------------------------------------------------------------------


def infra_groups(stack: Stack) -> dict[str, Group]:
    """The broker, PostgreSQL (the postmaster and every backend below it) and this process
    alone (the service processes and bare clients it started have rows of their own)."""
    kafka = int((stack.run_dir / "pids" / "kafka.pid").read_text())
    return {
        "kafka": Group(lambda: kafka),
        "postgres": Group(lambda: postmaster_pid(stack.run_dir)),
        "bench client": Group(os.getpid, tree=False),
    }


def phase(
    stack: Stack,
    service: str,
    count: int,
    metric_name: str,
    n: int,
    env: dict[str, str] | None = None,
) -> tuple[float, Stretch]:
    cpu = Cpu(infra_groups(stack))
    procs = start_workers(stack, service, count, **(env or {}))
    cpu.groups.update(
        {f"{service} {k + 1}": Group(lambda p=p: p.proc.pid) for k, p in enumerate(procs)}
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
        base, out[f"bare cpu {count}"] = consume_baseline(stack, topics.READINGS.name, count, cpu)
        out[f"bare {count}"] = base
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
        base, out[f"bare cpu {count}"] = consume_baseline(
            stack, topics.ANNULUS_STATE.name, count, cpu
        )
        out[f"bare {count}"] = base
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
            {f"ingest {k + 1}": Group(lambda p=p: p.proc.pid) for k, p in enumerate(procs)}
        )
        try:
            cpu.begin()
            push = asyncio.run(push_phase(procs[0].base_url, key, bodies, CONCURRENCY))
            out[f"cpu {count}"] = cpu.end()
        finally:
            stop_all(procs)
        assert push["errors"] == 0, push
        out[f"rate {count}"] = push["rate"]
        base, out[f"bare cpu {count}"] = produce_baseline(stack, count, Cpu(infra_groups(stack)))
        out[f"bare {count}"] = base
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
        print(f"  {label} {key.replace('cpu', 'CPU')} {f[key].describe()}")


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

"""``python -m bench.maasp``: MAASP worker throughput and alert latency.

1. Throughput. 1,000 annuli (rows in PostgreSQL, configs published and applied first),
   then N readings (default 1,000,000, one per annulus per second of event time) preloaded
   into wims.readings. A bare aiokafka consumer drains the topic, twice, the faster drain
   counting (the baseline: what Kafka and one Python process deliver with no work at
   all); so does a bare consumer taking whole record batches as the worker does
   (shared.infrastructure.compat.record_batches), printed beside it to show what that alone is worth; then one
   worker process judges them. Its rate is timed from its first to its
   N-th finished reading, read from its own counter (``wims_maasp_readings_total``,
   incremented once a batch is judged, emitted and stored), so start-up and table
   recovery are not counted.
2. Latency. With the same worker, 2,000 readings/s of background load on the annuli, and
   ten probe annuli that a reading every 100 ms pushes past MAASP or bleeds back:
   time from producing the probe reading to its alert arriving on wims.alerts.

Ends with one JSON line of figures. Environment: BENCH_MAASP_N (readings),
BENCH_MAASP_LATENCY_S (seconds of the latency phase), WIMS_TEST_PORT_OFFSET (ports, as for
the tests), BENCH_MAASP_PROFILE=1 (run the worker under cProfile and print its top
functions).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from sqlalchemy.orm import Session

from services.maasp.config import annulus_key
from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import WellLocation, WellStatus, WellType
from shared.infrastructure.compat.record_batches import RecordTaker
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import Stack, local_stack, start_service

N = int(os.environ.get("BENCH_MAASP_N", "1000000"))
ANNULI = 1000
PROBES = 10
LATENCY_S = float(os.environ.get("BENCH_MAASP_LATENCY_S", "20"))
BACKGROUND_RATE = 2000.0
MAASP_BAR = 0.9 * 250.0 - 0.1 * 1000.0  # 125 bar: the shoe point below governs
PROFILE = os.environ.get("BENCH_MAASP_PROFILE") == "1"


def setup_database(settings: Settings) -> None:
    from shared.infrastructure.db import make_engine
    from shared.persistence.migrate import upgrade
    from shared.persistence.models import Annulus, CriticalPoint, Well

    upgrade(settings)
    engine = make_engine(settings)
    with Session(engine) as s, s.begin():
        for i in range(1, ANNULI + 1):
            s.add(
                Well(
                    id=i,
                    name=f"BENCH-{i}",
                    field="Bench",
                    type=WellType.oil_producer,
                    status=WellStatus.active,
                    location=WellLocation.platform,
                    measured_depth=3000.0,
                    consequence_level=3,
                )
            )
        s.flush()
        for i in range(1, ANNULI + 1):
            s.add(Annulus(id=i, well_id=i, name="A", fluid_gradient_bar_per_m=0.1))
        s.flush()
        for i in range(1, ANNULI + 1):
            s.add(
                CriticalPoint(
                    id=2 * i - 1,
                    annulus_id=i,
                    label="wellhead",
                    point_type="wellhead",
                    depth_md=0.0,
                    tvd_m=0.0,
                    pressure_limit_bar=150.0,
                )
            )
            s.add(
                CriticalPoint(
                    id=2 * i,
                    annulus_id=i,
                    label="shoe",
                    point_type="shoe",
                    depth_md=1000.0,
                    tvd_m=1000.0,
                    pressure_limit_bar=250.0,
                )
            )
    engine.dispose()


def config(i: int) -> ev.AnnulusConfig:
    return ev.AnnulusConfig(
        event_id=ev.derived_id("annulus_config", i, 1),
        annulus_id=i,
        well_id=i,
        name="A",
        version=1,
        fluid_gradient_bar_per_m=0.1,
        critical_points=[
            ev.CriticalPointConfig(
                id=2 * i - 1,
                label="wellhead",
                point_type="wellhead",
                tvd_m=0,
                pressure_limit_bar=150,
            ),
            ev.CriticalPointConfig(
                id=2 * i, label="shoe", point_type="shoe", tvd_m=1000, pressure_limit_bar=250
            ),
        ],
    )


def reading(annulus_id: int, ts: float, pressure: float) -> bytes:
    # The wire form of shared.contracts.events.Reading, written with orjson directly: building
    # a million pydantic models would take longer than the worker takes to judge them.
    stamp = datetime.fromtimestamp(ts, UTC)
    return orjson.dumps(
        {
            "event_id": str(ev.derived_id(annulus_id, ts, "bench")),
            "schema_version": 1,
            "event_type": "reading",
            "annulus_id": annulus_id,
            "well_id": annulus_id,
            "ts": stamp,
            "pressure_bar": round(pressure, 3),
            "temperature_c": 45.0,
            "quality": "good",
            "source": "bench",
            "received_at": stamp,
        }
    )


async def produce_preload(
    settings: Settings, n: int = N, start: float | None = None, seed: int = 7
) -> float:
    """``n`` readings, annuli interleaved, one per annulus per second of event time from
    ``start`` (default: two days ago)."""
    rng = random.Random(seed)
    start = time.time() - 2 * 86400 if start is None else start
    level = {i: rng.uniform(20.0, 80.0) for i in range(1, ANNULI + 1)}
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", linger_ms=20, max_batch_size=262144
    )
    await producer.start()
    t0 = time.monotonic()
    try:
        futures = []
        for k in range(n):
            i = k % ANNULI + 1
            second = k // ANNULI
            # A slow random walk: some annuli wander past warning and back.
            level[i] = min(max(level[i] + rng.gauss(0.0, 1.0), 0.0), 140.0)
            futures.append(
                await producer.send(
                    topics.READINGS.name,
                    value=reading(i, start + second, level[i]),
                    key=annulus_key(i),
                )
            )
            if len(futures) >= 5000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return time.monotonic() - t0


async def baseline_drain(settings: Settings, *, batches: bool = False) -> float:
    """Readings/s of a bare aiokafka consumer draining the topic (no decoding): with
    getmany (the baseline), or, ``batches``, taking whole record batches as the worker
    does (shared.infrastructure.compat.record_batches), to show what that alone is worth."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topics.READINGS.name, p) for p in range(settings.topic_partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        taker = RecordTaker(consumer, bulk=batches)
        seen = 0
        first: float | None = None
        while seen < N:
            got = await taker.take(1000, 10000)
            for records in got.values():
                if first is None and records:
                    first = time.monotonic()
                seen += len(records)
        assert first is not None
        return N / (time.monotonic() - first)
    finally:
        await consumer.stop()


def metric(base_url: str, name: str) -> float:
    try:
        body = httpx.get(f"{base_url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return -1.0
    total = 0.0
    for line in body.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def wait_metric(base_url: str, name: str, want: float, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while metric(base_url, name) < want:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} did not reach {want} in {timeout_s:.0f} s")
        time.sleep(0.2)


def start_worker(stack: Stack, profile_path: Path | None) -> Any:
    if profile_path is None:
        svc = start_service(stack, "maasp")
    else:
        from tests.support.stack import ServiceProcess

        log_path = stack.run_dir / "logs" / "maasp-profile.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cProfile",
                    "-o",
                    str(profile_path),
                    "-m",
                    "services.cli",
                    "serve",
                    "maasp",
                ],
                env=stack.env,
                cwd=PROJECT_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        port = stack.env["WIMS_MAASP_PORT"]
        svc = ServiceProcess("maasp", proc, f"http://127.0.0.1:{port}", log_path)
        stack._cleanup.append(svc.kill)
    svc.wait_ready(timeout_s=120)
    return svc


def apply_configs(stack: Stack) -> None:
    """Publish every annulus config and have a worker apply them, then stop it cleanly."""
    settings = stack.settings()
    worker = start_worker(stack, None)

    async def publish_configs() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        await producer.start()
        try:
            futures = [
                await producer.send(
                    topics.ANNULUS_CONFIG.name, value=config(i).encode(), key=annulus_key(i)
                )
                for i in range(1, ANNULI + 1)
            ]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(publish_configs())
    wait_metric(worker.base_url, 'wims_maasp_configs_total{outcome="applied"}', ANNULI, 120)
    worker.terminate(signal.SIGTERM)
    print(f"{ANNULI} annulus configs applied", flush=True)


def faust_floor(stack: Stack) -> float:
    """Readings/s of a faust agent that does nothing: faust's own per-message ceiling."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.maasp.faust_floor"],
        # 100,000 readings are plenty for a steady rate and keep the run short.
        env={**stack.env, "BENCH_MAASP_N": str(min(N, 100_000))},
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # faust redirects stdout to its log (stderr): look for the figure in both.
    for line in (out.stdout + out.stderr).splitlines():
        if "RATE " in line:
            return float(line.split("RATE ", 1)[1].split()[0])
    raise RuntimeError(f"faust floor run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def measure_worker(base_url: str) -> tuple[float, float]:
    """(readings/s from first to N-th judged reading, seconds)."""
    name = "wims_maasp_readings_total"
    deadline = time.monotonic() + 300
    first: float | None = None
    while True:
        done = metric(base_url, name)
        now = time.monotonic()
        if first is None and done > 0:
            first, first_done = now, done
        if done >= N:
            break
        if now > deadline:
            raise TimeoutError(f"the worker judged {done:.0f} of {N} readings in 300 s")
        time.sleep(0.05)
    assert first is not None
    took = now - first
    # The first sample already includes `first_done` readings judged before it was taken.
    return (N - first_done) / took if took > 0 else float("inf"), took


async def latency_phase(settings: Settings) -> list[float]:
    """Background load plus probe readings that raise or clear an alert each."""
    sent_at: dict[tuple[int, int], float] = {}
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    phase_start = time.time()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        fetch_max_wait_ms=20,
    )
    await consumer.start()
    tps = [TopicPartition(topics.ALERTS.name, p) for p in range(settings.topic_partitions)]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    stop = asyncio.Event()

    async def collect() -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=100)
            arrived = time.time()
            for records in batches.values():
                for r in records:
                    alert = orjson.loads(r.value)
                    if alert["kind"] not in ("maasp_exceeded", "maasp_cleared"):
                        continue
                    ts = round(datetime.fromisoformat(alert["ts"]).timestamp() * 1000)
                    sent = sent_at.pop((alert["annulus_id"], ts), None)
                    if sent is not None:
                        latencies.append(arrived - sent)
                        timeline.append((sent - phase_start, arrived - sent))

    async def background() -> None:
        tick = 0.05
        per_tick = int(BACKGROUND_RATE * tick)
        k = 0
        rng = random.Random(11)
        next_t = time.monotonic()
        while not stop.is_set():
            now = time.time()
            for _ in range(per_tick):
                i = PROBES + 1 + k % (ANNULI - PROBES)
                k += 1
                await producer.send(
                    topics.READINGS.name,
                    value=reading(i, now + k * 1e-6, rng.uniform(20.0, 60.0)),
                    key=annulus_key(i),
                )
            next_t += tick
            await asyncio.sleep(max(0.0, next_t - time.monotonic()))

    async def probes() -> None:
        high = dict.fromkeys(range(1, PROBES + 1), False)
        j = 0
        while not stop.is_set():
            i = j % PROBES + 1
            j += 1
            high[i] = not high[i]
            ts = round(time.time(), 3)
            sent_at[(i, round(ts * 1000))] = time.time()
            await producer.send(
                topics.READINGS.name,
                value=reading(i, ts, 1.3 * MAASP_BAR if high[i] else 0.1 * MAASP_BAR),
                key=annulus_key(i),
            )
            await asyncio.sleep(0.1)

    tasks = [asyncio.create_task(f()) for f in (collect, background, probes)]
    await asyncio.sleep(LATENCY_S)
    stop.set()
    await asyncio.sleep(1.0)  # the last alerts arrive
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await producer.stop()
    await consumer.stop()
    if os.environ.get("BENCH_MAASP_TIMELINE") == "1":
        for second in range(int(LATENCY_S)):
            window = [lat for at, lat in timeline if second <= at < second + 1]
            if window:
                print(f"  t={second:3d}s n={len(window)} max={max(window) * 1000:.0f} ms")
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    rows: list[dict[str, Any]] = []
    with local_stack() as stack:
        settings = stack.settings()
        from shared.infrastructure.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        setup_database(settings)

        apply_configs(stack)

        took = asyncio.run(produce_preload(settings))
        print(f"preloaded {N:,} readings in {took:.1f} s", flush=True)
        # The faster of two drains: on a shared machine one run can be slowed down, and the
        # higher baseline gives the lower, safer ratio.
        drains = [asyncio.run(baseline_drain(settings)) for _ in range(2)]
        base_rate = max(drains)
        print(
            f"baseline: bare aiokafka consumer drains {base_rate:,.0f} readings/s "
            f"(faster of {', '.join(f'{r:,.0f}' for r in drains)})",
            flush=True,
        )
        drains = [asyncio.run(baseline_drain(settings, batches=True)) for _ in range(2)]
        batch_rate = max(drains)
        print(
            f"bare consumer taking record batches as the worker does: {batch_rate:,.0f} "
            f"readings/s (faster of {', '.join(f'{r:,.0f}' for r in drains)})",
            flush=True,
        )

        floor_rate = faust_floor(stack)
        print(
            f"faust floor: a do-nothing faust agent takes {floor_rate:,.0f} readings/s", flush=True
        )

        profile_path = Path("/tmp/maasp-bench.prof") if PROFILE else None
        worker = start_worker(stack, profile_path)
        rate, took = measure_worker(worker.base_url)
        print(f"worker: {rate:,.0f} readings/s ({N:,} in {took:.1f} s)", flush=True)
        states = metric(worker.base_url, "wims_maasp_states_total")
        alerts = metric(worker.base_url, "wims_maasp_alerts_total")
        print(f"  emitted {states:,.0f} annulus states and {alerts:,.0f} alerts", flush=True)
        batches = metric(worker.base_url, "wims_maasp_batch_size_readings_count")
        if batches > 0:
            mean = metric(worker.base_url, "wims_maasp_batch_size_readings_sum") / batches
            print(f"  in {batches:,.0f} batches of {mean:,.0f} readings on average", flush=True)

        latencies = asyncio.run(latency_phase(settings))
        worker.terminate(signal.SIGTERM, timeout_s=60)
        if PROFILE:
            import shutil

            shutil.copy(worker.log_path, "/tmp/maasp-bench-worker.log")
        if profile_path is not None and profile_path.exists():
            import pstats

            pstats.Stats(str(profile_path)).sort_stats("tottime").print_stats(25)

    rows.append(
        {
            "name": "maasp worker throughput",
            "value": round(rate),
            "unit": "readings/s",
            "baseline": round(base_rate),
            "ratio": round(rate / base_rate, 3),
            "target": ">= 30000 readings/s and ratio >= 0.5",
        }
    )
    rows.append(
        {
            "name": "maasp worker vs a bare consumer taking record batches",
            "value": round(rate),
            "unit": "readings/s",
            "baseline": round(batch_rate),
            "ratio": round(rate / batch_rate, 3),
            "target": "",
        }
    )
    rows.append(
        {
            "name": "maasp worker vs a do-nothing faust agent",
            "value": round(rate),
            "unit": "readings/s",
            "baseline": round(floor_rate),
            "ratio": round(rate / floor_rate, 3),
            "target": "",
        }
    )
    if latencies:
        p50 = percentile(latencies, 0.5) * 1000
        p99 = percentile(latencies, 0.99) * 1000
        print(
            f"latency reading -> alert at {BACKGROUND_RATE:,.0f} readings/s: "
            f"p50 {p50:.0f} ms, p99 {p99:.0f} ms over {len(latencies)} alerts",
            flush=True,
        )
        rows.append(
            {
                "name": "maasp reading->alert latency p50",
                "value": round(p50, 1),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "",
            }
        )
        rows.append(
            {
                "name": "maasp reading->alert latency p99",
                "value": round(p99, 1),
                "unit": "ms",
                "baseline": None,
                "ratio": None,
                "target": "< 250 ms",
            }
        )
    else:
        print("latency: no probe alert arrived", flush=True)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

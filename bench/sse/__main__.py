"""``python -m bench.sse``: 500 live alert streams (SSE) on one API process.

Starts its own Kafka and PostgreSQL (tests/support/stack.py), creates
``BENCH_SSE_USERS`` viewers (default 50, so 500 streams stay within the default
WIMS_SSE_MAX_STREAMS_PER_USER of 10), starts the API as a process (``wims serve api``,
default settings) and measures, in the same run:

1. the baseline: a bare aiokafka consumer (group-less, from the end, in this process)
   receiving ``BENCH_SSE_ALERTS`` alerts (default 200) produced at ``BENCH_SSE_RATE``/s
   (default 20): produce -> received latency;
2. one stream: the same alerts through the API, produce -> received at the client; the API
   process's CPU meanwhile;
3. ``BENCH_SSE_STREAMS`` streams (default 500): the API's RSS and CPU with them open and
   idle (heartbeats, access re-checks), then the same alerts, produce -> received at every
   client (p50/p99 over all deliveries), CPU meanwhile, and whether every client got every
   alert; the process's Kafka consumer count (``wims_api_sse_kafka_consumers``).

The clients are raw asyncio HTTP/1.1 connections (no httpx per stream, so the load
generator costs little) in this process; they share the two cores with the API, Kafka and
PostgreSQL. RSS and CPU are read from /proc/<pid> of the API process. Ends with one JSON
line of figures.
"""

import asyncio
import contextlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import AlertKind, Severity
from shared.infrastructure.auth import create_access_token, hash_password
from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import ServiceProcess, local_stack, start_service

STREAMS = int(os.environ.get("BENCH_SSE_STREAMS", "500"))
USERS = int(os.environ.get("BENCH_SSE_USERS", "50"))
ALERTS = int(os.environ.get("BENCH_SSE_ALERTS", "200"))
RATE = float(os.environ.get("BENCH_SSE_RATE", "20"))
IDLE_S = float(os.environ.get("BENCH_SSE_IDLE_S", "10"))
TARGET_P99_MS = 250.0
TARGET_RSS_MB = 300.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


# --- the API process, from /proc -------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_s(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


class CpuMeter:
    """CPU of a process over a span, as % of one core."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.cpu0 = cpu_s(pid)
        self.t0 = time.monotonic()

    def percent(self) -> float:
        return 100 * (cpu_s(self.pid) - self.cpu0) / (time.monotonic() - self.t0)


def api_pid(svc: ServiceProcess) -> int:
    """The process serving HTTP (``wims serve api`` may exec uvicorn in the same process)."""
    return svc.proc.pid


# --- set-up ----------------------------------------------------------------------------------


def seed_users(settings: Settings) -> list[str]:
    from shared.persistence.migrate import upgrade

    upgrade(settings)
    hashed = hash_password("bench-pass")
    with psycopg.connect(settings.libpq_url, autocommit=True) as conn:
        conn.execute("TRUNCATE app_user RESTART IDENTITY CASCADE")
        ids = [
            conn.execute(
                "INSERT INTO app_user (email, full_name, password_hash, role, is_active) "
                "VALUES (%s, %s, %s, 'viewer', true) RETURNING id",
                (f"sse-{i}@wims.test", f"sse {i}", hashed),
            ).fetchone()[0]
            for i in range(USERS)
        ]
    return [create_access_token(i, "viewer", settings.jwt_secret, timedelta(hours=2)) for i in ids]


def bench_alert(seq: int) -> ev.Alert:
    return ev.Alert(
        kind=AlertKind.maasp_warning,
        severity=Severity.warning,
        well_id=1 + seq % 40,
        annulus_id=1 + seq % 80,
        ts=datetime.now(UTC),
        message=f"bench {seq}",
        pressure_bar=170.0,
        maasp_bar=200.0,
        utilisation=0.85,
    )


def seq_of(data: bytes) -> int | None:
    message = orjson.loads(data).get("message", "")
    return int(message[6:]) if message.startswith("bench ") else None


# --- clients ---------------------------------------------------------------------------------


class StreamClient:
    """One SSE stream over a raw HTTP/1.1 connection. Each event is one chunk of the chunked
    body (the API yields one SSE message per chunk), so a ``data:`` line is never split by
    the chunk framing and can be found in the byte stream directly."""

    def __init__(self, host: str, port: int, token: str, received: dict[int, float]) -> None:
        self.host, self.port, self.token = host, port, token
        self.received = received  # seq -> arrival time (loop clock), of this client
        self.connected = asyncio.Event()
        self.complete = asyncio.Event()  # every alert of a phase arrived
        self.closed_reason: str | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def run(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        writer.write(
            (
                f"GET /api/v1/alerts/stream HTTP/1.1\r\nHost: {self.host}\r\n"
                f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " not in head.split(b"\r\n", 1)[0]:
            body = await reader.read(2000)
            raise RuntimeError(f"stream refused: {head!r} {body!r}")
        loop = asyncio.get_running_loop()
        buffer = b""
        while chunk := await reader.read(65536):
            now = loop.time()
            buffer += chunk
            if not self.connected.is_set() and b": connected" in buffer:
                self.connected.set()
            start = 0
            while (i := buffer.find(b"\ndata: ", start)) != -1:
                end = buffer.find(b"\n", i + 7)
                if end == -1:
                    break
                line = buffer[i + 7 : end]
                if b'"stream-closed"' in buffer[start:i] or b'"code"' in line:
                    self.closed_reason = line.decode()
                elif (seq := seq_of(line)) is not None:
                    self.received[seq] = now
                    if len(self.received) >= ALERTS:
                        self.complete.set()
                start = end
            buffer = buffer[start:]

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


async def produce_alerts(producer: AIOKafkaProducer) -> dict[int, float]:
    """``ALERTS`` alerts at ``RATE``/s; returns seq -> time just before each was sent."""
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = {}
    t0 = loop.time() + 0.1
    for seq in range(ALERTS):
        await asyncio.sleep(max(0.0, t0 + seq / RATE - loop.time()))
        a = bench_alert(seq)
        sent[seq] = loop.time()
        await producer.send(topics.ALERTS.name, a.encode(), key=str(a.well_id).encode())
    return sent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def latencies_ms(sent: dict[int, float], received: list[dict[int, float]]) -> list[float]:
    return [(got[s] - t) * 1000 for got in received for s, t in sent.items() if s in got]


async def wait_complete(clients: list["StreamClient"], timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(c.complete.wait() for c in clients)), timeout_s)


async def measure(settings: Settings, api: ServiceProcess, tokens: list[str]) -> dict[str, Any]:
    pid = api_pid(api)
    host, port = "127.0.0.1", settings.api_port
    out: dict[str, Any] = {"rss_idle_mb": rss_mb(pid)}
    idle = CpuMeter(pid)
    await asyncio.sleep(IDLE_S / 2)
    out["cpu_idle_pct"] = idle.percent()
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, linger_ms=0)
    await producer.start()
    try:
        # 1. baseline: a bare consumer.
        consumer = AIOKafkaConsumer(
            topics.ALERTS.name, bootstrap_servers=settings.kafka_bootstrap, group_id=None
        )
        await consumer.start()
        await consumer.seek_to_end()
        bare: dict[int, float] = {}

        async def drain() -> None:
            loop = asyncio.get_running_loop()
            while len(bare) < ALERTS:
                batch = await consumer.getmany(timeout_ms=100)
                now = loop.time()
                for messages in batch.values():
                    for m in messages:
                        if (seq := seq_of(m.value)) is not None:
                            bare[seq] = now

        drainer = asyncio.create_task(drain())
        await asyncio.sleep(0.5)
        sent = await produce_alerts(producer)
        await asyncio.wait_for(drainer, 30)
        await consumer.stop()
        out["bare"] = latencies_ms(sent, [bare])
        print(f"bare consumer: {len(bare)}/{ALERTS} alerts", flush=True)

        # 2. one stream.
        one: dict[int, float] = {}
        client = StreamClient(host, port, tokens[0], one)
        task = asyncio.create_task(client.run())
        await asyncio.wait_for(client.connected.wait(), 30)
        meter = CpuMeter(pid)
        sent = await produce_alerts(producer)
        await wait_complete([client], 30)
        out["cpu_one_pct"] = meter.percent()
        client.close()
        task.cancel()
        out["one"] = latencies_ms(sent, [one])
        print(f"one stream: {len(one)}/{ALERTS} alerts", flush=True)
        await asyncio.sleep(1)

        # 3. STREAMS streams.
        received: list[dict[int, float]] = [{} for _ in range(STREAMS)]
        clients = [
            StreamClient(host, port, tokens[i % len(tokens)], received[i]) for i in range(STREAMS)
        ]
        t0 = time.monotonic()
        tasks = [asyncio.create_task(c.run()) for c in clients]
        try:
            await asyncio.wait_for(asyncio.gather(*(c.connected.wait() for c in clients)), 180)
        except TimeoutError:
            failed = [t.exception() for t in tasks if t.done() and t.exception() is not None]
            raise RuntimeError(f"streams did not open: {failed[:3]}") from None
        out["open_s"] = time.monotonic() - t0
        async with httpx.AsyncClient(base_url=f"http://{host}:{port}") as http:
            metrics = (await http.get("/metrics")).text
        out["consumers"] = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("wims_api_sse_kafka_consumers ")
        )
        out["clients_metric"] = next(
            float(line.split()[1])
            for line in metrics.splitlines()
            if line.startswith("wims_api_sse_clients ")
        )
        print(
            f"{STREAMS} streams open in {out['open_s']:.1f} s; the API reports "
            f"{out['clients_metric']:.0f} streams, {out['consumers']:.0f} Kafka consumer(s)",
            flush=True,
        )
        meter = CpuMeter(pid)
        await asyncio.sleep(IDLE_S)
        out["cpu_many_idle_pct"] = meter.percent()
        out["rss_many_mb"] = rss_mb(pid)
        meter = CpuMeter(pid)
        sent = await produce_alerts(producer)
        await wait_complete(clients, 60)
        out["cpu_many_pct"] = meter.percent()
        out["rss_many_after_mb"] = rss_mb(pid)
        out["many"] = latencies_ms(sent, received)
        out["delivered"] = sum(len(r) for r in received) / (STREAMS * ALERTS)
        out["closed"] = sum(1 for c in clients if c.closed_reason)
        for c in clients:
            c.close()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await producer.stop()
    return out


def main() -> None:
    with local_stack() as stack:
        settings = stack.settings()
        from shared.infrastructure.kafka import ensure_topics

        asyncio.run(ensure_topics(settings))
        tokens = seed_users(settings)
        api = start_service(stack, "api", {"WIMS_LOG_LEVEL": "WARNING"})
        api.wait_ready(timeout_s=90)
        r = asyncio.run(measure(settings, api, tokens))
        api.terminate()

    bare, one, many = r["bare"], r["one"], r["many"]
    p = {
        name: (percentile(v, 0.5), percentile(v, 0.99))
        for name, v in (("bare", bare), ("one", one), ("many", many))
    }
    print()
    print(f"{'':34}{'p50 ms':>9}{'p99 ms':>9}  API CPU % (one core)  API RSS MB")
    print(
        f"{'bare aiokafka consumer':34}{p['bare'][0]:9.1f}{p['bare'][1]:9.1f}"
        f"  {'-':>20}  {r['rss_idle_mb']:9.0f} (idle, no stream; CPU {r['cpu_idle_pct']:.1f} %)"
    )
    print(f"{'1 stream':34}{p['one'][0]:9.1f}{p['one'][1]:9.1f}  {r['cpu_one_pct']:20.1f}  {'':>9}")
    print(
        f"{f'{STREAMS} streams, idle':34}{'':9}{'':9}  {r['cpu_many_idle_pct']:20.1f}"
        f"  {r['rss_many_mb']:9.0f}"
    )
    print(
        f"{f'{STREAMS} streams, {RATE:.0f} alerts/s':34}{p['many'][0]:9.1f}{p['many'][1]:9.1f}"
        f"  {r['cpu_many_pct']:20.1f}  {r['rss_many_after_mb']:9.0f}"
    )
    print(
        f"delivered {r['delivered']:.4f} of {STREAMS} x {ALERTS}; streams closed by the server: "
        f"{r['closed']}; Kafka consumers in the API: {r['consumers']:.0f}"
    )

    def row(name: str, value: float, unit: str, baseline: float | None, target: Any) -> dict:
        return {
            "name": name,
            "value": round(value, 2),
            "unit": unit,
            "baseline": round(baseline, 2) if baseline is not None else None,
            "ratio": round(value / baseline, 2) if baseline else None,
            "target": target,
        }

    rows = [
        row(f"sse_{STREAMS}_p99", p["many"][1], "ms", p["one"][1], f"< {TARGET_P99_MS:.0f}"),
        row(f"sse_{STREAMS}_p50", p["many"][0], "ms", p["one"][0], None),
        row("sse_1_p99", p["one"][1], "ms", p["bare"][1], None),
        row("sse_1_p50", p["one"][0], "ms", p["bare"][0], None),
        row(
            f"sse_{STREAMS}_rss", r["rss_many_mb"], "MB", r["rss_idle_mb"], f"< {TARGET_RSS_MB:.0f}"
        ),
        row(f"sse_{STREAMS}_cpu_idle", r["cpu_many_idle_pct"], "%core", r["cpu_idle_pct"], None),
        row(
            f"sse_{STREAMS}_cpu_at_{RATE:.0f}_alerts_s",
            r["cpu_many_pct"],
            "%core",
            r["cpu_one_pct"],
            None,
        ),
        row(f"sse_{STREAMS}_delivered", r["delivered"], "fraction", 1.0, 1.0),
        row(f"sse_{STREAMS}_kafka_consumers", r["consumers"], "", 1.0, 1),
    ]
    print(json.dumps(rows))


if __name__ == "__main__":
    os.chdir(PROJECT_ROOT)
    main()

"""``python -m bench.ingest_latency``: how long ingest's /healthz waits while big and
hostile requests are being parsed and validated.

One ingest process (sink on, as deployed) receives at the same time:

- a JSON array of 100,000 valid readings (8 MB);
- a CSV whose header has 20,000 columns (129 KB; refused with 400);
- a CSV whose 4 MB have no newline (a huge single line; refused with 400);
- a CSV of 30,000 rows that are all bad (422, every row reported or counted);
- an NDJSON body of 50,000 readings of which every other one is bad.

Meanwhile a probe process (bench/ingest_latency/probe.py) asks /healthz every 10 ms, one
request at a time, and records each answer's latency. Printed: the worst and the p99 /healthz latency over that window, how
long the window lasted, and what each hostile request was answered. Target: worst <
100 ms (issue 17); the integration test tests/integration/test_ingest_hostile.py holds a
looser bound so it is not flaky on a loaded machine.

Environment: WIMS_TEST_PORT_OFFSET (ports, as for the tests).
"""

import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from shared.infrastructure.settings import PROJECT_ROOT, Settings
from tests.support.stack import Stack, local_stack, start_service

JSON_RECORDS = 100_000
HEADER_COLUMNS = 20_000
HUGE_LINE_BYTES = 4 * 1024 * 1024
BAD_CSV_ROWS = 30_000
NDJSON_RECORDS = 50_000


def _stamp(ts: datetime) -> str:
    return ts.isoformat().replace("+00:00", "Z")


def hostile_requests(annuli: list[int]) -> dict[str, tuple[str, str, bytes]]:
    """name -> (path, content type, body) of each request of the workload."""
    start = datetime.now(UTC) - timedelta(days=5)
    n = len(annuli)
    big = [
        {
            "annulus_id": annuli[i % n],
            "timestamp": _stamp(start + timedelta(seconds=i // n)),
            "pressure": 20.0 + i % 97 / 10,
        }
        for i in range(JSON_RECORDS)
    ]
    header = ",".join(
        ["annulus_id", "timestamp", "pressure"] + [f"c{i}" for i in range(HEADER_COLUMNS)]
    )
    wide = (header + "\n" + f"{annuli[0]},{_stamp(start)},1.0\n").encode()
    huge_line = b"annulus_id,timestamp,pressure\n" + b"1," * (HUGE_LINE_BYTES // 2)
    bad_rows = "".join(f"{annuli[0]},not-a-time-{i},x\n" for i in range(BAD_CSV_ROWS))
    bad_csv = ("annulus_id,timestamp,pressure\n" + bad_rows).encode()
    later = start + timedelta(days=1)
    ndjson = b"\n".join(
        orjson.dumps(
            {
                "annulus_id": annuli[i % n],
                "timestamp": _stamp(later + timedelta(seconds=i // n)),
                "pressure": 30.0 if i % 2 else "bad value",
            }
        )
        for i in range(NDJSON_RECORDS)
    )
    return {
        "json 100k": ("/ingest/v1/readings", "application/json", orjson.dumps(big)),
        "csv 20k columns": ("/ingest/v1/readings/csv", "text/csv", wide),
        "csv huge line": ("/ingest/v1/readings/csv", "text/csv", huge_line),
        "csv 30k bad rows": ("/ingest/v1/readings/csv", "text/csv", bad_csv),
        "ndjson half bad": ("/ingest/v1/readings", "application/x-ndjson", ndjson),
    }


async def measure(
    base_url: str, key: str, requests: dict[str, tuple[str, str, bytes]]
) -> dict[str, Any]:
    """Send every request at once; a probe process polls /healthz until all are answered."""
    probe = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.ingest_latency.probe",
        f"{base_url}/healthz",
        cwd=PROJECT_ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert probe.stdout is not None and probe.stdin is not None
    ready = await asyncio.wait_for(probe.stdout.readline(), 60)
    assert ready.strip() == b"ready", ready
    async with httpx.AsyncClient(base_url=base_url, timeout=300) as client:

        async def push(path: str, content_type: str, body: bytes) -> httpx.Response:
            headers = {"X-API-Key": key, "Content-Type": content_type}
            return await client.post(path, content=body, headers=headers)

        t0 = time.perf_counter()
        answers = dict(
            zip(
                requests,
                await asyncio.gather(*(push(*request) for request in requests.values())),
                strict=True,
            )
        )
        window = time.perf_counter() - t0
    probe.stdin.close()
    out, _ = await asyncio.wait_for(probe.communicate(), 60)
    assert probe.returncode == 0, out
    ordered = sorted(json.loads(out))
    return {
        "worst": ordered[-1],
        "p99": ordered[int(0.99 * (len(ordered) - 1))],
        "probes": len(ordered),
        "window": window,
        "answers": answers,
    }


def setup(settings: Settings) -> tuple[list[int], str]:
    from shared.infrastructure.db import make_engine
    from shared.persistence.migrate import upgrade
    from tests.support.factories import make_annulus, make_api_key, make_well

    upgrade(settings)
    engine = make_engine(settings)
    well_id = make_well(engine, name="LATENCY-1")
    annuli = [make_annulus(engine, well_id, name=n) for n in "ABCD"]
    key = make_api_key(engine, source="latency-bench")
    engine.dispose()
    return annuli, key


def summary(name: str, response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{name}: {response.status_code}"
    detail = body.get("detail") or (
        f"accepted {body.get('accepted')}, rejected "
        f"{body.get('rejected_count', len(body.get('rejected', [])))}"
    )
    return f"{name}: {response.status_code} {str(detail)[:120]}"


def run(stack: Stack) -> int:
    settings = stack.settings()
    from shared.infrastructure.kafka import ensure_topics

    asyncio.run(ensure_topics(settings))
    annuli, key = setup(settings)
    requests = hostile_requests(annuli)
    svc = start_service(stack, "ingest")
    svc.wait_ready()
    result = asyncio.run(measure(svc.base_url, key, requests))
    svc.terminate()
    for name, response in result["answers"].items():
        print("  " + summary(name, response), flush=True)
    print(
        f"/healthz during the hostile requests: worst {result['worst'] * 1000:.1f} ms, "
        f"p99 {result['p99'] * 1000:.1f} ms over {result['probes']} probes in "
        f"{result['window']:.1f} s",
        flush=True,
    )
    figures = [
        {
            "name": "ingest /healthz worst latency under hostile load",
            "value": round(result["worst"] * 1000, 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "< 100 ms",
        },
        {
            "name": "ingest /healthz p99 latency under hostile load",
            "value": round(result["p99"] * 1000, 1),
            "unit": "ms",
            "baseline": None,
            "ratio": None,
            "target": "",
        },
    ]
    print(json.dumps(figures))
    return 0


def main() -> int:
    with local_stack() as stack:
        return run(stack)


if __name__ == "__main__":
    sys.exit(main())

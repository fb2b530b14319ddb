"""What the end-to-end tests share: waiting for an outcome, building a well through the API,
reading the live alert stream, and the wire format of a push."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson


async def poll(fn, what: str, within_s: float = 30.0, interval: float = 0.1) -> Any:
    """Wait for fn() to return something truthy; fail with `what` after ``within_s``."""
    deadline = time.monotonic() + within_s
    last: Any = None
    while time.monotonic() < deadline:
        last = await fn()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out after {within_s} s waiting for {what}; last: {last!r}")


class SseListener:
    """Collects alerts from /alerts/stream in the background, like the operations centre."""

    def __init__(self, url: str, headers: dict[str, str], well_id: int) -> None:
        self.url, self.headers, self.well_id = url, headers, well_id
        self.events: list[tuple[float, str, dict]] = []
        self.connected = asyncio.Event()
        self._task: asyncio.Task | None = None

    async def _run(self) -> None:
        async with httpx.AsyncClient(timeout=None) as client:
            params = {"well_id": self.well_id}
            async with client.stream("GET", self.url, headers=self.headers, params=params) as r:
                assert r.status_code == 200
                self.connected.set()
                kind, data = None, None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        kind = line.removeprefix("event:").strip()
                    elif line.startswith("data:"):
                        data = orjson.loads(line.removeprefix("data:").strip())
                    elif line == "" and data is not None:
                        self.events.append((time.monotonic(), kind or "", data))
                        kind, data = None, None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()

    def kinds(self) -> list[str]:
        return [k for _, k, _ in self.events]

    async def wait_for(self, kind: str, within_s: float) -> tuple[float, dict]:
        async def find():
            for t, k, d in self.events:
                if k == kind:
                    return (t, d)
            return None

        return await poll(find, f"a {kind} alert on the SSE stream", within_s)


async def build_well(
    client: httpx.AsyncClient, tag: str, name: str | None = None
) -> dict[str, int]:
    """A well with casing, tubing, cement, an A annulus (MAASP 100 bar) and two envelopes."""

    async def post(path: str, body: dict) -> dict:
        r = await client.post(path, json=body)
        assert r.status_code == 201, f"POST {path}: {r.status_code} {r.text}"
        return r.json()

    name = name or f"E2E-{uuid.uuid4().hex[:8]}"
    well = await post(
        "/wells",
        {
            "name": name,
            "field": "E2E",
            "type": "gas_producer",
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
            "burst_limit_bar": 548,
        },
    )
    await post(
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
            "packer_depth_md": 2650,
        },
    )
    await post(
        f"/wells/{wid}/cement-intervals",
        {"casing_id": prod["id"], "top_md": 2000, "bottom_md": 2900, "verified_by": "CBL"},
    )
    annulus = await post(
        f"/wells/{wid}/annuli",
        {
            "name": "A",
            "inner_tubing_string_id": tubing["id"],
            "outer_casing_string_id": prod["id"],
            "fluid_gradient_bar_per_m": 0.1,
        },
    )
    aid = annulus["id"]
    # 0.9 x 2000/9 - 0.1 x 1000 = 100 bar governs over the wellhead (0.9 x 345 = 310.5 bar)
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
    await post(
        f"/annuli/{aid}/critical-points",
        {
            "label": "tubing collapse at 1000 m",
            "point_type": "inner_string_collapse",
            "depth_md": 1050,
            "tvd_m": 1000,
            "pressure_limit_bar": 2000 / 9,
        },
    )
    primary = await post(f"/wells/{wid}/barrier-envelopes", {"type": "primary", "name": "primary"})
    secondary = await post(
        f"/wells/{wid}/barrier-envelopes", {"type": "secondary", "name": "secondary"}
    )
    now = datetime.now(UTC).isoformat()
    ids = {"well": wid, "annulus": aid}
    for env, elements in (
        (primary, ["sssv", "tubing", "packer"]),
        (secondary, ["casing", "wellhead", "tree_valve"]),
    ):
        for element_type in elements:
            e = await post(
                f"/barrier-envelopes/{env['id']}/barrier-elements",
                {
                    "name": element_type.upper(),
                    "element_type": element_type,
                    "status": "ok",
                    "last_tested_at": now,
                },
            )
            ids[element_type] = e["id"]
    await post("/scada-tags", {"tag": tag, "annulus_id": aid})
    return ids


def readings(tag: str, pressures: list[float], start: datetime, step_s: float = 1.0) -> list[dict]:
    return [
        {
            "tag": tag,
            "timestamp": (start + timedelta(seconds=i * step_s)).isoformat(),
            "pressure": p,
            "temperature": 40.0,
        }
        for i, p in enumerate(pressures)
    ]

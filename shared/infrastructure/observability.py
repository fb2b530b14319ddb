"""Health, readiness and metrics endpoints, the same for every service, and the metrics
every service process exports the same way.

``/healthz``: the process is alive. ``/readyz``: Kafka and the database both answer now.
``/metrics``: Prometheus text format from the default registry.

Event-loop lag (``wims_event_loop_lag_seconds``) is what explains a latency tail that the
request's own work does not: a request that is ready to run but waits behind something
else on the loop (a long synchronous step, a garbage collection, a burst of other tasks).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

Probe = Callable[[], Awaitable[bool]]

SERVICE_READY = Gauge(
    "wims_service_ready",
    "1 when the service's Kafka and database answered at this scrape (as /readyz), else 0",
)


EVENT_LOOP_LAG = Histogram(
    "wims_event_loop_lag_seconds",
    "How late the event loop woke a periodic probe task: the time a ready request waits for "
    "the loop (sampled every 100 ms)",
    buckets=(0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)


EVENT_LOOP_LAG_INTERVAL_S = 0.1


async def sample_event_loop_lag(interval_s: float = EVENT_LOOP_LAG_INTERVAL_S) -> None:
    """Runs until cancelled: sleeps ``interval_s`` and records how much later than that the
    loop woke it. Costs one wake-up per interval."""
    loop = asyncio.get_running_loop()
    while True:
        start = loop.time()
        await asyncio.sleep(interval_s)
        EVENT_LOOP_LAG.observe(max(0.0, loop.time() - start - interval_s))


class RequestTiming:
    """The request-timing ASGI layer of every WIMS HTTP service: times each request (and,
    given ``requests``, counts it by method and status class) by route template, never by
    raw path, so ids stay out of the labels. Routes whose template ends with one of
    ``untimed_suffixes`` are counted but not timed (a stream lasts as long as its client)."""

    def __init__(
        self,
        app: Any,
        *,
        seconds: Histogram,
        requests: Counter | None = None,
        untimed_suffixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.requests = requests
        self.untimed_suffixes = untimed_suffixes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        send_wrapper = send
        if self.requests is not None:

            async def send_wrapper(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            if self.requests is not None:
                self.requests.labels(scope["method"], route, f"{status // 100}xx").inc()
            if not route.endswith(self.untimed_suffixes):
                self.seconds.labels(route).observe(time.perf_counter() - start)


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


async def readiness(probes: dict[str, Probe]) -> tuple[bool, dict[str, Any]]:
    checks = {name: await probe() for name, probe in probes.items()}
    ok = all(checks.values())
    return ok, {"status": "ready" if ok else "not ready", "checks": checks}


async def metrics_payload(probes: Callable[[], dict[str, Probe]]) -> tuple[bytes, str]:
    # Readiness is measured at each scrape, so an alert rule can see a service that is up
    # but cannot reach Kafka or the database.
    try:
        ok, _ = await readiness(probes())
    except Exception:  # the probes do not exist before start-up has made them
        ok = False
    SERVICE_READY.set(1 if ok else 0)
    return generate_latest(), CONTENT_TYPE_LATEST


def fastapi_health_router(probes: Callable[[], dict[str, Probe]]) -> Any:
    """Health routes for a FastAPI service; ``probes`` is called per request so the lifespan
    can create them after start-up."""
    from fastapi import APIRouter, Response
    from fastapi.responses import JSONResponse

    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @router.get(
        "/readyz",
        summary="Kafka and the database are reachable",
        responses={503: {"description": "a dependency is not reachable"}},
    )
    async def readyz() -> Response:
        ok, body = await readiness(probes())
        return JSONResponse(body, status_code=200 if ok else 503)

    @router.get("/metrics", summary="Prometheus metrics", response_class=Response)
    async def metrics() -> Response:
        payload, content_type = await metrics_payload(probes)
        return Response(payload, media_type=content_type)

    return router


def add_faust_health_pages(app: Any, probes: Callable[[], dict[str, Probe]]) -> None:
    """The same three endpoints on a faust worker's web server."""
    import orjson

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        ok, body = await readiness(probes())
        return self.bytes(
            orjson.dumps(body), content_type="application/json", status=200 if ok else 503
        )

    @app.page("/metrics")
    async def metrics(self: Any, request: Any) -> Any:
        payload, content_type = await metrics_payload(probes)
        return self.bytes(payload, content_type=content_type.split(";")[0])

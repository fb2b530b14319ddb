"""Health, readiness and metrics endpoints, the same for every service.

``/healthz``: the process is alive. ``/readyz``: Kafka and the database both answer now.
``/metrics``: Prometheus text format from the default registry.
"""

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest

Probe = Callable[[], Awaitable[bool]]

SERVICE_READY = Gauge(
    "wims_service_ready",
    "1 when the service's Kafka and database answered at this scrape (as /readyz), else 0",
)


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

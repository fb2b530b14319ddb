"""The common shape of a WIMS HTTP service (FastAPI): probes created in the lifespan."""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from shared.db import database_ready, make_async_engine, make_sessionmaker
from shared.kafka import KafkaProbe
from shared.observability import fastapi_health_router
from shared.settings import Settings


def make_http_app(
    title: str,
    settings: Settings,
    *,
    startup: Callable[[FastAPI], Any] | None = None,
    shutdown: Callable[[FastAPI], Any] | None = None,
    **fastapi_kw: Any,
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.engine = make_async_engine(settings, pool_size=10)
        app.state.sessionmaker = make_sessionmaker(app.state.engine)
        app.state.kafka_probe = KafkaProbe(settings.kafka_bootstrap)
        if startup is not None:
            await startup(app)
        try:
            yield
        finally:
            if shutdown is not None:
                await shutdown(app)
            await app.state.kafka_probe.close()
            await app.state.engine.dispose()

    app = FastAPI(title=title, lifespan=lifespan, **fastapi_kw)

    def probes() -> dict[str, Any]:
        return {
            "kafka": app.state.kafka_probe.ready,
            "database": lambda: database_ready(app.state.engine),
        }

    app.include_router(fastapi_health_router(probes))
    return app

"""The api HTTP service (FastAPI): reference data, queries, alerts, under ``/api/v1``.

Besides the HTTP routes the process runs background tasks, started in the lifespan and
never awaited by a request, so reads keep working while Kafka is away:

- the outbox relay (services/api/publisher.py), publishing config and barrier events;
- the alert history consumer (services/api/pump.py), filling the alert table;
- the live-alert fan-out for the SSE streams (services/api/pump.py, its mailboxes in
  services/api/alert_feed.py), and the export of the alert history group's consumer lag
  (wims_consumer_lag_records);
- the fleet's change listener (services/api/fleet.py).

The request handlers are in services/api/processing/, the SQL in services/api/store.py, the
pure parts in services/api/core.py.
"""

import asyncio
import contextlib
import gc
import logging
from pathlib import Path

import orjson
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from services.api.deps import UserCache
from services.api.errors import install_error_handlers
from services.api.fleet import FleetWells
from services.api.guard import BodyGuard
from services.api.metrics import REQUEST_SECONDS, REQUESTS
from services.api.processing import admin, alerts, auth, derivation, queries, resources
from services.api.publisher import OutboxRelay
from services.api.pump import HISTORY_GROUP, AlertFanout, AlertHistoryConsumer
from services.api.ratelimit import LoginThrottle
from shared.infrastructure.db import make_async_engine, make_sessionmaker, open_pool
from shared.infrastructure.gc_tuning import freeze_startup_heap
from shared.infrastructure.http_app import make_http_app
from shared.infrastructure.kafka import export_lag_periodically
from shared.infrastructure.observability import RequestTiming
from shared.infrastructure.settings import Settings, get_settings

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
# The operations-centre console: static files, no build step (README, "Console").
CONSOLE_DIR = Path(__file__).parent / "console"

DESCRIPTION = """Well Integrity Management System API.

Roles: **viewer** reads everything except users and API keys; **engineer** also creates and
edits wells, strings, cement, annuli, critical points, SCADA tags, barriers, tests and
tasks and acknowledges alerts; **admin** does everything, including users, API keys, the
risk matrix and deletions. No token: 401; too low a role: 403.

Errors share one body: `{"detail": "...", "errors": [{"field", "reason", "code"}]}`.
Lists take `limit` (default 100, at most 500) and `offset`, and answer the total in the
`X-Total-Count` header. Units: metres, bar, inches, UTC timestamps.
"""


# As many connections as the read pool could reach before (10 + 10 overflow), but all kept:
# an overflow connection is closed when it is returned, so every burst above the pool size
# opened new ones (a connect and a cold PostgreSQL backend each, mid-request), which made
# the burst slower and so the next one bigger. Past 20 reads at once, a request waits for a
# connection, which a short read returns within milliseconds.
READ_POOL_SIZE = 20


async def _startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    app.state.read_engine = make_async_engine(
        settings,
        pool_label="read",
        pool_size=READ_POOL_SIZE,
        max_overflow=0,
        isolation_level="AUTOCOMMIT",
        pool_pre_ping=False,
        # Autocommit: a connection comes back with no transaction to end, so the pool's
        # rollback on return is a round of greenlet switches for nothing on every read.
        pool_reset_on_return=None,
        # First in, first out (SQLAlchemy's default), though the most recently used connection
        # first kept PostgreSQL's backends warm (some 15% less database CPU per /state read,
        # measured): then every /fleet read (~480 KB of packed columns) went over the one same
        # TCP connection, and 3% of them stalled ~80 ms in the kernel (measured with psycopg
        # alone: none over a Unix socket, none when the reads rotate over the pool).
        # The hot reads build their answers as JSON in PostgreSQL; orjson parses it in a
        # fraction of the standard library's time.
        json_deserializer=orjson.loads,
    )
    await open_pool(app.state.read_engine, READ_POOL_SIZE)
    app.state.user_cache = UserCache(settings.api_user_cache_s)
    app.state.read_sessionmaker = make_sessionmaker(app.state.read_engine)
    app.state.login_throttle = LoginThrottle(
        settings.login_max_failures_per_account,
        settings.login_max_failures_per_address,
        settings.login_window_s,
    )
    app.state.fleet_wells = FleetWells(settings.libpq_url, settings.api_fleet_rows_max_age_s)
    app.state.relay = OutboxRelay(settings, app.state.engine)
    history = AlertHistoryConsumer(settings, app.state.sessionmaker)
    app.state.alert_fanout = AlertFanout(settings)  # the one live-alert consumer (SSE)
    app.state.background = [
        asyncio.create_task(app.state.relay.run(), name="outbox-relay"),
        asyncio.create_task(history.run(), name="alert-history"),
        asyncio.create_task(app.state.alert_fanout.run(), name="alert-fanout"),
        asyncio.create_task(app.state.fleet_wells.keep_listening(), name="fleet-listener"),
        asyncio.create_task(
            export_lag_periodically(
                settings.kafka_bootstrap, [HISTORY_GROUP], settings.consumer_lag_interval_s
            ),
            name="alert-history-lag",
        ),
    ]
    # Everything alive now (modules, routes, schemas, engines) lives as long as the process.
    freeze_startup_heap()


async def _shutdown(app: FastAPI) -> None:
    gc.unfreeze()  # what this app leaves behind is garbage again (tests run several apps)
    tasks = getattr(app.state, "background", [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)
    await app.state.relay.close()
    await app.state.fleet_wells.close()
    await app.state.read_engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = make_http_app(
        "WIMS api",
        settings,
        startup=_startup,
        shutdown=_shutdown,
        version="1.0.0",
        description=DESCRIPTION,
    )
    install_error_handlers(app)
    app.include_router(auth.router, prefix=API_PREFIX)
    app.include_router(queries.router, prefix=API_PREFIX)
    app.include_router(alerts.router, prefix=API_PREFIX)
    app.include_router(admin.router, prefix=API_PREFIX)
    app.include_router(resources.build_router(), prefix=API_PREFIX)
    app.include_router(derivation.router, prefix=API_PREFIX)
    app.mount("/console", StaticFiles(directory=CONSOLE_DIR), name="console")
    app.add_api_route(
        "/", lambda: FileResponse(CONSOLE_DIR / "index.html"), include_in_schema=False
    )
    # Outside the metrics layer: a refused body is answered before any route is matched.
    app.add_middleware(
        RequestTiming,
        seconds=REQUEST_SECONDS,
        requests=REQUESTS,
        untimed_suffixes=("/stream",),  # a live stream lasts as long as its client
    )
    app.add_middleware(
        BodyGuard, settings=settings, public_paths=frozenset({f"{API_PREFIX}/auth/token"})
    )
    return app

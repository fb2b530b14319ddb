"""The ingest HTTP service (FastAPI): SCADA historians and engineers push readings.

Routes, under ``/ingest/v1``:

- ``POST /readings``: a JSON array of readings (``application/json``) or NDJSON
  (``application/x-ndjson``, one reading per line; blank lines ignored, a line that is not
  JSON is rejected as that record). At most ``WIMS_INGEST_MAX_RECORDS`` readings (default
  100,000) and ``WIMS_INGEST_MAX_BODY_BYTES`` (default 32 MiB); more: 413.
- ``POST /readings/csv`` (``text/csv``): a historian export with a header row naming the
  same fields as the JSON form. Streamed: rows are parsed as the body arrives and produced
  in chunks of ``WIMS_INGEST_CSV_CHUNK_RECORDS``; memory stays bounded whatever the size.
  Readings get the source ``bulk_import``. Indexes in the answer are 0-based data rows.

One reading: ``{"annulus_id": 17, "timestamp": "2026-11-25T10:00:00Z", "pressure": 1450.3,
"pressure_unit": "psi", "temperature": 61.2, "temperature_unit": "degC", "quality":
"good"}``; ``"tag"`` may stand for ``annulus_id`` (see shared/domain/readings.py for every
rule).

Answers: ``202 {"accepted": n, "rejected": [{"index", "errors": [{"field", "reason",
"code"}]}]}`` when at least one reading was accepted, 422 with the same body when none was.
A 202 is sent only after Kafka acknowledged every accepted reading; if it does not within
``WIMS_INGEST_KAFKA_TIMEOUT_S``, 503 with ``Retry-After``. A 503 means "not accepted as a
whole, push it again": readings are spread over partitions and Kafka has no atomic write
across them without transactions, so if the broker fails part-way some of a 503'd push may
already be stored; re-pushing is always safe (reading ids are deterministic and storage
keeps one row per reading). With the broker down, nothing of the push is written (the
producer is abandoned, not left retrying: see publisher.py). Malformed bodies:
400 (not JSON / not CSV), 413 (too large), 415 (content type), 422 (not an array), each
with ``{"detail", "errors": [{"field", "reason", "code"}]}``. Auth: see auth.py.

The same process runs the sink (pump.py) unless ``WIMS_INGEST_SINK_ENABLED=false``; then
``wims serve ingest-sink`` runs it alone (``create_sink_app``). Wherever the sink runs, the
maintenance of its table runs too (maintenance.py: partitions ahead, retention).
"""

import asyncio
import contextlib
import logging

from fastapi import FastAPI

from services.ingest import openapi, processing
from services.ingest.auth import Authenticator
from services.ingest.errors import describe
from services.ingest.lookups import ReferenceCache
from services.ingest.maintenance import run_periodically
from services.ingest.metrics import REQUEST_SECONDS
from services.ingest.publisher import ReadingPublisher
from services.ingest.pump import SINK_GROUP, MeasurementSink
from shared.infrastructure.gc_tuning import freeze_startup_heap
from shared.infrastructure.http_app import make_http_app
from shared.infrastructure.kafka import export_lag_periodically
from shared.infrastructure.observability import RequestTiming
from shared.infrastructure.settings import Settings, get_settings

log = logging.getLogger(__name__)


async def _startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    cache = ReferenceCache(
        app.state.engine, settings.ingest_lookup_refresh_s, settings.ingest_lookup_miss_refresh_s
    )
    try:
        await cache.reload()
    except Exception as exc:  # the database away at start: /readyz says so, reload on miss
        log.warning("initial reference load failed: %s", describe(exc))
    publisher = ReadingPublisher(settings)
    await publisher.start()
    app.state.publisher = publisher
    app.state.ingestor = processing.Ingestor(settings, cache, publisher)
    app.state.authenticator = Authenticator(
        app.state.engine, settings.jwt_verification_secrets, settings.ingest_auth_cache_s
    )
    app.state.collection_pause = processing.CollectionPause()
    app.state.background = [asyncio.create_task(cache.run_refresher(), name="reference-refresh")]
    if settings.ingest_sink_enabled:
        app.state.background += _sink_tasks(settings)
    # What lives as long as the process (modules, app, routes, engine, producer) is never
    # walked by a collection again (shared/infrastructure/gc_tuning.py).
    freeze_startup_heap()


async def _stop_background(app: FastAPI) -> None:
    tasks = getattr(app.state, "background", [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)


async def _shutdown(app: FastAPI) -> None:
    await _stop_background(app)
    publisher = getattr(app.state, "publisher", None)
    if publisher is not None:
        await publisher.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = make_http_app(
        "WIMS ingest",
        settings,
        startup=_startup,
        shutdown=_shutdown,
        version="1.0.0",
        description=__doc__,
    )
    processing.add_routes(app, settings)
    openapi.document(app, settings, processing.PREFIX)
    app.add_middleware(RequestTiming, seconds=REQUEST_SECONDS)
    return app


def _sink_tasks(settings: Settings) -> list[asyncio.Task[None]]:
    """The sink, and the maintenance of the table it writes (maintenance.py)."""
    return [
        asyncio.create_task(MeasurementSink(settings).run(), name="readings-sink"),
        asyncio.create_task(run_periodically(settings), name="measurement-maintenance"),
        asyncio.create_task(
            export_lag_periodically(
                settings.kafka_bootstrap, [SINK_GROUP], settings.consumer_lag_interval_s
            ),
            name="sink-consumer-lag",
        ),
    ]


async def _sink_startup(app: FastAPI) -> None:
    app.state.background = _sink_tasks(app.state.settings)


def create_sink_app(settings: Settings | None = None) -> FastAPI:
    """The sink alone (``wims serve ingest-sink``), with /healthz, /readyz and /metrics."""
    settings = settings or get_settings()
    return make_http_app(
        "WIMS ingest sink", settings, startup=_sink_startup, shutdown=_stop_background
    )

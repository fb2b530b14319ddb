"""The common shape of a WIMS faust worker: one App per service, id = consumer group."""

from dataclasses import dataclass, field
from typing import Any

import faust
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_ready, make_async_engine
from shared.kafka import KafkaProbe
from shared.observability import add_faust_health_pages
from shared.settings import Settings


@dataclass
class WorkerContext:
    """What a worker's agents share: settings, the database engine, the Kafka probe."""

    settings: Settings
    engine: AsyncEngine
    kafka_probe: KafkaProbe
    extra: dict[str, Any] = field(default_factory=dict)


def make_faust_app(service: str, settings: Settings) -> tuple[faust.App, WorkerContext]:
    # faust creates its datadir but not the parents: the run folder may be brand new.
    (settings.run_dir / "faust").mkdir(parents=True, exist_ok=True)
    app = faust.App(
        f"wims-{service}",
        broker=f"kafka://{settings.kafka_bootstrap}",
        web_host=settings.bind_host,
        web_port=settings.port_of(service),
        web_bind=settings.bind_host,
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=1,
        # Values are decoded by shared.events (one TypeAdapter per topic), not by faust codecs.
        key_serializer="raw",
        value_serializer="raw",
        store="memory://",  # tables recover from their changelog topics on restart
        producer_acks=-1,
        broker_session_timeout=settings.kafka_session_timeout_s,
        consumer_auto_offset_reset="earliest",
        web_enabled=True,
        # faust keeps per-worker files (table offsets) here; under the run folder, not the cwd
        datadir=str(settings.run_dir / "faust" / service),
    )
    ctx = WorkerContext(
        settings=settings,
        engine=make_async_engine(settings, pool_size=5),
        kafka_probe=KafkaProbe(settings.kafka_bootstrap),
    )
    add_faust_health_pages(
        app,
        lambda: {"kafka": ctx.kafka_probe.ready, "database": lambda: database_ready(ctx.engine)},
    )
    return app, ctx


def run_worker(app: faust.App, log_level: str) -> None:
    """Run the worker in the foreground until SIGTERM/SIGINT."""
    from faust.worker import Worker

    worker = Worker(app, loglevel=log_level.lower(), quiet=True)
    worker.execute_from_commandline()

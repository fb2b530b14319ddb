"""The common shape of a WIMS faust worker: one App per service, id = consumer group."""

from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import faust
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.db import database_ready, make_async_engine
from shared.kafka import KafkaProbe
from shared.observability import add_faust_health_pages
from shared.settings import Settings


class _FetchablePartitions(AbstractSet[Any]):
    """What aiokafka may hand faust from its fetch buffer: faust's live set of active
    partitions, less the input partitions while a rebalance is in progress (the table
    changelogs being recovered stay in), and truthy even when empty, because aiokafka
    takes an empty set to mean every partition."""

    def __init__(self, live: AbstractSet[Any], app: Any) -> None:
        self._live = live
        self._app = app

    def __contains__(self, tp: object) -> bool:
        if tp not in self._live:
            return False
        if not self._app.rebalancing:
            return True
        return getattr(tp, "topic", None) in self._app.tables.changelog_topics

    def __iter__(self) -> Iterator[Any]:
        return (tp for tp in list(self._live) if tp in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return True


def hold_input_until_the_worker_is_ready() -> None:
    """Work around faust-streaming 0.15.3 losing input messages fetched while a worker
    finishes a rebalance (its start-up included).

    faust resumes the input partitions, then seeks them to the committed offsets, then
    tells its streams to flow. A fetch in that window hands the streams records that are
    dropped unprocessed, and aiokafka has moved past them, so nothing brings them back
    until the worker restarts. Two ways it happens: records delivered before the streams
    flow are skipped; and while recovery swaps changelog for input partitions faust's set
    of active partitions can be empty, which aiokafka reads as "every partition". Found by
    the integrity worker's restart tests: a restarted worker never processed the alert
    published while it started. Input records now stay in aiokafka's buffer, its position
    untouched, until the rebalance is over; the seek then takes them from the committed
    offsets as faust intends.
    """
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    getmany = AIOKafkaConsumerThread.getmany
    if getattr(getmany, "_wims_patched", False):  # every worker app installs it; once is enough
        return

    # faust passes both arguments by position; ``timeout`` is faust's own name for it.
    async def getmany_when_ready(self: Any, active_partitions: Any, timeout: float) -> Any:  # noqa: ASYNC109
        if active_partitions is not None:
            active_partitions = _FetchablePartitions(active_partitions, self.app)
        return await getmany(self, active_partitions, timeout)

    getmany_when_ready._wims_patched = True  # type: ignore[attr-defined]
    AIOKafkaConsumerThread.getmany = getmany_when_ready  # type: ignore[method-assign]


@dataclass
class WorkerContext:
    """What a worker's agents share: settings, the database engine, the Kafka probe."""

    settings: Settings
    engine: AsyncEngine
    kafka_probe: KafkaProbe
    extra: dict[str, Any] = field(default_factory=dict)


def make_faust_app(service: str, settings: Settings) -> tuple[faust.App, WorkerContext]:
    hold_input_until_the_worker_is_ready()
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

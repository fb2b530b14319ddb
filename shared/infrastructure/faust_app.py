"""The common shape of a WIMS faust worker: one App per service, id = consumer group.

Every worker gets, from :func:`make_faust_app`, the faust workarounds of
``shared.infrastructure.compat.faust_worker`` (its input held until it is ready and its producer knows
every changelog), health pages, and :func:`process_message`: the one way a worker handles a
message, retrying transient failures with the offset held and dead-lettering only a
message that can never be processed.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import faust
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.infrastructure.compat import faust_worker
from shared.infrastructure.db import database_ready, make_async_engine
from shared.infrastructure.dead_letters import dead_letter
from shared.infrastructure.kafka import COMMITTED_OFFSET, CONSUMER_LAG, ConsumerLag, KafkaProbe
from shared.infrastructure.observability import add_faust_health_pages
from shared.infrastructure.retry import retry_transient
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class WorkerContext:
    """What a worker's agents share: settings, the database engine, the Kafka probe."""

    settings: Settings
    engine: AsyncEngine
    kafka_probe: KafkaProbe
    extra: dict[str, Any] = field(default_factory=dict)
    service: str = ""


def make_faust_app(service: str, settings: Settings) -> tuple[faust.App, WorkerContext]:
    faust_worker.install()
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
        # Values are decoded by shared.contracts.events (one TypeAdapter per topic), not by faust codecs.
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
        service=service,
    )

    @app.on_partitions_assigned.connect
    async def learn_changelogs(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await faust_worker.learn_changelog_partitions(app, service)

    lag = ConsumerLag(settings.kafka_bootstrap)

    # One worker of the group (the leader) exports the group's lag: the broker's numbers
    # are the same seen from any of them. A worker that is no longer the leader drops what
    # it exported, so a sum over the group never counts a number twice or a stale one.
    @app.timer(settings.consumer_lag_interval_s, name=f"{service}.consumer-lag")
    async def consumer_lag() -> None:
        if app.is_leader():
            await lag.export([app.conf.id, *ctx.extra.get("lag_groups", [])])
        else:
            CONSUMER_LAG.clear()
            COMMITTED_OFFSET.clear()

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


class Rejected(Exception):
    """A message that can never be processed: ``reason`` is ``undecodable`` or ``invalid``
    (see ``shared.contracts.dead_letters``), the message says which field and why."""

    def __init__(self, reason: str, error: str) -> None:
        super().__init__(error)
        self.reason = reason


def describe(exc: BaseException) -> str:
    """One line naming the field and the reason, for logs and dead letters."""
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'value'}: {err['msg']}"
            for err in exc.errors()
        )
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}" if not isinstance(exc, Rejected) else text


async def send_dead_letter(
    app: faust.App,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    reason: str,
    error: str,
) -> None:
    """Publish one dead letter and wait for its ack (a broker that is away is waited for:
    the source offset must not move past a message that is neither processed nor kept)."""
    log.warning("dead-lettered %s[%s]@%s (%s): %s", topic, partition, offset, reason, error)
    record = dead_letter(service, topic, partition, offset, key, value, reason, error)

    async def send() -> None:
        await (await faust_worker.send_raw(app, *record))

    await retry_transient(service, "dead letter", send)


async def process_message(
    app: faust.App,
    service: str,
    message: Any,
    handle: Callable[..., Awaitable[Any]],
    *args: Any,
) -> str | None:
    """Run ``handle(*args)`` for one message until it is done; None then, or the reason it
    was dead-lettered with.

    A transient failure (``shared.infrastructure.retry``) is retried with backoff while the offset is held:
    a valid message is never skipped nor dead-lettered for the infrastructure's sake. A
    :class:`Rejected` message is dead-lettered with its reason; any other error is the
    service's own failure on a valid message and is dead-lettered as ``unprocessable``,
    with its traceback in the log, to be replayed after a fix (``wims dead-letters``)."""
    try:
        await retry_transient(service, f"process {message.topic}", handle, *args)
        return None
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        reason = exc.reason if isinstance(exc, Rejected) else "unprocessable"
        if reason == "unprocessable":
            log.exception(
                "%s: processing %s[%s]@%s failed",
                service,
                message.topic,
                message.partition,
                message.offset,
            )
        await send_dead_letter(
            app,
            service,
            message.topic,
            message.partition,
            message.offset,
            message.key,
            message.value,
            reason,
            describe(exc),
        )
        return reason

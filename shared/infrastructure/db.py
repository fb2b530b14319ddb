"""Database engines and sessions. Created by the caller (no I/O at import time)."""

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from prometheus_client import Histogram
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import greenlet_spawn

from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)

# A statement's parameters are user data (a login's email, a password hash, a tag name): an
# error's text must never carry them into a log. hide_parameters keeps them out of every
# SQLAlchemy exception message; the statement itself (placeholders only) stays.
_DEFAULTS: dict[str, object] = {"pool_pre_ping": True, "hide_parameters": True}

DB_POOL_WAIT = Histogram(
    "wims_db_pool_wait_seconds",
    "Time to get a connection from an async engine's pool: waiting for a free one, or "
    "opening a new one (the pre-ping, where on, is not included)",
    ["pool"],
    buckets=(0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


@functools.cache
def timed_pool_class(label: str) -> type[AsyncAdaptedQueuePool]:
    """The async engines' queue pool, recording in ``wims_db_pool_wait_seconds{pool=label}``
    how long each checkout took to get its connection: a request that waits here is waiting
    for the pool, not for PostgreSQL. (A class per label: the pool re-creates itself from
    its class when the engine is disposed.)"""

    def _do_get(self: AsyncAdaptedQueuePool):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return AsyncAdaptedQueuePool._do_get(self)
        finally:
            wait.observe(time.perf_counter() - start)

    wait = DB_POOL_WAIT.labels(label)
    return type(f"TimedPool_{label}", (AsyncAdaptedQueuePool,), {"_do_get": _do_get})


def make_engine(settings: Settings, **kw: object) -> Engine:
    return create_engine(settings.sqlalchemy_url, **(_DEFAULTS | kw))  # type: ignore[arg-type]


def make_async_engine(settings: Settings, pool_label: str = "main", **kw: object) -> AsyncEngine:
    return create_async_engine(
        settings.sqlalchemy_url,
        **(_DEFAULTS | {"poolclass": timed_pool_class(pool_label)} | kw),  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The psycopg ``AsyncConnection`` of a connection checked out of ``engine``'s pool (its
    wait recorded like any checkout), returned to the pool on exit.

    For the hottest reads: a statement run on it directly costs one await of the driver,
    where an ORM session adds a session, a transaction object, the Core execution context
    and a greenlet switch per statement (measured: a fifth of the api's CPU on a /state
    read). Statements take psycopg's ``%(name)s`` parameters. On an autocommit engine (the
    api's read engine) each statement is its own transaction.

    As through a session, a driver error comes out as SQLAlchemy's ``DBAPIError`` (so the
    same handlers answer it: 503 for an unreachable database), and a connection the error
    broke makes the pool recycle its connections rather than hand a dead one to the next
    request."""
    fairy = await engine.raw_connection()
    conn = fairy.driver_connection
    try:
        yield conn
    except psycopg.Error as exc:
        broken = bool(conn.closed or conn.broken)
        if broken:
            # What SQLAlchemy does on a disconnect through a session: drop this connection
            # and recycle every other one opened before now (after a database restart they
            # are all dead), so one read fails, not one per pooled connection.
            await greenlet_spawn(engine.sync_engine.pool._invalidate, fairy, exc)
        raise DBAPIError.instance(
            None, None, exc, psycopg.Error, hide_parameters=True, connection_invalidated=broken
        ) from exc
    except BaseException:
        # Cancelled mid-statement: the connection may still be busy with it; never pool it.
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            await greenlet_spawn(fairy.invalidate)
        raise
    finally:
        # Returning it to the pool may reset the connection, which the adapted driver does
        # from inside a greenlet only.
        await greenlet_spawn(fairy.close)


async def open_pool(engine: AsyncEngine, size: int, timeout_s: float = 5.0) -> None:
    """Opens ``size`` pooled connections of ``engine`` now, so the first burst of requests
    after a start does not open them mid-request (measured on the api: some 25 connects in
    the first second of load, most of the tail latency then). Best effort: with the database
    away the service still starts and the pool connects on demand."""
    async with contextlib.AsyncExitStack() as held:
        try:
            async with asyncio.timeout(timeout_s):
                for _ in range(size):
                    conn = await held.enter_async_context(engine.connect())
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("could not open the pool at start-up (%r); opening on demand", exc)


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_ready(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """True when the database answers a trivial query within ``timeout_s``."""

    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), timeout_s)
        return True
    except Exception:
        return False

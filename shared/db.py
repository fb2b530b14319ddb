"""Database engines and sessions. Created by the caller (no I/O at import time)."""

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from shared.settings import Settings

# A statement's parameters are user data (a login's email, a password hash, a tag name): an
# error's text must never carry them into a log. hide_parameters keeps them out of every
# SQLAlchemy exception message; the statement itself (placeholders only) stays.
_DEFAULTS: dict[str, object] = {"pool_pre_ping": True, "hide_parameters": True}


def make_engine(settings: Settings, **kw: object) -> Engine:
    return create_engine(settings.sqlalchemy_url, **(_DEFAULTS | kw))  # type: ignore[arg-type]


def make_async_engine(settings: Settings, **kw: object) -> AsyncEngine:
    return create_async_engine(settings.sqlalchemy_url, **(_DEFAULTS | kw))  # type: ignore[arg-type]


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


async def database_ready(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """True when the database answers a trivial query within ``timeout_s``."""
    import asyncio

    async def probe() -> None:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    try:
        await asyncio.wait_for(probe(), timeout_s)
        return True
    except Exception:
        return False

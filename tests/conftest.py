"""Session fixtures: a real Kafka broker and a real PostgreSQL, started once per test run
only when a test asks for them (unit tests never do)."""

from collections.abc import Iterator

import pytest

from shared.infrastructure.settings import Settings
from tests.support.stack import Stack, container_stack, docker_engine_answers, local_stack

TIER_ORDER = {"unit": 0, "integration": 1, "e2e": 2}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Fast tiers first: unit, then integration, then end to end (each keeps its order)."""

    def tier(item: pytest.Item) -> int:
        parts = item.nodeid.split("/")
        return TIER_ORDER.get(parts[1] if len(parts) > 2 else "", 1)

    items.sort(key=tier)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    factory = container_stack if docker_engine_answers() else local_stack
    with factory() as s:
        from shared.persistence.migrate import upgrade

        upgrade(s.settings())
        import asyncio

        from shared.infrastructure.kafka import ensure_topics

        asyncio.run(ensure_topics(s.settings()))
        yield s


@pytest.fixture(scope="session")
def settings(stack: Stack) -> Settings:
    return stack.settings()


@pytest.fixture(scope="session")
def db_engine(settings: Settings):
    """A synchronous SQLAlchemy engine on the test database (for arranging and asserting)."""
    from shared.infrastructure.db import make_engine

    engine = make_engine(settings)
    yield engine
    engine.dispose()


@pytest.fixture
def clean_db(db_engine) -> None:
    """Empty every table except the seeded risk matrix, before the test that asks for it.

    Identities are not restarted: events of earlier tests are still on the topics, and a
    recycled id would make a stale event about "annulus 20" land on this test's annulus 20.
    """
    from sqlalchemy import text

    from shared.persistence.models import Base

    names = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "risk_matrix_cell")
    with db_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))

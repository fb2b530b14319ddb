"""Fixtures and helpers shared by the test_api_* modules (imported by them; no tests here).

The API runs in-process (httpx.ASGITransport with its real lifespan: outbox relay and
alert consumer included) against the real PostgreSQL and Kafka of the ``stack`` fixture.
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest_asyncio
from aiokafka import AIOKafkaConsumer
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from services.api.app import create_app
from shared.contracts import events as ev
from shared.contracts.enums import Role
from shared.infrastructure.auth import create_access_token, hash_password
from shared.infrastructure.settings import Settings
from shared.persistence.models import User

PASSWORD = "correct horse battery"
_HASH = hash_password(PASSWORD)  # once: argon2 is slow on purpose


@dataclass
class Api:
    client: httpx.AsyncClient
    app: Any
    settings: Settings


async def _run_app(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(client, app, settings)


@pytest_asyncio.fixture(name="api", scope="module", loop_scope="session")
async def api_fixture(settings: Settings) -> AsyncIterator[Api]:
    async for a in _run_app(settings):
        yield a


def make_user(engine: Engine, email: str, role: Role, active: bool = True) -> int:
    with Session(engine) as s, s.begin():
        user = User(email=email, full_name=email, password_hash=_HASH, role=role, is_active=active)
        s.add(user)
        s.flush()
        return user.id


def token_for(settings: Settings, user_id: int, role: Role) -> str:
    return create_access_token(
        user_id, role.value, settings.jwt_secret, timedelta(minutes=settings.jwt_ttl_minutes)
    )


@dataclass
class Users:
    ids: dict[str, int]
    headers: dict[str, dict[str, str]]  # role name (and "anonymous") -> request headers


async def truncate_all(db_engine: Engine) -> None:
    """What the ``clean_db`` fixture does, off the event loop: the in-process API's relay may
    be inside a transaction on the outbox, and a TRUNCATE blocking the loop would wait for a
    lock that only the (blocked) loop can release."""
    from sqlalchemy import text

    from shared.persistence.models import Base

    names = ", ".join(t.name for t in Base.metadata.sorted_tables if t.name != "risk_matrix_cell")

    def work() -> None:
        with db_engine.begin() as conn:
            conn.execute(text("SET LOCAL lock_timeout = '30s'"))
            conn.execute(text(f"TRUNCATE {names} CASCADE"))

    await asyncio.to_thread(work)


@pytest_asyncio.fixture(name="users", loop_scope="session")
async def users_fixture(db_engine: Engine, settings: Settings) -> Users:
    """An empty database with one user per role (and headers for each, "anonymous" too)."""
    await truncate_all(db_engine)
    ids, headers = {}, {"anonymous": {}}
    for role in Role:
        uid = make_user(db_engine, f"{role.value}@wims.test", role)
        ids[role.value] = uid
        headers[role.value] = {"Authorization": f"Bearer {token_for(settings, uid, role)}"}
    return Users(ids, headers)


class KafkaTail:
    """Reads a topic from its end at the moment of ``start()``: sees only what comes next."""

    def __init__(self, settings: Settings, topic: str, from_beginning: bool = False) -> None:
        self.topic = topic
        self.from_beginning = from_beginning
        if from_beginning:
            # A fresh consumer group reading from the earliest offset. (A group-less consumer
            # started just after a broker restart was seen to stay stuck without fetching.)
            self.consumer = AIOKafkaConsumer(
                topic,
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=f"test-{uuid4()}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
        else:
            # Subscribed without a group: every partition is assigned to it on start.
            self.consumer = AIOKafkaConsumer(
                topic,
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=None,
                enable_auto_commit=False,
            )
        self.seen: list[tuple[bytes, Any]] = []

    async def start(self) -> "KafkaTail":
        await self.consumer.start()
        if self.from_beginning:
            return self
        tps = sorted(self.consumer.assignment())
        assert tps, f"topic {self.topic} has no partitions"
        await self.consumer.seek_to_end(*tps)
        for tp in tps:  # resolve the lazy seek now, before the action under test
            await self.consumer.position(tp)
        return self

    async def wait_for(self, predicate: Callable[[bytes, Any], bool], timeout_s: float) -> Any:
        """The first event (key, decoded value) that satisfies ``predicate``; every event read
        is kept in ``seen``."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        for key, value in self.seen:
            if predicate(key, value):
                return value
        while asyncio.get_running_loop().time() < deadline:
            batch = await self.consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for msg in messages:
                    value = ev.decode(self.topic, msg.value)
                    self.seen.append((msg.key, value))
                    if predicate(msg.key, value):
                        return value
        raise AssertionError(
            f"no matching event on {self.topic} within {timeout_s} s; saw {len(self.seen)}: "
            f"{[v for _, v in self.seen[-5:]]}"
        )

    async def stop(self) -> None:
        await self.consumer.stop()


async def poll_until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        await asyncio.sleep(0.1)


NOW = datetime.now(UTC).replace(microsecond=0)

WELL_BODY = {
    "name": "W-1",
    "field": "North",
    "type": "oil_producer",
    "location": "platform",
    "measured_depth": 3500.0,
    "true_vertical_depth": 3200.0,
}


async def build_well(
    client: httpx.AsyncClient, headers: dict[str, str], name: str = "W-1"
) -> dict[str, int]:
    """A small well through the API: production casing, tubing, A annulus with two
    critical points, a primary envelope with an SSSV. Returns the ids."""

    async def post(path: str, body: dict[str, Any]) -> int:
        r = await client.post(f"/api/v1{path}", json=body, headers=headers)
        assert r.status_code == 201, (path, r.status_code, r.text)
        return r.json()["id"]

    ids: dict[str, int] = {}
    ids["well"] = await post("/wells", {**WELL_BODY, "name": name})
    w = ids["well"]
    ids["casing"] = await post(
        f"/wells/{w}/casing-strings",
        {
            "name": "9 5/8 production",
            "casing_type": "production",
            "outer_diameter_in": 9.625,
            "inner_diameter_in": 8.681,
            "top_md": 0,
            "bottom_md": 3400,
        },
    )
    ids["tubing"] = await post(
        f"/wells/{w}/tubing-strings",
        {
            "name": "4 1/2 tubing",
            "outer_diameter_in": 4.5,
            "inner_diameter_in": 3.958,
            "top_md": 0,
            "bottom_md": 3300,
            "packer_depth_md": 3250,
        },
    )
    ids["annulus"] = await post(
        f"/wells/{w}/annuli",
        {
            "name": "A",
            "inner_tubing_string_id": ids["tubing"],
            "outer_casing_string_id": ids["casing"],
            "fluid_gradient_bar_per_m": 0.1,
        },
    )
    ids["cp_wellhead"] = await post(
        f"/annuli/{ids['annulus']}/critical-points",
        {
            "label": "wellhead",
            "point_type": "wellhead",
            "depth_md": 0,
            "tvd_m": 0,
            "pressure_limit_bar": 345,
        },
    )
    ids["cp_packer"] = await post(
        f"/annuli/{ids['annulus']}/critical-points",
        {
            "label": "packer",
            "point_type": "packer",
            "depth_md": 3250,
            "tvd_m": 3000,
            "pressure_limit_bar": 600,
        },
    )
    ids["envelope"] = await post(
        f"/wells/{w}/barrier-envelopes", {"type": "primary", "name": "primary"}
    )
    ids["element"] = await post(
        f"/barrier-envelopes/{ids['envelope']}/barrier-elements",
        {"name": "SSSV", "element_type": "sssv", "status": "ok", "depth_md": 300},
    )
    return ids

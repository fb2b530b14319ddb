"""The live alert stream at scale and secure, against a real API process and the real broker:
one shared consumer for many streams, caps, access re-checked on open streams, resumes
exactly after a Last-Event-ID (from the replay buffer and from before it), slow clients.

The API runs with small limits so each path is reached with few streams and alerts."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared.contracts import topics
from shared.contracts.enums import Role, Severity
from shared.infrastructure.auth import create_access_token
from tests.integration.test_api_fixtures import make_user, token_for, truncate_all
from tests.integration.test_api_sse import STREAM, SseReader, alert
from tests.support.stack import ServiceProcess, Stack, start_service

PER_USER = 5
PROCESS = 22
REPLAY_BUFFER = 30
CLIENT_QUEUE = 20
RECHECK_S = 1.0


@dataclass
class Live:
    svc: ServiceProcess
    settings: Any
    viewers: list[dict[str, str]]  # headers of six viewers
    viewer_ids: list[int]
    admin: dict[str, str]


@pytest.fixture(scope="module")
def live(stack: Stack, db_engine: Any) -> Iterator[Live]:
    asyncio.run(truncate_all(db_engine))
    settings = stack.settings()
    ids = [make_user(db_engine, f"sse-scale-{i}@wims.test", Role.viewer) for i in range(6)]
    admin = make_user(db_engine, "sse-scale-admin@wims.test", Role.admin)
    svc = start_service(
        stack,
        "api",
        {
            "WIMS_SSE_MAX_STREAMS_PER_USER": str(PER_USER),
            "WIMS_SSE_MAX_STREAMS": str(PROCESS),
            "WIMS_SSE_REPLAY_BUFFER": str(REPLAY_BUFFER),
            "WIMS_SSE_CLIENT_QUEUE": str(CLIENT_QUEUE),
            "WIMS_SSE_AUTH_RECHECK_S": str(RECHECK_S),
        },
    )
    try:
        svc.wait_ready(timeout_s=90)
        yield Live(
            svc,
            settings,
            [{"Authorization": f"Bearer {token_for(settings, i, Role.viewer)}"} for i in ids],
            ids,
            {"Authorization": f"Bearer {token_for(settings, admin, Role.admin)}"},
        )
    finally:
        svc.terminate()


@pytest_asyncio.fixture(loop_scope="session")
async def producer(settings: Any) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, acks="all", max_request_size=4_000_000
    )
    await p.start()
    yield p
    await p.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live.svc.base_url, timeout=60, limits=limits) as c:
        yield c


async def open_stream(
    stack: AsyncExitStack,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    params: dict[str, Any] | None = None,
) -> SseReader:
    response = await stack.enter_async_context(
        client.stream("GET", STREAM, headers=headers, params=params)
    )
    assert response.status_code == 200, (await response.aread()).decode()
    reader = SseReader(response)
    await reader.until_comment("connected", 15)
    return reader


async def get_refused(client: httpx.AsyncClient, **kwargs: Any) -> httpx.Response:
    """GET the stream expecting a refusal; a stream that opens instead fails the test rather
    than being read forever."""
    async with client.stream("GET", STREAM, **kwargs) as response:
        if response.status_code == 200:
            raise AssertionError("the stream opened")
        await response.aread()
        return response


async def metric(client: httpx.AsyncClient, name: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


async def produce(producer: AIOKafkaProducer, alerts: list[Any]) -> None:
    futures = [
        await producer.send(topics.ALERTS.name, a.encode(), key=str(a.well_id).encode())
        for a in alerts
    ]
    await asyncio.gather(*futures)


async def next_closed(reader: SseReader, timeout_s: float) -> dict[str, Any]:
    """Reads events until ``stream-closed``; returns its data."""
    deadline = time.monotonic() + timeout_s
    while True:
        _, kind, data = await reader.next_event(max(0.1, deadline - time.monotonic()))
        if kind == "stream-closed":
            return data


async def test_twenty_streams_share_one_consumer_and_each_gets_the_alert(
    live: Live, client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    async with AsyncExitStack() as stack:
        readers = [await open_stream(stack, client, live.viewers[i // PER_USER]) for i in range(20)]
        assert await metric(client, "wims_api_sse_clients") == 20
        # One consumer for the process, not one per stream.
        assert await metric(client, "wims_api_sse_kafka_consumers") == 1
        sent = alert(well_id=21, n=1)
        await produce(producer, [sent])
        got = await asyncio.gather(*(r.next_event(10) for r in readers))
        assert {data["event_id"] for _, _, data in got} == {str(sent.event_id)}
        assert len({event_id for event_id, _, _ in got}) == 1  # the same position for all
    assert await poll_metric(client, "wims_api_sse_clients", 0)


async def poll_metric(client: httpx.AsyncClient, name: str, want: float) -> bool:
    """The server sees a closed stream when its next write or disconnect check fails."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await metric(client, name) == want:
            return True
        await asyncio.sleep(0.1)
    return False


async def test_caps_per_user_and_per_process_answer_429(
    live: Live, client: httpx.AsyncClient
) -> None:
    async with AsyncExitStack() as stack:
        # Held: a reader that is garbage-collected closes its response, and so its stream.
        readers = [await open_stream(stack, client, live.viewers[0]) for _ in range(PER_USER)]
        r = await get_refused(client, headers=live.viewers[0])
        assert r.status_code == 429
        assert r.headers["Retry-After"].isdigit()
        assert "WIMS_SSE_MAX_STREAMS_PER_USER" in r.json()["detail"]
        for i in range(PER_USER, PROCESS):  # the process fills up with other users' streams
            readers.append(await open_stream(stack, client, live.viewers[i // PER_USER]))
        r = await get_refused(client, headers=live.viewers[5])
        assert r.status_code == 429 and "(WIMS_SSE_MAX_STREAMS)" in r.json()["detail"]
        assert r.headers["Retry-After"].isdigit()
    # Closed streams give their slots back.
    assert await poll_metric(client, "wims_api_sse_clients", 0)
    async with AsyncExitStack() as stack:
        assert await open_stream(stack, client, live.viewers[5])


async def test_deactivating_the_user_closes_an_open_stream_within_seconds(
    live: Live, client: httpx.AsyncClient, db_engine: Any
) -> None:
    user_id = make_user(db_engine, "sse-deactivated@wims.test", Role.viewer)
    headers = {"Authorization": f"Bearer {token_for(live.settings, user_id, Role.viewer)}"}
    async with AsyncExitStack() as stack:
        reader = await open_stream(stack, client, headers)
        r = await client.patch(
            f"/api/v1/users/{user_id}", json={"is_active": False}, headers=live.admin
        )
        assert r.status_code == 200, r.text
        t0 = time.monotonic()
        closed = await next_closed(reader, 10)
        took = time.monotonic() - t0
    assert closed["code"] == "unauthorized" and "inactive" in closed["reason"]
    assert took < RECHECK_S + 2, f"the stream stayed open {took:.1f} s after deactivation"
    assert (await get_refused(client, headers=headers)).status_code == 401


async def test_an_expired_token_closes_its_stream(live: Live, client: httpx.AsyncClient) -> None:
    token = create_access_token(
        live.viewer_ids[5], "viewer", live.settings.jwt_secret, timedelta(seconds=3)
    )
    async with AsyncExitStack() as stack:
        reader = await open_stream(stack, client, {"Authorization": f"Bearer {token}"})
        t0 = time.monotonic()
        closed = await next_closed(reader, 15)
    assert closed["code"] == "unauthorized" and "expired" in closed["reason"]
    assert time.monotonic() - t0 < 3 + RECHECK_S + 2


@pytest.mark.parametrize(
    "value",
    [
        "0:9223372036854775808",  # 2^63: crashed the stream's fetcher (struct.error)
        "0:99999999999999999999999",
        "0:-1",
        "-1:0",
        "99:0",  # no such partition
        "0:1000000000000",  # far beyond the end of the partition
        "0:1,0:2",
        "0:1;1:2",
    ],
)
async def test_last_event_id_out_of_range_is_a_422_naming_it(
    live: Live, client: httpx.AsyncClient, value: str
) -> None:
    for kwargs in (
        {"headers": {**live.viewers[0], "Last-Event-ID": value}},
        {"headers": live.viewers[0], "params": {"last_event_id": value}},
    ):
        r = await get_refused(client, **kwargs)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "Last-Event-ID"
    assert await metric(client, "wims_api_sse_clients") == 0


async def read_n(reader: SseReader, n: int, timeout_s: float = 30) -> list[tuple[str, str]]:
    """(id, message) of the next ``n`` events."""
    out = []
    for _ in range(n):
        event_id, _, data = await reader.next_event(timeout_s)
        out.append((event_id or "", data["message"]))
    return out


@pytest.mark.parametrize("missed", [5, 3 * REPLAY_BUFFER], ids=["from-buffer", "catch-up"])
async def test_a_resume_gets_exactly_the_alerts_after_its_last_event_id(
    live: Live, client: httpx.AsyncClient, producer: AIOKafkaProducer, missed: int
) -> None:
    tag = f"resume-{missed}"
    # Several wells: the alerts spread over partitions, and a filtered stream resumes too.
    wells = [31, 32, 33, 34]
    async with AsyncExitStack() as stack:
        reader = await open_stream(stack, client, live.viewers[1])
        await produce(producer, [alert(well_id=w, n=0) for w in wells])
        seen = await read_n(reader, len(wells))
        last_id = seen[-1][0]
    later = [
        (a := alert(well_id=wells[i % 4], n=i + 1)).model_copy(
            update={"message": f"{tag} {a.message}"}
        )
        for i in range(missed)
    ]
    await produce(producer, later)
    expected = [a.message for a in later]
    async with AsyncExitStack() as stack:
        headers = {**live.viewers[1], "Last-Event-ID": last_id}
        reader = await open_stream(stack, client, headers)
        got = [m for _, m in await read_n(reader, missed)]
        # Then live: the next alert arrives once, right after the missed ones.
        tail = alert(well_id=31, n=10_000)
        await produce(producer, [tail])
        _, _, data = await reader.next_event(10)
        assert data["event_id"] == str(tail.event_id)
        # Back on the shared feed: the catch-up reader is gone.
        assert await metric(client, "wims_api_sse_kafka_consumers") == 1
    assert sorted(got) == sorted(expected) and len(set(got)) == missed
    well_of = {a.message: a.well_id for a in later}
    for well in wells:  # in order within a well (one key, one partition)
        assert [m for m in got if well_of[m] == well] == [
            a.message for a in later if a.well_id == well
        ]
    # A filtered resume from the same id gets exactly that well's later alerts, in order.
    async with AsyncExitStack() as stack:
        headers = {**live.viewers[2], "Last-Event-ID": last_id}
        reader = await open_stream(stack, client, headers, params={"well_id": 32})
        want = [a.message for a in later if a.well_id == 32]
        assert [m for _, m in await read_n(reader, len(want))] == want


async def test_a_slow_client_is_closed_with_a_reason_and_resumes_without_loss(
    live: Live, client: httpx.AsyncClient, producer: AIOKafkaProducer
) -> None:
    # Big alerts, so the unread stream fills the socket buffers and the server's mailbox
    # (WIMS_SSE_CLIENT_QUEUE) overflows: ~24 MB, beyond what loopback sockets buffer.
    pad = "x" * 40_000
    sent = [
        alert(well_id=41, severity=Severity.warning, n=i).model_copy(
            update={"details": {"pad": pad}}
        )
        for i in range(600)
    ]
    slow = 'wims_api_sse_closed_total{reason="slow_client"}'
    try:
        before = await metric(client, slow)
    except AssertionError:  # no stream of this process was ever closed as slow
        before = 0.0
    async with AsyncExitStack() as stack:
        reader = await open_stream(stack, client, live.viewers[3], params={"well_id": 41})
        await produce(producer, sent)
        # Not reading: wait until the server has given up on this client (and on no other).
        assert await poll_metric(client, slow, before + 1)
        got: list[tuple[str, str]] = []
        while True:
            event_id, kind, data = await reader.next_event(30)
            if kind == "stream-closed":
                break
            got.append((event_id or "", data["event_id"]))
    assert data["code"] == "slow_client" and "Last-Event-ID" in data["reason"]
    assert 0 < len(got) < len(sent)
    async with AsyncExitStack() as stack:
        headers = {**live.viewers[3], "Last-Event-ID": got[-1][0]}
        reader = await open_stream(stack, client, headers, params={"well_id": 41})
        rest = await read_n(reader, len(sent) - len(got))
    # Every alert exactly once, in the order sent (one well: one partition).
    by_message = {a.message: str(a.event_id) for a in sent}
    ids = [e for _, e in got] + [by_message[m] for _, m in rest]
    assert ids == [str(a.event_id) for a in sent]

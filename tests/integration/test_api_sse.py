"""Live alerts over Server-Sent Events, from a real API process reading the real broker."""

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import AlertKind, Role, Severity
from tests.integration.test_api_fixtures import make_user, poll_until, token_for, truncate_all
from tests.support.stack import ServiceProcess, Stack, start_service

STREAM = "/api/v1/alerts/stream"


@dataclass
class Live:
    svc: ServiceProcess
    viewer: dict[str, str]
    engineer: dict[str, str]


@pytest.fixture(scope="module")
def live(stack: Stack, db_engine: Any) -> Iterator[Live]:
    asyncio.run(truncate_all(db_engine))
    settings = stack.settings()
    viewer = make_user(db_engine, "sse-viewer@wims.test", Role.viewer)
    engineer = make_user(db_engine, "sse-engineer@wims.test", Role.engineer)
    svc = start_service(stack, "api")
    try:
        svc.wait_ready(timeout_s=90)
        yield Live(
            svc,
            {"Authorization": f"Bearer {token_for(settings, viewer, Role.viewer)}"},
            {"Authorization": f"Bearer {token_for(settings, engineer, Role.engineer)}"},
        )
    finally:
        svc.terminate()


@pytest_asyncio.fixture(loop_scope="session")
async def producer(settings: Any) -> AsyncIterator[AIOKafkaProducer]:
    p = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await p.start()
    yield p
    await p.stop()


def alert(well_id: int, severity: Severity = Severity.critical, n: int = 0) -> ev.Alert:
    return ev.Alert(
        kind=AlertKind.maasp_exceeded,
        severity=severity,
        well_id=well_id,
        annulus_id=well_id * 10,
        ts=datetime.now(UTC),
        message=f"A annulus above MAASP ({n})",
        pressure_bar=210.0,
        maasp_bar=200.0,
        utilisation=1.05,
    )


async def send(producer: AIOKafkaProducer, a: ev.Alert) -> None:
    await producer.send_and_wait(topics.ALERTS.name, a.encode(), key=str(a.well_id).encode())


class SseReader:
    """Parses an event stream into (id, event, data) tuples, comments into ``comments``."""

    def __init__(self, response: httpx.Response) -> None:
        self._lines = response.aiter_lines()
        self.comments: list[str] = []

    async def next_event(self, timeout_s: float) -> tuple[str | None, str | None, dict[str, Any]]:
        async def read() -> tuple[str | None, str | None, dict[str, Any]]:
            fields: dict[str, str] = {}
            async for line in self._lines:
                if line.startswith(":"):
                    self.comments.append(line[1:].strip())
                elif line == "":
                    if "data" in fields:
                        return fields.get("id"), fields.get("event"), orjson.loads(fields["data"])
                    fields = {}
                else:
                    name, _, value = line.partition(": ")
                    fields[name] = value
            raise AssertionError("stream ended")

        return await asyncio.wait_for(read(), timeout_s)

    async def until_comment(self, text: str, timeout_s: float) -> None:
        async def read() -> None:
            async for line in self._lines:
                if line.startswith(":") and line[1:].strip() == text:
                    return

        await asyncio.wait_for(read(), timeout_s)


async def test_an_alert_reaches_a_connected_client_within_a_second(
    live: Live, producer: AIOKafkaProducer
) -> None:
    async with (
        httpx.AsyncClient(base_url=live.svc.base_url, timeout=30) as client,
        client.stream("GET", STREAM, headers=live.viewer) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        reader = SseReader(response)
        await reader.until_comment("connected", 15)
        sent = alert(well_id=7)
        t0 = time.monotonic()
        await send(producer, sent)
        event_id, kind, data = await reader.next_event(5)
        took = time.monotonic() - t0
    assert took < 1.0, f"the alert took {took:.2f} s"
    assert kind == "maasp_exceeded"
    assert data["event_id"] == str(sent.event_id)
    assert (data["well_id"], data["annulus_id"], data["severity"]) == (7, 70, "critical")
    assert data["message"] == sent.message and data["utilisation"] == 1.05
    assert event_id and all(":" in part for part in event_id.split(","))


async def test_filters_and_resume_from_last_event_id(
    live: Live, producer: AIOKafkaProducer
) -> None:
    async with httpx.AsyncClient(base_url=live.svc.base_url, timeout=30) as client:
        async with client.stream(
            "GET", STREAM, params={"well_id": 8, "severity": "critical"}, headers=live.viewer
        ) as response:
            reader = SseReader(response)
            await reader.until_comment("connected", 15)
            await send(producer, alert(well_id=9, n=1))  # another well: filtered out
            await send(producer, alert(well_id=8, severity=Severity.warning, n=2))  # filtered
            await send(producer, alert(well_id=8, n=3))
            first_id, _, first = await reader.next_event(5)
        assert first["message"].endswith("(3)")

        # While disconnected, two more alerts for well 8; resuming from the last id gets both,
        # in order, and nothing before them.
        await send(producer, alert(well_id=8, n=4))
        await send(producer, alert(well_id=8, n=5))
        headers = {**live.viewer, "Last-Event-ID": first_id or ""}
        async with client.stream("GET", STREAM, params={"well_id": 8}, headers=headers) as response:
            reader = SseReader(response)
            got = [(await reader.next_event(5))[2]["message"] for _ in range(2)]
        assert got == ["A annulus above MAASP (4)", "A annulus above MAASP (5)"]


async def test_stream_needs_a_token_header_or_query(live: Live) -> None:
    async with httpx.AsyncClient(base_url=live.svc.base_url, timeout=30) as client:
        r = await client.get(STREAM)
        assert r.status_code == 401
        bad = await client.get(STREAM, headers={**live.viewer, "Last-Event-ID": "garbage"})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "Last-Event-ID"
        token = live.viewer["Authorization"].removeprefix("Bearer ")
        async with client.stream("GET", STREAM, params={"access_token": token}) as response:
            assert response.status_code == 200
            await SseReader(response).until_comment("connected", 15)


async def test_alerts_are_stored_once_and_can_be_acknowledged(
    live: Live, producer: AIOKafkaProducer
) -> None:
    a = alert(well_id=11, n=6)
    marker = alert(well_id=11, n=7)
    await send(producer, a)
    await send(producer, a)  # a redelivery: the same event id
    await send(producer, marker)  # same key, same partition: stored after both copies
    async with httpx.AsyncClient(base_url=live.svc.base_url, timeout=30) as client:

        async def stored() -> list[dict[str, Any]] | None:
            r = await client.get("/api/v1/alerts", params={"well_id": 11}, headers=live.viewer)
            rows = r.json()
            return rows if str(marker.event_id) in {x["event_id"] for x in rows} else None

        rows = await poll_until(stored, 20, "alerts stored in the history")
        assert sorted(r["event_id"] for r in rows) == sorted(
            [str(a.event_id), str(marker.event_id)]
        )
        ack = await client.post(f"/api/v1/alerts/{rows[0]['id']}/ack", headers=live.engineer)
        assert ack.status_code == 200 and ack.json()["acknowledged_at"]
        refused = await client.post(f"/api/v1/alerts/{rows[0]['id']}/ack", headers=live.viewer)
        assert refused.status_code == 403
        metrics = (await client.get("/metrics")).text
        assert 'wims_api_requests_total{method="GET",route="/alerts",status="2xx"}' in metrics

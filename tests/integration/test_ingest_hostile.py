"""Ingest against big and hostile requests (issue 17), as a real process with real Kafka
and PostgreSQL: the event loop keeps answering, bad input gets a clear 4xx naming the
field, and nothing of a request (API key, body, SQL parameters) reaches the log."""

import asyncio
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from bench.ingest_latency.__main__ import hostile_requests, measure
from tests.support.factories import make_annulus, make_api_key, make_well
from tests.support.stack import ServiceProcess, Stack, start_service


@pytest.fixture(scope="module")
def ingest(stack: Stack) -> Iterator[ServiceProcess]:
    svc = start_service(stack, "ingest")
    svc.wait_ready(timeout_s=90)
    yield svc
    svc.terminate()


@pytest.fixture(scope="module")
def api_key(db_engine: Any) -> str:
    return make_api_key(db_engine, source="hostile-tests")


def _annuli(db_engine: Any, n: int) -> list[int]:
    well_id = make_well(db_engine, name=f"H-{uuid.uuid4().hex[:8]}")
    return [make_annulus(db_engine, well_id, name=chr(ord("A") + i)) for i in range(n)]


def _stamp(seconds_ago: float) -> str:
    return (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def test_healthz_answers_fast_while_big_and_hostile_requests_are_validated(
    ingest: ServiceProcess, api_key: str, db_engine: Any
) -> None:
    requests = hostile_requests(_annuli(db_engine, 4))
    result = asyncio.run(measure(ingest.base_url, api_key, requests))
    answers = {name: r.status_code for name, r in result["answers"].items()}
    bodies = {name: r.json() for name, r in result["answers"].items()}
    print(
        f"/healthz worst {result['worst'] * 1000:.1f} ms, p99 {result['p99'] * 1000:.1f} ms, "
        f"{result['probes']} probes in {result['window']:.1f} s; answers {answers}"
    )
    assert answers == {
        "json 100k": 202,
        "csv 20k columns": 400,
        "csv huge line": 400,
        "csv 30k bad rows": 422,
        "ndjson half bad": 202,
    }, bodies
    assert bodies["json 100k"]["accepted"] == 100_000 and bodies["json 100k"]["rejected"] == []
    assert "20003 columns" in bodies["csv 20k columns"]["detail"]
    assert "longer than" in bodies["csv huge line"]["detail"]
    assert bodies["csv 30k bad rows"]["rejected_count"] == 30_000
    half = bodies["ndjson half bad"]
    assert half["accepted"] == 25_000 and len(half["rejected"]) == 25_000
    assert {e["field"] for r in half["rejected"] for e in r["errors"]} == {"pressure"}
    # The target is 100 ms (bench.ingest_latency reports it); the bound here is looser so
    # that a loaded 2-core machine does not make it flaky. Before slicing, the 100,000
    # readings alone held the loop for seconds.
    assert result["worst"] < 0.5, f"/healthz took {result['worst'] * 1000:.0f} ms"


def _post(svc: ServiceProcess, key: str, content: bytes, content_type: str, path: str = "") -> Any:
    return httpx.post(
        f"{svc.base_url}/ingest/v1/readings{path}",
        content=content,
        headers={"X-API-Key": key, "Content-Type": content_type},
        timeout=60,
    )


def test_nul_bytes_and_out_of_range_values_are_rejected_by_field_never_5xx(
    ingest: ServiceProcess, api_key: str, db_engine: Any
) -> None:
    (aid,) = _annuli(db_engine, 1)
    ts = _stamp(60)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"tag": "W1\x00/ANN-A", "timestamp": ts, "pressure": 1.0}, "tag"),
        ({"annulus_id": aid, "timestamp": ts + "\x00", "pressure": 1.0}, "timestamp"),
        ({"annulus_id": aid, "timestamp": ts, "pressure": "1.0\x00"}, "pressure"),
        ({"annulus_id": aid, "timestamp": ts, "pressure": 1.0, "quality": "good\x00x"}, "quality"),
        (
            {"annulus_id": aid, "timestamp": ts, "pressure": 1.0, "pressure_unit": "b\x00ar"},
            "pressure_unit",
        ),
        (
            {"annulus_id": aid, "timestamp": ts, "pressure": 1.0, "temperature_unit": "\x00"},
            "temperature_unit",
        ),
        ({"annulus_id": f"{aid}\x00", "timestamp": ts, "pressure": 1.0}, "annulus_id"),
        ({"annulus_id": 2**63 - 1, "timestamp": ts, "pressure": 1.0}, "annulus_id"),
        ({"annulus_id": -(2**63), "timestamp": ts, "pressure": 1.0}, "annulus_id"),
        ({"annulus_id": "9" * 5000, "timestamp": ts, "pressure": 1.0}, "annulus_id"),
        ({"annulus_id": aid, "timestamp": "9999-12-31T23:59:59Z", "pressure": 1.0}, "timestamp"),
        ({"annulus_id": aid, "timestamp": ts, "pressure": 1e308}, "pressure"),
        ({"annulus_id": aid, "timestamp": ts, "pressure": 2**64 - 1}, "pressure"),
        (
            {"annulus_id": aid, "timestamp": ts, "pressure": 1.0, "temperature": -1e300},
            "temperature",
        ),
        (
            {"annulus_id": [list(range(1000))] * 1000, "timestamp": ts, "pressure": 1.0},
            "annulus_id",
        ),
        (
            {
                "annulus_id": aid,
                "timestamp": ts,
                "pressure": 1.0,
                "quality": {str(i): i for i in range(5000)},
            },
            "quality",
        ),
    ]
    good = {"annulus_id": aid, "timestamp": _stamp(30), "pressure": 2.0, "tag": None}
    r = _post(ingest, api_key, orjson.dumps([c for c, _ in cases] + [good]), "application/json")
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["accepted"] == 1
    fields = {rej["index"]: {e["field"] for e in rej["errors"]} for rej in body["rejected"]}
    for index, (_, field) in enumerate(cases):
        assert field in fields.get(index, set()), (index, field, body["rejected"])
    for rej in body["rejected"]:
        for error in rej["errors"]:
            assert len(error["reason"]) < 400  # bounded echo of hostile values
    # An integer beyond 64 bits (orjson reads it as a float): that reading is refused,
    # naming the field, never a 5xx.
    r = _post(ingest, api_key, b'[{"annulus_id": 1' + b"0" * 30 + b"}]", "application/json")
    assert r.status_code == 422, r.text
    (rejected,) = r.json()["rejected"]
    (bad_id,) = [e for e in rejected["errors"] if e["field"] == "annulus_id"]
    assert bad_id["code"] == "bad_type", r.text
    # CSV: NUL inside cells is a bad value of that field, never a 5xx.
    csv_body = f"annulus_id,timestamp,pressure,quality\n{aid},{ts},1\x00,good\n{aid},{_stamp(20)},1,go\x00od\n"
    r = _post(ingest, api_key, csv_body.encode(), "text/csv", "/csv")
    assert r.status_code == 422, r.text
    assert [e["field"] for rej in r.json()["rejected"] for e in rej["errors"]] == [
        "pressure",
        "quality",
    ]
    # Nothing hostile reached the table: only the one good reading of this annulus (the
    # sink runs in the ingest process; the CSV rows were all rejected).
    assert asyncio.run(_sleep_until_rows(db_engine, aid, 1))
    with db_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT pressure_bar FROM annulus_measurement WHERE annulus_id = :a"), {"a": aid}
        ).all()
    assert [row[0] for row in rows] == [2.0]


async def _sleep_until_rows(db_engine: Any, aid: int, n: int, timeout_s: float = 30) -> bool:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout_s
    while loop.time() < end:
        with db_engine.connect() as conn:
            count = conn.execute(
                text("SELECT count(*) FROM annulus_measurement WHERE annulus_id = :a"), {"a": aid}
            ).scalar_one()
        if count >= n:
            return True
        await asyncio.sleep(0.2)
    return False


def test_csv_header_problems_are_named_with_a_400(ingest: ServiceProcess, api_key: str) -> None:
    repeated = "annulus_id,timestamp,pressure,Pressure,quality,QUALITY\n"
    r = _post(ingest, api_key, repeated.encode(), "text/csv", "/csv")
    assert r.status_code == 400, r.text
    assert "repeats column(s): 'pressure', 'quality'" in r.json()["detail"]
    wide = ",".join(["annulus_id", "timestamp", "pressure"] + [f"x{i}" for i in range(300)])
    r = _post(ingest, api_key, (wide + "\n").encode(), "text/csv", "/csv")
    assert r.status_code == 400 and "303 columns, at most 256" in r.json()["detail"]


def test_no_api_key_body_or_sql_parameter_reaches_the_log(
    stack: Stack, ingest: ServiceProcess, api_key: str, db_engine: Any, settings: Any
) -> None:
    # A second ingest on a database without the schema: the API-key lookup fails with an
    # SQL error, the case where SQLAlchemy's message carries the statement's parameters
    # (the hash of the key).
    name = f"wims_noschema_{uuid.uuid4().hex[:8]}"
    with db_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = db_engine.url.set(database=name).render_as_string(hide_password=False)
    port = str(int(stack.env["WIMS_INGEST_PORT"]) + 50)
    other = start_service(
        stack,
        "ingest",
        extra_env={
            "WIMS_DATABASE_URL": url,
            "WIMS_INGEST_PORT": port,
            "WIMS_INGEST_SINK_ENABLED": "false",
        },
    )
    try:
        other.wait_ready(timeout_s=90)
        marker = f"body-marker-{uuid.uuid4().hex}"
        secret = f"wims_{uuid.uuid4().hex}"
        r = httpx.post(
            f"{other.base_url}/ingest/v1/readings",
            content=orjson.dumps([{"tag": marker, "timestamp": _stamp(5), "pressure": 1}]),
            headers={"X-API-Key": secret, "Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        # The main ingest: a good key, a rejected record carrying the marker.
        r = _post(
            ingest,
            api_key,
            orjson.dumps([{"tag": marker, "timestamp": _stamp(5), "pressure": 1}]),
            "application/json",
        )
        assert r.status_code == 422, r.text
    finally:
        other.terminate()
        with db_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    logs = other.log_path.read_text(errors="replace") + ingest.log_path.read_text(errors="replace")
    assert "authentication lookup failed" in logs  # the failure itself is logged...
    for leak in (
        secret,
        hashlib.sha256(secret.encode()).hexdigest(),
        api_key,
        hashlib.sha256(api_key.encode()).hexdigest(),
        marker,
        "[parameters:",
    ):
        assert leak not in logs, f"{leak!r} in the ingest log"

"""Pure parts of the api service: login throttling, SSE positions, resolutions, error fields."""

import numpy as np
import pytest

from services.api.alert_feed import format_position, parse_position, sse_message
from services.api.errors import FieldInvalid, _field_of
from services.api.processing.queries import parse_resolution
from services.api.ratelimit import SlidingWindowLimiter
from shared.domain.utilisation import LEVEL_CODES


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_limiter_refuses_after_the_limit_and_forgets_after_the_window() -> None:
    clock = Clock()
    limiter = SlidingWindowLimiter(limit=3, window_s=60, clock=clock)
    for _ in range(3):
        assert limiter.retry_after("a") == 0
        limiter.hit("a")
        clock.now += 10
    # Three hits at t=1000, 1010, 1020; now t=1030: wait until the first expires (t=1060).
    assert limiter.retry_after("a") == pytest.approx(30)
    assert limiter.retry_after("b") == 0  # keys are independent
    clock.now = 1060.5
    assert limiter.retry_after("a") == 0


def test_limiter_reset_clears_a_key() -> None:
    limiter = SlidingWindowLimiter(limit=1, window_s=60, clock=Clock())
    limiter.hit("a")
    assert limiter.retry_after("a") > 0
    limiter.reset("a")
    assert limiter.retry_after("a") == 0


def test_stream_positions_round_trip() -> None:
    positions = {2: 7, 0: 15, 1: 0}
    assert format_position(positions) == "0:15,1:0,2:7"
    assert parse_position(format_position(positions)) == positions


@pytest.mark.parametrize("bad", ["", "x", "0:", "0:-1", "a:b", "0:1;1:2"])
def test_bad_positions_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_position(bad)


def test_sse_message_layout() -> None:
    assert sse_message("maasp_exceeded", b'{"a":1}', "0:1") == (
        b'id: 0:1\nevent: maasp_exceeded\ndata: {"a":1}\n\n'
    )


@pytest.mark.parametrize(
    ("value", "seconds"), [("raw", None), ("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800)]
)
def test_resolutions(value: str, seconds: int | None) -> None:
    width = parse_resolution(value)
    assert (width.total_seconds() if width else None) == seconds


@pytest.mark.parametrize("bad", ["0s", "5", "1w", "-1h", "1.5h", "h"])
def test_bad_resolution_names_the_field(bad: str) -> None:
    with pytest.raises(FieldInvalid) as err:
        parse_resolution(bad)
    assert err.value.field == "resolution"


def test_error_field_names_drop_the_location() -> None:
    assert _field_of(("body", "top_md")) == "top_md"
    assert _field_of(("query", "limit")) == "limit"
    assert _field_of(("body", "cells", 3, "category")) == "cells.3.category"
    assert _field_of(("body",)) == "body"


async def test_one_request_timing_layer_times_by_route_template_for_api_and_ingest() -> None:
    """The api (timed and counted, streams untimed) and ingest (timed only) share one
    request-timing layer: a request is timed under its route template, never its raw path,
    and counted with its status class."""
    import httpx
    from fastapi import FastAPI
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from shared.infrastructure.observability import RequestTiming

    registry = CollectorRegistry()
    seconds = Histogram("t_seconds", "", ["route"], registry=registry)
    requests = Counter("t_requests", "", ["method", "route", "status"], registry=registry)
    app = FastAPI()

    @app.get("/wells/{well_id}")
    async def well(well_id: int) -> dict[str, int]:
        return {"id": well_id}

    @app.get("/alerts/stream")
    async def stream() -> dict[str, str]:
        return {}

    api_style = RequestTiming(
        app, seconds=seconds, requests=requests, untimed_suffixes=("/stream",)
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api_style), base_url="http://t"
    ) as client:
        for path in ("/wells/1", "/wells/2", "/wells/x", "/alerts/stream", "/nowhere"):
            await client.get(path)

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("t_seconds_count", route="/wells/{well_id}") == 3
    assert value("t_requests_total", method="GET", route="/wells/{well_id}", status="2xx") == 2
    assert value("t_requests_total", method="GET", route="/wells/{well_id}", status="4xx") == 1
    assert value("t_requests_total", method="GET", route="unmatched", status="4xx") == 1
    assert value("t_requests_total", method="GET", route="/alerts/stream", status="2xx") == 1
    assert value("t_seconds_count", route="/alerts/stream") is None  # counted, not timed
    ingest_style = RequestTiming(app, seconds=seconds)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=ingest_style), base_url="http://t"
    ) as client:
        await client.get("/alerts/stream")
    assert value("t_seconds_count", route="/alerts/stream") == 1


def test_fleet_levels_per_well_match_the_single_annulus_rule() -> None:
    """/fleet's vectorised judgement gives, per well, what judging each annulus with
    annulus_level (the /state rule) and taking the worst gives."""
    from services.api.core import annulus_level, highest_by_well

    thresholds = (0.8, 1.0, 0.05)
    annuli = [
        (1, 90.0, 100.0, *thresholds),  # warning
        (1, 50.0, 100.0, *thresholds),
        (2, None, 100.0, *thresholds),  # no (usable) reading: unknown
        (3, 5.0, 0.0, *thresholds),  # over a MAASP of 0: infinitely utilised
        (3, 10.0, 100.0, *thresholds),
        (4, 70.0, 100.0, 0.6, 0.7, 0.05),  # its own thresholds: exceeded
        (5, 70.0, 100.0, 0.9, 0.5, 0.05),  # invalid stored thresholds: the defaults
        (6, 70.0, None, *thresholds),  # no MAASP yet
    ]
    # As _ANNULI_SQL delivers them: one array per column, NaN for none.
    columns = [np.array([np.nan if v is None else v for v in c]) for c in zip(*annuli, strict=True)]
    got = highest_by_well(columns[0].astype(np.int64), *columns[1:])
    for well in {a[0] for a in annuli}:
        judged = [
            annulus_level(
                p, "good", m, {"warning_threshold": w, "exceeded_threshold": e, "clear_band": c}
            )
            for wid, p, m, w, e, c in annuli
            if wid == well
        ]
        utils = [u for _, u in judged if u is not None]
        worst = max((lvl for lvl, _ in judged), key=lambda lvl: LEVEL_CODES[lvl])
        highest = max(utils) if utils else None
        expected = None if highest is None or highest == float("inf") else highest
        assert got[well] == (expected, worst.value), well
    assert got[1] == (0.9, "warning") and got[3] == (None, "exceeded")
    assert got[4][1] == "exceeded" and got[5] == (0.7, "normal")

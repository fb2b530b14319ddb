"""Pure parts of the api service: login throttling, SSE positions, resolutions, error fields."""

import pytest

from services.api.alert_feed import format_position, parse_position, sse_message
from services.api.errors import FieldInvalid, _field_of
from services.api.ratelimit import SlidingWindowLimiter
from services.api.routers.queries import parse_resolution


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

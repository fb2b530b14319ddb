"""Ingest against big and hostile input, without services (issue 17): linear checks,
bounded echoes, slice-wise parsing and validation with the outcome of the whole."""

import asyncio
import gc
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
import pytest
from sqlalchemy.exc import OperationalError, ProgrammingError

from services.ingest import core, processing
from services.ingest.errors import describe
from shared.domain.readings import BatchValidator, iter_csv_records, validate_batch

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def _stamp(seconds: int) -> str:
    return (
        (NOW - timedelta(hours=1) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")
    )


def test_a_20000_column_csv_header_is_refused_at_once_naming_the_count() -> None:
    header = ",".join(["timestamp", "pressure", "annulus_id"] + [f"c{i}" for i in range(20_000)])
    t0 = time.perf_counter()
    with pytest.raises(ValueError, match="20003 columns, at most 256"):
        next(iter_csv_records([header + "\n", "1,2,3\n"]))
    # Was 5.65 s (names.count per name); linear now, milliseconds.
    assert time.perf_counter() - t0 < 0.5


def test_repeated_csv_columns_are_found_in_linear_time_and_named_boundedly() -> None:
    names = ["timestamp", "pressure", "annulus_id"] + [f"c{i % 120}" for i in range(240)]
    with pytest.raises(ValueError) as caught:
        next(iter_csv_records([",".join(names) + "\n"], max_columns=10_000))
    message = str(caught.value)
    assert message.startswith("CSV header repeats column(s): 'c0', 'c1', 'c10'")
    assert message.endswith("and 110 more") and len(message) < 300
    # A header lacking fields echoes a bounded part of itself.
    with pytest.raises(ValueError, match="lacks timestamp") as caught:
        next(iter_csv_records([",".join("x" * 5000 + str(i) for i in range(200)) + "\n"]))
    assert len(str(caught.value)) < 1200


def _records(n: int, annuli: int = 7) -> list[Any]:
    out: list[Any] = []
    for i in range(n):
        out.append(
            {"annulus_id": 1 + i % annuli, "timestamp": _stamp(i // annuli), "pressure": 5.0}
        )
        if i % 11 == 0:
            out.append(
                dict(out[i // 2])
            )  # a duplicate of an earlier record, often in an earlier slice
        if i % 13 == 0:
            out.append({"annulus_id": "x", "timestamp": "nope", "pressure": "bad"})
    return out


def test_batch_validator_slices_give_the_outcome_of_one_validate_batch() -> None:
    records = _records(3000)
    kw: dict[str, Any] = {
        "source": "pi",
        "now": NOW,
        "resolve_tag": lambda t: None,
        "annulus_exists": lambda a: True,
    }
    whole = validate_batch(records, **kw)
    validator = BatchValidator(**kw)
    for start in range(0, len(records), 257):
        validator.feed(records[start : start + 257])
    sliced = validator.result
    assert sliced.accepted == whole.accepted
    assert [(r.index, r.errors) for r in sliced.rejected] == [
        (r.index, r.errors) for r in whole.rejected
    ]
    assert any(e.code == "duplicate" for r in whole.rejected for e in r.errors)


def test_a_huge_value_is_echoed_as_its_type_and_size_and_costs_no_repr() -> None:
    huge = [list(range(1000))] * 2000
    t0 = time.perf_counter()
    result = validate_batch(
        [
            {
                "annulus_id": huge,
                "timestamp": _stamp(0),
                "pressure": 1.0,
                "quality": {str(i): 1 for i in range(10_000)},
            }
        ],
        source="pi",
        now=NOW,
        resolve_tag=lambda t: None,
        annulus_exists=lambda a: True,
    )
    elapsed = time.perf_counter() - t0
    errors = {e.field: e.reason for e in result.rejected[0].errors}
    assert errors["annulus_id"] == "annulus_id must be a positive integer, got <list of 2000 items>"
    assert errors["quality"].startswith("unrecognised quality <dict of 10000 items>")
    assert elapsed < 0.2, elapsed  # repr() of the list alone took ~0.5 s


def _big_body(n: int) -> list[Any]:
    records: list[Any] = []
    for i in range(n):
        record: dict[str, Any] = {"annulus_id": i, "timestamp": _stamp(i), "pressure": i / 3}
        if i % 5 == 0:  # a PI flags object: "}," inside a record
            record["quality"] = {"Good": True, "Questionable": False}
        if i % 7 == 0:  # the separator inside a string
            record["tag"] = 'W1},{"annulus_id": 3},  {x'
        if i % 1000 == 0:  # a nested array of objects: "}, {" inside a record
            record["extra"] = [{"a": 1}, {"b": 2}]
        records.append(record)
    return records


@pytest.mark.parametrize("indent", [False, True])
def test_a_big_json_array_parsed_in_pieces_equals_one_loads(indent: bool) -> None:
    records = _big_body(30_000)
    body = orjson.dumps(records, option=orjson.OPT_INDENT_2 if indent else 0)
    assert len(body) > 4 * core.JSON_PIECE_BYTES
    turns = 0

    async def parse() -> list[Any]:
        nonlocal turns

        async def count_turns() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        ticker = asyncio.create_task(count_turns())
        try:
            return await processing.parse_json_array(b"  \n" + body, 100_000)
        finally:
            ticker.cancel()

    assert asyncio.run(parse()) == records
    # Other tasks ran between pieces, all along the body (no fallback to one big call).
    assert turns >= len(body) // (4 * core.JSON_PIECE_BYTES)


def test_a_big_json_body_that_is_broken_not_an_array_or_too_long_gets_a_4xx() -> None:
    body = orjson.dumps(_big_body(20_000))

    def status(data: bytes, limit: int = 100_000) -> tuple[int, str]:
        try:
            asyncio.run(processing.parse_json_array(data, limit))
        except core.IngestError as exc:
            return exc.status, exc.detail
        return 200, ""

    code, detail = status(body[:-10])
    assert code == 400 and "not valid JSON" in detail
    assert status(body + b"x")[0] == 400
    assert status(body.replace(b"[", b"{", 1))[0] == 422
    assert status(b"{" + body[1:-1] + b"}")[0] == 422
    code, detail = status(body, limit=5000)
    assert code == 413 and "at most 5000" in detail


def test_a_csv_line_without_end_is_refused_after_the_lookahead_not_buffered_whole() -> None:
    feed = core.LineFeed()
    feed.add_text("annulus_id,timestamp,pressure\n")
    piece = "1," * 32 * 1024  # 64 KiB
    fed = 0
    with pytest.raises(core.LineTooLong):
        for _ in range(512):  # 32 MiB if it were all taken
            feed.add_text(piece)
            fed += len(piece)
    assert fed <= core.CSV_LOOKAHEAD_CHARS + len(piece)
    # A long line that does end is still a line.
    ok = core.LineFeed()
    ok.add_text("a" * 1000)
    ok.add_text("b" * 1000 + "\nc")
    ok.finish()
    assert list(ok) == ["a" * 1000 + "b" * 1000 + "\n", "c"]


def test_database_errors_are_logged_without_sql_parameters_or_data() -> None:
    secret = "5e3c0ffee0ddba11"
    statement = ProgrammingError(
        "SELECT source, revoked_at FROM api_key WHERE key_hash = %(h)s",
        {"h": secret},
        psycopg.errors.UndefinedTable('relation "api_key" does not exist'),
    )
    assert secret not in repr(statement) or True  # (SQLAlchemy puts it there: see below)
    assert secret in str(statement)
    described = describe(statement)
    assert secret not in described and "UndefinedTable" in described
    data = psycopg.errors.InvalidTextRepresentation(
        f'invalid input syntax for type uuid: "{secret}"'
    )
    assert secret not in describe(data)
    down = OperationalError(
        "SELECT 1", {"h": secret}, psycopg.OperationalError("connection refused")
    )
    assert describe(down).endswith("connection refused") and secret not in describe(down)


def test_big_pushes_share_one_collector_pause_bounded_in_length() -> None:
    pause = processing.CollectionPause(max_s=0.05)

    async def scenario() -> list[bool]:
        seen: list[bool] = []
        first_in, second_in, late_in = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def push(entered: asyncio.Event, leave: asyncio.Event) -> None:
            async with pause.hold():
                entered.set()
                await leave.wait()

        leave_first, leave_second, leave_late = asyncio.Event(), asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(push(first_in, leave_first))
        await first_in.wait()
        seen.append(gc.isenabled())  # paused
        second = asyncio.create_task(push(second_in, leave_second))
        await second_in.wait()
        leave_first.set()
        await first
        seen.append(gc.isenabled())  # still paused: the second push is in flight
        await asyncio.sleep(0.06)
        late = asyncio.create_task(push(late_in, leave_late))  # after max_s: does not extend
        await late_in.wait()
        leave_second.set()
        await second
        seen.append(gc.isenabled())  # back on, although the late push is still running
        leave_late.set()
        await late
        seen.append(gc.isenabled())
        return seen

    assert gc.isenabled()
    assert asyncio.run(scenario()) == [False, False, True, True]


def test_a_dead_letter_too_big_for_kafka_carries_a_note_instead_of_the_record() -> None:
    from services.ingest.core import DEAD_LETTER_MAX_BYTES, rejected_value
    from shared.contracts.events import decode
    from shared.domain.readings import FieldError, Rejection

    error = (FieldError("annulus_id", "annulus_id must be a positive integer", "bad_type"),)
    huge = Rejection(3, error, {"annulus_id": [list(range(1000))] * 1000})
    value = rejected_value(huge, "pi", NOW)
    assert len(value) <= DEAD_LETTER_MAX_BYTES
    event = decode("wims.readings.rejected", value)
    assert event.index == 3 and event.errors[0].field == "annulus_id"
    assert event.record.startswith("(record omitted: ")
    small = Rejection(4, error, {"annulus_id": "x"})
    assert decode("wims.readings.rejected", rejected_value(small, "pi", NOW)).record == {
        "annulus_id": "x"
    }

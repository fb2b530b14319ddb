"""The ingest service's pure core: request bodies into records, records into answers and
dead letters, ``wims.readings`` values into COPY lines. No I/O, no clock.

The rules one reading must follow are in shared/domain/readings.py; this module cuts the
bodies into records for them (JSON arrays in pieces, NDJSON lines, CSV lines as the stream
brings them) and writes down what the rules decided. Long parses are generators that yield
between two pieces: the caller (processing.py) gives the event loop a turn there.
"""

import re
from collections import deque
from collections.abc import Generator, Iterator
from datetime import datetime
from typing import Any

import orjson

from shared.contracts.events import FieldErrorModel, RejectedReading
from shared.domain.readings import (
    REASON_UNKNOWN_ANNULUS,
    REASON_UNKNOWN_TAG,
    MalformedCsvRow,
    Rejection,
)

BULK_SOURCE = "bulk_import"
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
CSV_TYPES = frozenset({"text/csv", "application/csv"})
# Text buffered ahead of the CSV parser. A record (a row, or a quoted field spanning lines)
# longer than this is refused: the parser must never run dry in the middle of a record.
CSV_LOOKAHEAD_CHARS = 256 * 1024
MISS_CODES = frozenset({REASON_UNKNOWN_TAG, REASON_UNKNOWN_ANNULUS})
# A JSON array body bigger than twice this is parsed as several orjson.loads calls of about
# this size, with a turn of the event loop between them: orjson holds the GIL, and one call
# on a 100,000-reading body (8 MB) held the loop for 0.1-0.3 s on a 2-core machine.
JSON_PIECE_BYTES = 64 * 1024
# Where one element of a top-level array of objects ends and the next begins: "}", ",",
# "{" with optional whitespace. The same bytes inside a string or a nested array of
# objects make a piece that does not parse (see json_array_steps).
_RECORD_SEPARATOR = re.compile(rb"\}\s*,\s*\{")
# Separators tried for the end of one piece before the rest is parsed in one call.
JSON_PIECE_TRIES = 8
_LEADING_SPACE = re.compile(rb"\s*")


class IngestError(Exception):
    """A push refused as a whole: its status, and the body and headers of the answer."""

    def __init__(
        self,
        status: int,
        detail: str,
        field: str = "body",
        code: str = "invalid",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field, self.code = status, detail, field, code
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {
            "detail": self.detail,
            "errors": [{"field": self.field, "reason": self.detail, "code": self.code}],
            **self.extra,
        }


def rejection_body(rejection: Rejection) -> dict[str, Any]:
    """One entry of an answer's ``rejected`` list."""
    return {
        "index": rejection.index,
        "errors": [
            {"field": e.field, "reason": e.reason, "code": e.code} for e in rejection.errors
        ],
    }


def json_array_steps(body: bytes, limit: int) -> Generator[None, None, list[Any]]:
    """The records of a JSON array body, as ``orjson.loads(body)`` gives them (the
    generator's return value), parsed in pieces of about JSON_PIECE_BYTES; it yields between
    two pieces, for the caller to give the event loop a turn.

    A piece runs from the start of one element to the end of another, cut at a separator
    ``}, {``; it is parsed as ``[piece]``. Such a piece parses only if the cut really lies
    between two top-level elements: a cut inside a string leaves that string unterminated,
    a cut inside a nested object or array leaves its record unclosed. If a piece does not
    parse, the rest of the body is parsed in one call (same result as the whole body, or
    the error). IngestError: not JSON (400), not an array (422), more than ``limit``
    records (413)."""
    if len(body) <= 2 * JSON_PIECE_BYTES:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise IngestError(
                400, f"body is not valid JSON: {exc}", code="malformed_json"
            ) from None
        if type(parsed) is not list:
            raise not_an_array(type(parsed).__name__)
        return parsed
    first = _LEADING_SPACE.match(body)
    pos = first.end() if first else 0
    if body[pos : pos + 1] != b"[":
        # Parsing megabytes only to say which kind of non-array it is would hold the loop.
        raise not_an_array(f"a body starting with {body[pos : pos + 1]!r}")
    pos += 1
    records: list[Any] = []
    loads = orjson.loads
    while True:
        cut = _RECORD_SEPARATOR.search(body, pos + JSON_PIECE_BYTES)
        part: list[Any] | None = None
        for _ in range(JSON_PIECE_TRIES):
            piece = b"[" + body[pos : cut.start() + 1] + b"]" if cut else b"[" + body[pos:]
            try:
                part = loads(piece)
                break
            except orjson.JSONDecodeError:
                if cut is None:
                    break
                # A separator inside a string or a nested value: end at the next one.
                cut = _RECORD_SEPARATOR.search(body, cut.end())
        if part is None:
            try:  # still no clean cut (or not JSON at all): the rest in one call
                part = loads(b"[" + body[pos:])
            except orjson.JSONDecodeError as exc:
                raise IngestError(
                    400,
                    f"body is not valid JSON (after its first {len(records)} records): {exc}",
                    code="malformed_json",
                ) from None
            cut = None
        records += part
        if len(records) > limit:
            raise too_many(len(records), limit, at_least=cut is not None)
        if cut is None:
            return records
        pos = cut.end() - 1
        yield


def not_an_array(what: str) -> IngestError:
    return IngestError(
        422, f"body must be a JSON array of readings, got {what}", code="not_an_array"
    )


def too_many(count: int, limit: int, at_least: bool = False) -> IngestError:
    more = "more than " if at_least else ""
    return IngestError(
        413, f"{more}{count} readings in one request; at most {limit}", code="too_many_records"
    )


def ndjson_steps(body: bytes, step: int) -> Generator[None, None, list[Any]]:
    """The records of an NDJSON body (the generator's return value); a line that is not JSON
    is a record the validation rejects. Yields every ``step`` lines."""
    records: list[Any] = []
    loads = orjson.loads
    for lineno, line in enumerate(body.split(b"\n"), start=1):
        if lineno % step == 0:
            yield
        if not line.strip():
            continue
        try:
            records.append(loads(line))
        except orjson.JSONDecodeError as exc:
            text = line[:200].decode("utf-8", "replace")
            records.append(
                MalformedCsvRow([("line", text)], f"NDJSON line {lineno} is not valid JSON: {exc}")
            )
    return records


class NeedMoreInput(Exception):
    pass


class LineTooLong(Exception):
    pass


class LineFeed:
    """Lines for csv.reader, filled from the request stream as it arrives.

    The unfinished last line is kept as a list of pieces and refused once longer than
    CSV_LOOKAHEAD_CHARS: joining it to every new piece of the body would copy a line of
    megabytes without a newline over and over (quadratic), and hold it all in memory."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque()
        self.chars = 0
        self.eof = False
        self._pending: list[str] = []
        self._pending_chars = 0

    def add_text(self, text: str) -> None:
        parts = text.split("\n")
        tail = parts.pop()
        if parts:
            parts[0] = "".join(self._pending) + parts[0]
            self._pending, self._pending_chars = [], 0
            for part in parts:
                line = part + "\n"  # kept: csv needs it for quoted fields spanning lines
                if len(line) > CSV_LOOKAHEAD_CHARS:
                    raise LineTooLong
                self.lines.append(line)
                self.chars += len(line)
        if tail:
            self._pending.append(tail)
            self._pending_chars += len(tail)
            if self._pending_chars > CSV_LOOKAHEAD_CHARS:
                raise LineTooLong

    def finish(self) -> None:
        if self._pending:
            line = "".join(self._pending)
            self.lines.append(line)
            self.chars += len(line)
            self._pending, self._pending_chars = [], 0
        self.eof = True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self.lines:
            line = self.lines.popleft()
            self.chars -= len(line)
            return line
        if self.eof:
            raise StopIteration
        raise NeedMoreInput


# A dead letter bigger than this carries a note instead of the record: Kafka refuses a
# message over its max.message.bytes (1 MiB by default), and one refused dead letter made
# the whole push a 503 before.
DEAD_LETTER_MAX_BYTES = 512 * 1024


def rejected_value(rejection: Rejection, source: str, received_at: datetime) -> bytes:
    """The ``wims.readings.rejected`` value (dead letter) of one refused record."""
    errors = [
        FieldErrorModel(field=e.field, reason=e.reason, code=e.code) for e in rejection.errors
    ]
    value = RejectedReading(
        source=source,
        index=rejection.index,
        record=rejection.record,
        errors=errors,
        received_at=received_at,
    ).encode()
    if len(value) <= DEAD_LETTER_MAX_BYTES:
        return value
    return RejectedReading(
        source=source,
        index=rejection.index,
        record=f"(record omitted: {len(value)} bytes as a dead letter, over {DEAD_LETTER_MAX_BYTES})",
        errors=errors,
        received_at=received_at,
    ).encode()


# What the readings sink decodes (pump.py) and stores (store.py). Decoding uses orjson and a
# few type checks rather than the pydantic model: this runs for every reading, and the
# values were produced by the ingest service from validated data.
_QUALITIES = frozenset({"good", "uncertain", "bad"})


def _copy_text(value: str) -> str:
    # COPY text format: backslash, tab, newline and carriage return must be escaped.
    return (
        value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    )


def _num(value: Any) -> str:
    if value is None:
        return "\\N"
    if type(value) is float or type(value) is int:
        return repr(float(value))
    raise ValueError(f"a number field holds a {type(value).__name__}")  # not the value itself


def copy_line(value: bytes) -> str:
    """One COPY text line (with newline) from a ``wims.readings`` value; ValueError if bad.

    The columns are store.COLUMNS, in that order."""
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if type(d) is not dict or d.get("event_type") != "reading":
        raise ValueError("not a reading event")
    event_id, annulus_id, ts = d.get("event_id"), d.get("annulus_id"), d.get("ts")
    source, quality, received_at = d.get("source"), d.get("quality"), d.get("received_at")
    if not (
        type(event_id) is str
        and len(event_id) == 36
        and type(annulus_id) is int
        and type(ts) is str
        and type(source) is str
        and quality in _QUALITIES
        and type(received_at) is str
    ):
        raise ValueError("a reading field is missing or of the wrong type")
    # Strings of hex/digits/punctuation only are safe unescaped; anything else is escaped.
    for s in (event_id, ts, received_at):
        if not s.isascii() or "\\" in s or "\t" in s or "\n" in s:
            raise ValueError("malformed id or timestamp")
    return (
        f"{event_id}\t{annulus_id}\t{ts}\t{_copy_text(source)}\t{_num(d.get('pressure_bar'))}\t"
        f"{_num(d.get('temperature_c'))}\t{quality}\t{received_at}\n"
    )

"""The ingest HTTP service (FastAPI): SCADA historians and engineers push readings.

Routes, under ``/ingest/v1``:

- ``POST /readings``: a JSON array of readings (``application/json``) or NDJSON
  (``application/x-ndjson``, one reading per line; blank lines ignored, a line that is not
  JSON is rejected as that record). At most ``WIMS_INGEST_MAX_RECORDS`` readings (default
  100,000) and ``WIMS_INGEST_MAX_BODY_BYTES`` (default 32 MiB); more: 413.
- ``POST /readings/csv`` (``text/csv``): a historian export with a header row naming the
  same fields as the JSON form. Streamed: rows are parsed as the body arrives and produced
  in chunks of ``WIMS_INGEST_CSV_CHUNK_RECORDS``; memory stays bounded whatever the size.
  Readings get the source ``bulk_import``. Indexes in the answer are 0-based data rows.

One reading: ``{"annulus_id": 17, "timestamp": "2026-11-25T10:00:00Z", "pressure": 1450.3,
"pressure_unit": "psi", "temperature": 61.2, "temperature_unit": "degC", "quality":
"good"}``; ``"tag"`` may stand for ``annulus_id`` (see shared/domain/readings.py for every
rule).

Answers: ``202 {"accepted": n, "rejected": [{"index", "errors": [{"field", "reason",
"code"}]}]}`` when at least one reading was accepted, 422 with the same body when none was.
A 202 is sent only after Kafka acknowledged every accepted reading; if it does not within
``WIMS_INGEST_KAFKA_TIMEOUT_S``, 503 with ``Retry-After``. A 503 means "not accepted as a
whole, push it again": readings are spread over partitions and Kafka has no atomic write
across them without transactions, so if the broker fails part-way some of a 503'd push may
already be stored; re-pushing is always safe (reading ids are deterministic and storage
keeps one row per reading). With the broker down, nothing of the push is written (the
producer is abandoned, not left retrying: see publisher.py). Malformed bodies:
400 (not JSON / not CSV), 413 (too large), 415 (content type), 422 (not an array), each
with ``{"detail", "errors": [{"field", "reason", "code"}]}``. Auth: see auth.py.

The same process runs the sink (sink.py) unless ``WIMS_INGEST_SINK_ENABLED=false``; then
``wims serve ingest-sink`` runs it alone (``create_sink_app``). Wherever the sink runs, the
maintenance of its table runs too (maintenance.py: partitions ahead, retention).
"""

import asyncio
import codecs
import contextlib
import gc
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.ingest import openapi
from services.ingest.auth import Authenticator, AuthError, Principal
from services.ingest.errors import describe
from services.ingest.lookups import ReferenceCache
from services.ingest.maintenance import run_periodically
from services.ingest.metrics import READINGS_ACCEPTED, READINGS_REJECTED, REQUEST_SECONDS
from services.ingest.publisher import KafkaUnavailable, ReadingPublisher
from services.ingest.sink import SINK_GROUP, MeasurementSink
from shared.domain.readings import (
    REASON_UNKNOWN_ANNULUS,
    REASON_UNKNOWN_TAG,
    BatchResult,
    BatchValidator,
    MalformedCsvRow,
    Rejection,
    iter_csv_records,
)
from shared.infrastructure.gc_tuning import freeze_startup_heap
from shared.infrastructure.http_app import make_http_app
from shared.infrastructure.kafka import export_lag_periodically
from shared.infrastructure.observability import RequestTiming
from shared.infrastructure.settings import Settings, get_settings

log = logging.getLogger(__name__)
PREFIX = "/ingest/v1"
BULK_SOURCE = "bulk_import"
JSON_TYPES = frozenset({"application/json"})
NDJSON_TYPES = frozenset({"application/x-ndjson", "application/ndjson", "application/jsonl"})
CSV_TYPES = frozenset({"text/csv", "application/csv"})
# Text buffered ahead of the CSV parser. A record (a row, or a quoted field spanning lines)
# longer than this is refused: the parser must never run dry in the middle of a record.
CSV_LOOKAHEAD_CHARS = 256 * 1024
_MISS_CODES = frozenset({REASON_UNKNOWN_TAG, REASON_UNKNOWN_ANNULUS})
# A JSON array body bigger than twice this is parsed as several orjson.loads calls of about
# this size, with a turn of the event loop between them: orjson holds the GIL, and one call
# on a 100,000-reading body (8 MB) held the loop for 0.1-0.3 s on a 2-core machine.
JSON_PIECE_BYTES = 64 * 1024
# Where one element of a top-level array of objects ends and the next begins: "}", ",",
# "{" with optional whitespace. The same bytes inside a string or a nested array of
# objects make a piece that does not parse (see _parse_json_array).
_RECORD_SEPARATOR = re.compile(rb"\}\s*,\s*\{")
# Separators tried for the end of one piece before the rest is parsed in one call.
JSON_PIECE_TRIES = 8
_LEADING_SPACE = re.compile(rb"\s*")


class CollectionPause:
    """The cyclic garbage collector paused while big pushes are in flight.

    A 100,000-reading push keeps some 300,000 tracked objects alive (records, readings,
    ids) until it is answered; the collections its allocations trigger walked them again
    and again, each full one holding the loop for 80-240 ms on a loaded 2-core machine,
    about half of the request's time (measured with gc.callbacks; see shared/infrastructure/gc_tuning.py).
    They are freed by reference counting when the request ends, so nothing is lost by not
    walking them. Overlapping pushes share one pause; a push starting when the pause has
    lasted ``max_s`` does not extend it, so the collector runs again at the latest when
    the pushes that were in flight then are answered.
    """

    def __init__(self, max_s: float = 2.0) -> None:
        self.max_s = max_s
        self._holders = 0
        self._since = 0.0

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        now = time.monotonic()
        if self._holders == 0:
            if not gc.isenabled():  # paused by someone else: not ours to resume
                yield
                return
            gc.disable()
            self._since = now
        elif now - self._since > self.max_s:
            yield  # the pause is long enough; this push runs within what is left of it
            return
        self._holders += 1
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                gc.enable()


# Bodies from this size on are big enough for the collector's walks to matter (a push of
# 1,000 readings, about 80 KB, is not).
GC_PAUSE_MIN_BYTES = 512 * 1024


class IngestError(Exception):
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

    def response(self) -> Response:
        body = {
            "detail": self.detail,
            "errors": [{"field": self.field, "reason": self.detail, "code": self.code}],
            **self.extra,
        }
        return _json(body, self.status, self.headers)


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class Ingestor:
    """Validation, publishing and the answer, shared by the JSON, NDJSON and CSV routes."""

    def __init__(self, settings: Settings, cache: ReferenceCache, publisher: ReadingPublisher):
        self.settings = settings
        self.cache = cache
        self.publisher = publisher

    async def validate(self, records: list[Any], source: str) -> tuple[BatchResult, datetime]:
        now = datetime.now(UTC)
        result, missed = await self._validate(records, source, now)
        if missed and await self.cache.reload_after_miss():
            # A tag or annulus created since the last load works on its first push.
            result, _ = await self._validate(records, source, now)
        return result, now

    async def _validate(
        self, records: list[Any], source: str, now: datetime
    ) -> tuple[BatchResult, bool]:
        """Validate a slice of records at a time, serving other requests in between.

        Validation is pure Python and holds the GIL, so a worker thread would not free the
        loop (measured: README.md, "Push a reading"); slices keep the longest hold to the
        time of ``ingest_slice_records`` records."""
        cache = self.cache
        validator = BatchValidator(
            source=source,
            now=now,
            resolve_tag=cache.resolve_tag,
            annulus_exists=cache.annulus_exists,
        )
        step = self.settings.ingest_slice_records
        missed = False
        for start in range(0, len(records), step):
            if start:
                await asyncio.sleep(0)
            part = validator.feed(records[start : start + step])
            if not missed:
                missed = any(e.code in _MISS_CODES for r in part.rejected for e in r.errors)
        return validator.result, missed

    async def publish(self, result: BatchResult, now: datetime, source: str) -> None:
        try:
            await self.publisher.publish(
                result.accepted, self.cache.well_of, now, result.rejected, source
            )
        except KafkaUnavailable as exc:
            log.warning("push refused: %s", exc)
            raise self.unavailable() from None
        READINGS_ACCEPTED.inc(len(result.accepted))
        counts: dict[str, int] = {}
        step = self.settings.ingest_slice_records
        for i, rejection in enumerate(result.rejected, 1):
            for error in rejection.errors:
                counts[error.code] = counts.get(error.code, 0) + 1
            if i % step == 0:
                await asyncio.sleep(0)
        for code, n in counts.items():
            READINGS_REJECTED.labels(code).inc(n)

    def unavailable(self, **extra: Any) -> IngestError:
        retry = str(self.settings.ingest_retry_after_s)
        return IngestError(
            503,
            "Kafka did not acknowledge every reading of this push in time, so the push is "
            "not accepted: push it again (re-pushing never stores a reading twice)",
            code="kafka_unavailable",
            headers={"Retry-After": retry},
            **extra,
        )


def _rejection_body(rejection: Rejection) -> dict[str, Any]:
    return {
        "index": rejection.index,
        "errors": [
            {"field": e.field, "reason": e.reason, "code": e.code} for e in rejection.errors
        ],
    }


async def _answer(accepted: int, rejected: list[Rejection], step: int, **extra: Any) -> Response:
    bodies: list[dict[str, Any]] = []
    for start in range(0, len(rejected), step):
        if start:
            await asyncio.sleep(0)
        bodies += [_rejection_body(r) for r in rejected[start : start + step]]
    body = {"accepted": accepted, "rejected": bodies, **extra}
    return _json(body, 202 if accepted else 422)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise IngestError(
            413, f"body of {declared} bytes exceeds the limit of {limit} bytes", code="too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(413, f"body exceeds the limit of {limit} bytes", code="too_large")
        chunks.append(chunk)
    return b"".join(chunks)


async def _parse_json_array(body: bytes, limit: int) -> list[Any]:
    """The records of a JSON array body, as ``orjson.loads(body)`` gives them, parsed in
    pieces of about JSON_PIECE_BYTES with a turn of the event loop between two.

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
            raise _not_an_array(type(parsed).__name__)
        return parsed
    first = _LEADING_SPACE.match(body)
    pos = first.end() if first else 0
    if body[pos : pos + 1] != b"[":
        # Parsing megabytes only to say which kind of non-array it is would hold the loop.
        raise _not_an_array(f"a body starting with {body[pos : pos + 1]!r}")
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
            raise _too_many(len(records), limit, at_least=cut is not None)
        if cut is None:
            return records
        pos = cut.end() - 1
        await asyncio.sleep(0)


def _not_an_array(what: str) -> "IngestError":
    return IngestError(
        422, f"body must be a JSON array of readings, got {what}", code="not_an_array"
    )


def _too_many(count: int, limit: int, at_least: bool = False) -> "IngestError":
    more = "more than " if at_least else ""
    return IngestError(
        413, f"{more}{count} readings in one request; at most {limit}", code="too_many_records"
    )


async def _ndjson_records(body: bytes, step: int) -> list[Any]:
    records: list[Any] = []
    loads = orjson.loads
    for lineno, line in enumerate(body.split(b"\n"), start=1):
        if lineno % step == 0:
            await asyncio.sleep(0)
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


class _NeedMoreInput(Exception):
    pass


class _LineTooLong(Exception):
    pass


class _LineFeed:
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
                    raise _LineTooLong
                self.lines.append(line)
                self.chars += len(line)
        if tail:
            self._pending.append(tail)
            self._pending_chars += len(tail)
            if self._pending_chars > CSV_LOOKAHEAD_CHARS:
                raise _LineTooLong

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
        raise _NeedMoreInput


async def _authenticate(request: Request) -> Principal:
    auth: Authenticator = request.app.state.authenticator
    try:
        return await auth.authenticate(
            request.headers.get("x-api-key"), request.headers.get("authorization")
        )
    except AuthError as exc:
        headers = (
            {"WWW-Authenticate": 'Bearer, ApiKey header="X-API-Key"'} if exc.status == 401 else {}
        )
        raise IngestError(
            exc.status, exc.detail, field="credentials", code=exc.reason, headers=headers
        ) from None
    except Exception as exc:  # the database is away: not the client's fault, not a 500
        log.warning("authentication lookup failed: %s", describe(exc))
        raise IngestError(
            503,
            "credentials cannot be checked now (database unavailable)",
            field="credentials",
            code="unavailable",
            headers={"Retry-After": str(request.app.state.settings.ingest_retry_after_s)},
        ) from None


async def push_readings(request: Request) -> Response:
    """Push readings as a JSON array or NDJSON; 202 only once Kafka has them."""
    try:
        principal = await _authenticate(request)
        media = _media_type(request)
        if media not in JSON_TYPES and media not in NDJSON_TYPES and not media.endswith("+json"):
            raise IngestError(
                415,
                f"content type {media or '(none)'!r} is not accepted: send application/json "
                "(an array of readings) or application/x-ndjson",
                field="content-type",
                code="unsupported_media_type",
            )
        settings: Settings = request.app.state.settings
        body = await _read_body(request, settings.ingest_max_body_bytes)
        if len(body) < GC_PAUSE_MIN_BYTES:
            return await _push_body(request, body, media, principal, settings)
        pause: CollectionPause = request.app.state.collection_pause
        async with pause.hold():
            return await _push_body(request, body, media, principal, settings)
    except IngestError as exc:
        return exc.response()


async def _push_body(
    request: Request, body: bytes, media: str, principal: Principal, settings: Settings
) -> Response:
    step = settings.ingest_slice_records
    if media in NDJSON_TYPES:
        records = await _ndjson_records(body, step)
    else:
        records = await _parse_json_array(body, settings.ingest_max_records)
    if len(records) > settings.ingest_max_records:
        raise _too_many(len(records), settings.ingest_max_records)
    if not records:
        raise IngestError(422, "the request holds no readings", code="empty")
    ingestor: Ingestor = request.app.state.ingestor
    result, now = await ingestor.validate(records, principal.source)
    await ingestor.publish(result, now, principal.source)
    return await _answer(len(result.accepted), result.rejected, step)


async def push_csv(request: Request) -> Response:
    """Bulk import of a historian CSV export, streamed; source ``bulk_import``."""
    try:
        await _authenticate(request)
        media = _media_type(request)
        if media not in CSV_TYPES:
            raise IngestError(
                415,
                f"content type {media or '(none)'!r} is not accepted: send text/csv",
                field="content-type",
                code="unsupported_media_type",
            )
        return await _import_csv(request)
    except IngestError as exc:
        return exc.response()


async def _import_csv(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    ingestor: Ingestor = request.app.state.ingestor
    chunk_size = settings.ingest_csv_chunk_records
    max_reported = settings.ingest_max_reported_rejections
    step = settings.ingest_slice_records
    feed = _LineFeed()
    records = iter_csv_records(feed, settings.ingest_csv_max_columns)
    decoder = codecs.getincrementaldecoder("utf-8")()
    chunk: list[Any] = []
    state = {"base": 0, "accepted": 0, "rejected_count": 0}
    reported: list[Rejection] = []

    async def flush() -> None:
        if not chunk:
            return
        result, now = await ingestor.validate(chunk, BULK_SOURCE)
        base = state["base"]
        if base:
            result.rejected = [
                Rejection(base + r.index, r.errors, r.record) for r in result.rejected
            ]
        try:
            await ingestor.publish(result, now, BULK_SOURCE)
        except IngestError as exc:
            # Earlier chunks are durable; say so, so the client knows where it stands.
            exc.extra["accepted_before_failure"] = state["accepted"]
            raise
        state["base"] += len(chunk)
        state["accepted"] += len(result.accepted)
        state["rejected_count"] += len(result.rejected)
        room = max_reported - len(reported)
        reported.extend(result.rejected[:room])
        chunk.clear()

    async def pull(until_eof: bool) -> None:
        while feed.lines and (until_eof or feed.chars >= CSV_LOOKAHEAD_CHARS):
            try:
                record = next(records)
            except StopIteration:
                return
            except _NeedMoreInput:
                raise IngestError(
                    400,
                    f"a CSV record is longer than {CSV_LOOKAHEAD_CHARS} characters "
                    "(an unbalanced quote?)",
                    code="malformed_csv",
                    accepted_before_failure=state["accepted"],
                ) from None
            except ValueError as exc:  # header problems, untokenisable input
                raise IngestError(
                    400, str(exc), code="malformed_csv", accepted_before_failure=state["accepted"]
                ) from None
            chunk.append(record)
            if len(chunk) >= chunk_size:
                await flush()
            elif len(chunk) % step == 0:
                await asyncio.sleep(0)

    def too_long() -> IngestError:
        return IngestError(
            400,
            f"a CSV line is longer than {CSV_LOOKAHEAD_CHARS} characters "
            "(lines must end with a newline)",
            code="malformed_csv",
            accepted_before_failure=state["accepted"],
        )

    try:
        async for data in request.stream():
            feed.add_text(decoder.decode(data))
            await pull(until_eof=False)
        feed.add_text(decoder.decode(b"", final=True))
    except UnicodeDecodeError as exc:
        raise IngestError(
            400,
            f"body is not UTF-8: {exc}",
            code="malformed_csv",
            accepted_before_failure=state["accepted"],
        ) from None
    except _LineTooLong:
        raise too_long() from None
    feed.finish()
    await pull(until_eof=True)
    try:  # a header-only or empty body: the generator raises when first asked
        record = next(records)
        chunk.append(record)
    except StopIteration:
        pass
    except (ValueError, _NeedMoreInput) as exc:
        raise IngestError(400, str(exc) or "malformed CSV", code="malformed_csv") from None
    await flush()
    truncated = state["rejected_count"] > len(reported)
    return await _answer(
        state["accepted"],
        reported,
        step,
        rejected_count=state["rejected_count"],
        rejected_truncated=truncated,
    )


async def _startup(app: FastAPI) -> None:
    settings: Settings = app.state.settings
    cache = ReferenceCache(
        app.state.engine, settings.ingest_lookup_refresh_s, settings.ingest_lookup_miss_refresh_s
    )
    try:
        await cache.reload()
    except Exception as exc:  # the database away at start: /readyz says so, reload on miss
        log.warning("initial reference load failed: %s", describe(exc))
    publisher = ReadingPublisher(settings)
    await publisher.start()
    app.state.publisher = publisher
    app.state.ingestor = Ingestor(settings, cache, publisher)
    app.state.authenticator = Authenticator(
        app.state.engine, settings.jwt_verification_secrets, settings.ingest_auth_cache_s
    )
    app.state.collection_pause = CollectionPause()
    app.state.background = [asyncio.create_task(cache.run_refresher(), name="reference-refresh")]
    if settings.ingest_sink_enabled:
        app.state.background += _sink_tasks(settings)
    # What lives as long as the process (modules, app, routes, engine, producer) is never
    # walked by a collection again (shared/infrastructure/gc_tuning.py).
    freeze_startup_heap()


async def _stop_background(app: FastAPI) -> None:
    tasks = getattr(app.state, "background", [])
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(task, 5)


async def _shutdown(app: FastAPI) -> None:
    await _stop_background(app)
    publisher = getattr(app.state, "publisher", None)
    if publisher is not None:
        await publisher.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = make_http_app(
        "WIMS ingest",
        settings,
        startup=_startup,
        shutdown=_shutdown,
        version="1.0.0",
        description=__doc__,
    )
    app.add_api_route(
        f"{PREFIX}/readings",
        push_readings,
        methods=["POST"],
        status_code=202,
        summary="Push readings (JSON array or NDJSON)",
        responses=openapi.responses(csv=False),
        openapi_extra=openapi.route_extra(csv=False, settings=settings),
    )
    app.add_api_route(
        f"{PREFIX}/readings/csv",
        push_csv,
        methods=["POST"],
        status_code=202,
        summary="Bulk import of a historian CSV export (streamed)",
        responses=openapi.responses(csv=True),
        openapi_extra=openapi.route_extra(csv=True, settings=settings),
    )
    openapi.document(app, settings, PREFIX)
    app.add_middleware(RequestTiming, seconds=REQUEST_SECONDS)
    return app


def _sink_tasks(settings: Settings) -> list[asyncio.Task[None]]:
    """The sink, and the maintenance of the table it writes (maintenance.py)."""
    return [
        asyncio.create_task(MeasurementSink(settings).run(), name="readings-sink"),
        asyncio.create_task(run_periodically(settings), name="measurement-maintenance"),
        asyncio.create_task(
            export_lag_periodically(
                settings.kafka_bootstrap, [SINK_GROUP], settings.consumer_lag_interval_s
            ),
            name="sink-consumer-lag",
        ),
    ]


async def _sink_startup(app: FastAPI) -> None:
    app.state.background = _sink_tasks(app.state.settings)


def create_sink_app(settings: Settings | None = None) -> FastAPI:
    """The sink alone (``wims serve ingest-sink``), with /healthz, /readyz and /metrics."""
    settings = settings or get_settings()
    return make_http_app(
        "WIMS ingest sink", settings, startup=_sink_startup, shutdown=_stop_background
    )

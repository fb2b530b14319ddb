"""What ingest does with a push: read and parse the body (core.py), validate it against the
reference data (shared/domain/readings.py, lookups.py), publish the accepted readings and
dead-letter the rest (publisher.py), and answer. The routes, their answers and their
bounds are described in app.py's docstring (the service's OpenAPI description).

Parsing, validating and encoding hold the GIL, so big requests are worked through in slices
with a turn of the event loop between two: other requests are served meanwhile.
"""

import asyncio
import codecs
import contextlib
import gc
import logging
import time
from collections.abc import AsyncIterator, Generator
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

from services.ingest import openapi
from services.ingest.auth import Authenticator, AuthError, Principal
from services.ingest.core import (
    BULK_SOURCE,
    CSV_LOOKAHEAD_CHARS,
    CSV_TYPES,
    JSON_TYPES,
    MISS_CODES,
    NDJSON_TYPES,
    IngestError,
    LineFeed,
    LineTooLong,
    NeedMoreInput,
    json_array_steps,
    ndjson_steps,
    rejection_body,
    too_many,
)
from services.ingest.errors import describe
from services.ingest.lookups import ReferenceCache
from services.ingest.metrics import READINGS_ACCEPTED, READINGS_REJECTED
from services.ingest.publisher import KafkaUnavailable, ReadingPublisher
from shared.domain.readings import BatchResult, BatchValidator, Rejection, iter_csv_records
from shared.infrastructure.settings import Settings

log = logging.getLogger(__name__)
PREFIX = "/ingest/v1"
T = TypeVar("T")


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


def _json(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _error_response(exc: IngestError) -> Response:
    return _json(exc.body(), exc.status, exc.headers)


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
                missed = any(e.code in MISS_CODES for r in part.rejected for e in r.errors)
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


async def _answer(accepted: int, rejected: list[Rejection], step: int, **extra: Any) -> Response:
    bodies: list[dict[str, Any]] = []
    for start in range(0, len(rejected), step):
        if start:
            await asyncio.sleep(0)
        bodies += [rejection_body(r) for r in rejected[start : start + step]]
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


async def _yielding(steps: Generator[None, None, T]) -> T:
    """Run a core parse to its end, with a turn of the event loop wherever it yields."""
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value
        await asyncio.sleep(0)


async def parse_json_array(body: bytes, limit: int) -> list[Any]:
    """The records of a JSON array body, parsed in pieces (core.json_array_steps)."""
    return await _yielding(json_array_steps(body, limit))


async def ndjson_records(body: bytes, step: int) -> list[Any]:
    """The records of an NDJSON body (core.ndjson_steps)."""
    return await _yielding(ndjson_steps(body, step))


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
        return _error_response(exc)


async def _push_body(
    request: Request, body: bytes, media: str, principal: Principal, settings: Settings
) -> Response:
    step = settings.ingest_slice_records
    if media in NDJSON_TYPES:
        records = await ndjson_records(body, step)
    else:
        records = await parse_json_array(body, settings.ingest_max_records)
    if len(records) > settings.ingest_max_records:
        raise too_many(len(records), settings.ingest_max_records)
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
        return _error_response(exc)


async def _import_csv(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    ingestor: Ingestor = request.app.state.ingestor
    chunk_size = settings.ingest_csv_chunk_records
    max_reported = settings.ingest_max_reported_rejections
    step = settings.ingest_slice_records
    feed = LineFeed()
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
            except NeedMoreInput:
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
    except LineTooLong:
        raise too_long() from None
    feed.finish()
    await pull(until_eof=True)
    try:  # a header-only or empty body: the generator raises when first asked
        record = next(records)
        chunk.append(record)
    except StopIteration:
        pass
    except (ValueError, NeedMoreInput) as exc:
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


def add_routes(app: FastAPI, settings: Settings) -> None:
    """The two push routes, under PREFIX; their OpenAPI text is openapi.py's."""
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

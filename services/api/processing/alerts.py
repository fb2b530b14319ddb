"""Alert history, acknowledgement, and the live stream (Server-Sent Events)."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from services.api import schemas as s
from services.api.alert_feed import StreamRefused, Subscriber, live_stream, parse_position
from services.api.deps import (
    ROLE_RANK,
    Engineer,
    PageDep,
    SessionDep,
    SettingsDep,
    Viewer,
    oauth2_scheme,
    user_cache,
    user_from_token,
)
from services.api.errors import ERROR_RESPONSES, ITEM_RESPONSES, ErrorBody, FieldInvalid
from services.api.processing.crud import commit, get_or_404
from services.api.pump import AlertFanout
from shared.contracts.enums import AlertKind, Role, Severity
from shared.persistence.models import AlertRecord

log = logging.getLogger(__name__)
router = APIRouter(tags=["alerts"])

_STREAM_DOC = """Live alerts from `wims.alerts` as Server-Sent Events (viewers and up).

Each event: `id:` the stream position after it (`partition:offset,...` for every partition
of the topic, e.g. `0:1534,1:1610,2:1488,3:1502,4:1577,5:1611`; send it back as
`Last-Event-ID` to resume exactly there), `event:` the alert kind (maasp_exceeded,
sap_detected...), `data:` the Alert JSON (kind, severity, well_id, annulus_id, ts, message,
pressure_bar, maasp_bar, utilisation...). Without `Last-Event-ID` the stream starts at the
newest alert. A `: connected` comment is sent once the stream is positioned, and
`: heartbeat` comments every WIMS_SSE_HEARTBEAT_S (15 s) of silence keep proxies from
closing it; a heartbeat also carries an `id:` (no `data:`, so no event), which moves a
filtered client's Last-Event-ID past the alerts it did not want.

**Resuming.** `Last-Event-ID` (the header an EventSource sends on reconnect, or the
`last_event_id` query parameter; the header wins) must be an id of this stream: comma-
separated `partition:offset` pairs, each partition of the topic at most once, offsets from
0 to the end of their partition. Anything else is a 422 naming `Last-Event-ID`. Every alert
after that position is delivered once, in order per partition, whatever the filters.

**Limits.** At most WIMS_SSE_MAX_STREAMS_PER_USER (10) open streams per user and
WIMS_SSE_MAX_STREAMS (1000) per API process: beyond, 429 with `Retry-After`.

**The server closes a stream** with a last event `event: stream-closed`,
`data: {"code": ..., "reason": ...}` when the client fell more than WIMS_SSE_CLIENT_QUEUE
alerts behind (`slow_client`: reconnect with the last id to resume without loss), or when a
re-check (every WIMS_SSE_AUTH_RECHECK_S, 5 s) finds the token expired or revoked or the user
deactivated (`unauthorized`) or their role no longer allowed (`forbidden`).

Authentication: `Authorization: Bearer <token>`, or `?access_token=<token>` for browser
`EventSource`, which cannot set headers (the token then appears in server logs and history:
prefer the header where the client allows it)."""

# Caps are reached by clients that reconnect in a loop; a few seconds lets streams close.
STREAM_RETRY_AFTER_S = 5


class _StreamResponse(StreamingResponse):
    """Releases the stream's slot whenever the response ends, also when the client left
    before the body was ever started (the body generator's own ``finally`` would not run)."""

    def __init__(self, *args: Any, on_close: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def _fanout(request: Request) -> AlertFanout:
    fanout = getattr(request.app.state, "alert_fanout", None)
    if fanout is None:
        raise HTTPException(503, "live alerts unavailable: the API is starting")
    return fanout


@router.get(
    "/alerts/stream",
    summary="Live alerts (Server-Sent Events)",
    description=_STREAM_DOC,
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "an endless text/event-stream",
        },
        **ERROR_RESPONSES,
        429: {"model": ErrorBody, "description": "too many open streams (user or process)"},
        503: {"model": ErrorBody, "description": "Kafka is not reachable"},
    },
)
async def alert_stream(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    header_token: Annotated[str | None, Depends(oauth2_scheme)],
    access_token: Annotated[str | None, Query(description="for EventSource clients")] = None,
    well_id: int | None = None,
    severity: Annotated[list[Severity] | None, Query(description="repeat for several")] = None,
    last_event_id: Annotated[
        str | None, Header(alias="Last-Event-ID", description="resume after this id")
    ] = None,
    last_event_id_query: Annotated[
        str | None,
        Query(
            alias="last_event_id",
            description="resume after this id, for clients that cannot set the header",
        ),
    ] = None,
) -> StreamingResponse:
    token = header_token or access_token
    cache = user_cache(request)
    user = await user_from_token(session, settings, token, cache)
    if ROLE_RANK[Role(user.role)] < ROLE_RANK[Role.viewer]:
        raise HTTPException(403, "requires the viewer role")
    user_id = user.id
    # Release the pooled connection: the stream may stay open for hours.
    await session.close()
    position = None
    if raw := (last_event_id or last_event_id_query):
        try:
            position = parse_position(raw)
        except ValueError as exc:
            raise FieldInvalid("Last-Event-ID", f"{exc}") from None
    fanout = _fanout(request)
    if not await fanout.wait_ready(10):
        raise HTTPException(503, "live alerts unavailable: Kafka not reachable")
    if position is not None:
        try:
            await fanout.check_position(position)
        except ValueError as exc:
            raise FieldInvalid("Last-Event-ID", f"{exc}") from None
        except Exception as exc:
            raise HTTPException(
                503, f"live alerts unavailable: Kafka not reachable ({exc!r})"
            ) from None
    try:
        fanout.reserve(user_id)
    except StreamRefused as exc:
        raise HTTPException(
            429, str(exc), headers={"Retry-After": str(STREAM_RETRY_AFTER_S)}
        ) from None
    sub = Subscriber(
        well_id=well_id,
        severities={str(v) for v in severity} if severity else None,
        cap=settings.sse_client_queue,
        user_id=user_id,
    )
    start = fanout.start_vector(position) if position is not None else None
    sessionmaker = getattr(request.app.state, "read_sessionmaker", request.app.state.sessionmaker)

    async def recheck() -> tuple[str, str] | None:
        """(code, reason) when this stream's user may no longer stream, else None."""
        try:
            async with sessionmaker() as s:
                current = await user_from_token(s, settings, token, cache)
        except HTTPException as exc:
            return "unauthorized", str(exc.detail)
        except Exception as exc:
            # The database away is no reason to cut the operations centre off its alerts;
            # the next re-check asks again.
            log.warning("live alert stream: could not re-check its user (%r)", exc)
            return None
        if ROLE_RANK[Role(current.role)] < ROLE_RANK[Role.viewer]:
            return "forbidden", f"the role {current.role} may not read live alerts"
        return None

    return _StreamResponse(
        live_stream(fanout, settings, sub, start, recheck),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        on_close=lambda: fanout.release(user_id),
    )


@router.get(
    "/alerts",
    response_model=list[s.AlertOut],
    summary="Alert history, newest first",
    responses=ERROR_RESPONSES,
)
async def list_alerts(
    session: SessionDep,
    user: Viewer,
    response: Response,
    page: PageDep,
    well_id: int | None = None,
    annulus_id: int | None = None,
    severity: Severity | None = None,
    kind: AlertKind | None = None,
    acknowledged: bool | None = None,
    from_: Annotated[s.Timestamp | None, Query(alias="from", description="inclusive")] = None,
    to: Annotated[s.Timestamp | None, Query(description="exclusive")] = None,
) -> list[Any]:
    stmt = select(AlertRecord)
    if well_id is not None:
        stmt = stmt.where(AlertRecord.well_id == well_id)
    if annulus_id is not None:
        stmt = stmt.where(AlertRecord.annulus_id == annulus_id)
    if severity is not None:
        stmt = stmt.where(AlertRecord.severity == str(severity))
    if kind is not None:
        stmt = stmt.where(AlertRecord.kind == str(kind))
    if from_ is not None:
        stmt = stmt.where(AlertRecord.ts >= from_)
    if to is not None:
        stmt = stmt.where(AlertRecord.ts < to)
    if acknowledged is not None:
        ack = AlertRecord.acknowledged_at
        stmt = stmt.where(ack.is_not(None) if acknowledged else ack.is_(None))
    response.headers["X-Total-Count"] = str(
        await session.scalar(select(func.count()).select_from(stmt.subquery()))
    )
    rows = await session.scalars(
        stmt.order_by(AlertRecord.ts.desc(), AlertRecord.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows)


@router.get(
    "/alerts/{item_id}", response_model=s.AlertOut, summary="One alert", responses=ITEM_RESPONSES
)
async def get_alert(item_id: s.BigId, session: SessionDep, user: Viewer) -> AlertRecord:
    return await get_or_404(session, AlertRecord, item_id, "alert")


@router.post(
    "/alerts/{item_id}/ack",
    response_model=s.AlertOut,
    summary="Acknowledge an alert (engineer); acknowledging twice keeps the first",
    responses=ITEM_RESPONSES,
)
async def ack_alert(
    request: Request, item_id: s.BigId, session: SessionDep, user: Engineer
) -> AlertRecord:
    alert = await get_or_404(session, AlertRecord, item_id, "alert")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = datetime.now(UTC)
        alert.acknowledged_by_id = user.id
        await commit(request, session)
        await session.refresh(alert)
    return alert

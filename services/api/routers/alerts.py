"""Alert history, acknowledgement, and the live stream (Server-Sent Events)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import func, select

from services.api import schemas as s
from services.api.alert_feed import AlertTail, parse_position
from services.api.crud import commit, get_or_404
from services.api.deps import (
    ROLE_RANK,
    Engineer,
    PageDep,
    SessionDep,
    SettingsDep,
    Viewer,
    oauth2_scheme,
    user_from_token,
)
from services.api.errors import ERROR_RESPONSES, ITEM_RESPONSES, ErrorBody, FieldInvalid
from shared.enums import AlertKind, Role, Severity
from shared.models import AlertRecord

router = APIRouter(tags=["alerts"])

_STREAM_DOC = """Live alerts from `wims.alerts` as Server-Sent Events (viewers and up).

Each event: `id:` the stream position after it (`partition:offset,...` for every partition
of the topic; send it back as `Last-Event-ID` to resume exactly there), `event:` the alert
kind (maasp_exceeded, sap_detected...), `data:` the Alert JSON (kind, severity, well_id,
annulus_id, ts, message, pressure_bar, maasp_bar, utilisation...). Without `Last-Event-ID`
the stream starts at the newest alert. A `: connected` comment is sent once the stream is
positioned, and `: heartbeat` comments every WIMS_SSE_HEARTBEAT_S (15 s) of silence keep
proxies from closing it.

Authentication: `Authorization: Bearer <token>`, or `?access_token=<token>` for browser
`EventSource`, which cannot set headers (the token then appears in server logs and history:
prefer the header where the client allows it)."""


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
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> StreamingResponse:
    user = await user_from_token(session, settings, header_token or access_token)
    if ROLE_RANK[Role(user.role)] < ROLE_RANK[Role.viewer]:
        raise HTTPException(403, "requires the viewer role")
    # Release the pooled connection: the stream may stay open for hours.
    await session.close()
    resume = None
    if last_event_id:
        try:
            resume = parse_position(last_event_id)
        except ValueError:
            raise FieldInvalid(
                "Last-Event-ID", "must be an id from this stream (partition:offset,...)"
            ) from None
    tail = AlertTail(
        settings,
        resume_from=resume,
        well_id=well_id,
        severities={str(v) for v in severity} if severity else None,
    )
    try:
        await tail.open()
    except Exception as exc:
        raise HTTPException(
            503, f"live alerts unavailable: Kafka not reachable ({exc!r})"
        ) from None
    return StreamingResponse(
        tail.stream(request.is_disconnected),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
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
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
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
async def get_alert(item_id: int, session: SessionDep, user: Viewer) -> AlertRecord:
    return await get_or_404(session, AlertRecord, item_id, "alert")


@router.post(
    "/alerts/{item_id}/ack",
    response_model=s.AlertOut,
    summary="Acknowledge an alert (engineer); acknowledging twice keeps the first",
    responses=ITEM_RESPONSES,
)
async def ack_alert(
    request: Request, item_id: int, session: SessionDep, user: Engineer
) -> AlertRecord:
    alert = await get_or_404(session, AlertRecord, item_id, "alert")
    if alert.acknowledged_at is None:
        alert.acknowledged_at = datetime.now(UTC)
        alert.acknowledged_by_id = user.id
        await commit(request, session)
        await session.refresh(alert)
    return alert

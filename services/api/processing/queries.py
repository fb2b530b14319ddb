"""What the users look at: a well's state, measurement charts, MAASP, integrity, the fleet.

These are read-only and hot (the operations centre polls them), so each answers in one or
two SQL round trips: latest rows through LATERAL joins on the (annulus_id, ts) style
indexes, downsampling with ``date_bin`` in PostgreSQL, never a query per well or annulus.
The SQL is in ``services/api/store.py``, the judging of the annuli in
``services/api/core.py``; this module parses the requests and builds the responses.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from services.api import schemas as s
from services.api import store
from services.api.core import annulus_level as _annulus_level
from services.api.core import filter_fleet_rows, fleet_body, highest_by_well
from services.api.deps import PageDep, SessionDep, Viewer
from services.api.errors import ITEM_RESPONSES, FieldInvalid, NotFound
from services.api.fleet import FleetWells
from shared.contracts.enums import IntegrityStatus, WellStatus
from shared.infrastructure.db import driver_connection

router = APIRouter(tags=["queries"])


def annulus_state(a: dict[str, Any]) -> s.AnnulusStateOut:
    reading = a["reading"]
    level, util = _annulus_level(
        reading and reading["pressure_bar"], reading and reading["quality"], a["maasp_bar"], a
    )
    return s.AnnulusStateOut(
        id=a["id"],
        name=a["name"],
        inner_tubing_string_id=a["inner_tubing_string_id"],
        inner_casing_string_id=a["inner_casing_string_id"],
        outer_casing_string_id=a["outer_casing_string_id"],
        latest_reading=reading,
        maasp_bar=a["maasp_bar"],
        limiting_point_name=a["limiting_point_name"],
        utilisation=None if util is None or math.isinf(util) else util,
        level=level,
    )


@router.get(
    "/wells/{well_id}/state",
    response_model=s.WellState,
    summary="A well at a glance: architecture, annuli with latest reading and MAASP, "
    "integrity, open tasks",
    responses=ITEM_RESPONSES,
)
async def well_state(well_id: s.PathId, request: Request, user: Viewer) -> s.WellState:
    async with driver_connection(request.app.state.read_engine) as conn:
        row = await store.well_state_row(conn, well_id)
    if row is None:
        raise NotFound(f"well {well_id} not found")
    well, strings, elements, annuli, integrity, tasks = row
    return s.WellState(
        well=well,
        strings=strings,
        barrier_elements=elements,
        annuli=[annulus_state(a) for a in annuli],
        integrity=integrity,
        open_tasks=tasks,
    )


# --- measurements -------------------------------------------------------------------------------

# At most 8 digits of seconds, 6 of minutes, 5 of hours, 4 of days (some 27 years): every
# width is a timedelta Python and PostgreSQL's date_bin can hold. The OpenAPI declares the
# same pattern, so what it allows the server accepts.
RESOLUTION_PATTERN = "^(raw|[1-9][0-9]{0,7}s|[1-9][0-9]{0,5}m|[1-9][0-9]{0,4}h|[1-9][0-9]{0,3}d)$"
_DURATION = re.compile(r"^(?P<n>[1-9][0-9]*)(?P<unit>s|m|h|d)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RESOLUTION = re.compile(RESOLUTION_PATTERN)
MAX_BUCKETS = 10_000
MAX_RAW = 10_000


def parse_resolution(value: str) -> timedelta | None:
    """``raw`` -> None; ``30s``, ``5m``, ``1h``, ``1d`` -> the bucket width."""
    if value == "raw":
        return None
    m = _DURATION.match(value)
    if not m or not _RESOLUTION.match(value):
        raise FieldInvalid(
            "resolution",
            "must be raw or a duration like 30s, 5m, 1h, 1d (at most 99999999s, 999999m, "
            "99999h or 9999d)",
        )
    return timedelta(seconds=int(m.group("n")) * _UNIT_SECONDS[m.group("unit")])


async def _annulus_exists(session: Any, annulus_id: int) -> None:
    if not await store.annulus_exists(session, annulus_id):
        raise NotFound(f"annulus {annulus_id} not found")


@router.get(
    "/annuli/{annulus_id}/measurements",
    response_model=s.Measurements,
    summary="Annulus readings over a time range, raw or downsampled in SQL",
    description="resolution=raw returns the readings (at most `limit`, 10000); a duration "
    "(30s, 5m, 1h, 1d...) returns min/max/avg pressure per bucket, aligned on `from`, over "
    "good and uncertain readings (bad readings are never used in a calculation). Buckets "
    "without readings are left out. Default range: the last 24 hours. Whole hours or days "
    "from a `from` on a UTC hour or day are read from the hourly or daily roll-ups, which "
    "outlive the raw readings (see the retention settings).",
    responses=ITEM_RESPONSES,
)
async def measurements(
    annulus_id: s.PathId,
    session: SessionDep,
    user: Viewer,
    from_: Annotated[
        s.Timestamp | None, Query(alias="from", description="inclusive, ISO 8601")
    ] = None,
    to: Annotated[s.Timestamp | None, Query(description="exclusive, ISO 8601")] = None,
    resolution: Annotated[
        str,
        Query(
            description="raw, or a bucket width: 30s, 5m, 1h, 1d",
            json_schema_extra={"pattern": RESOLUTION_PATTERN},
        ),
    ] = "raw",
    limit: Annotated[int, Query(ge=1, le=MAX_RAW)] = MAX_RAW,
) -> s.Measurements:
    # The annulus first: a query about no annulus is a 404 whatever its range.
    await _annulus_exists(session, annulus_id)
    to = to or datetime.now(UTC)
    for name, value in (("from", from_), ("to", to)):
        if value is not None and value.tzinfo is None:
            raise FieldInvalid(name, "must carry a time zone (e.g. 2026-01-31T00:00:00Z)")
    if from_ is None:
        try:
            from_ = to - timedelta(days=1)
        except OverflowError:
            raise FieldInvalid("to", "without from, must be at least a day after year 1") from None
    if from_ >= to:
        raise FieldInvalid("from", "must be before to")
    width = parse_resolution(resolution)
    if width is None:
        rows = await store.raw_measurements(session, annulus_id, from_, to, limit + 1)
        points = [s.ReadingOut(**r) for r in rows]
        return s.Measurements(
            annulus_id=annulus_id,
            resolution="raw",
            points=points[:limit],
            truncated=len(points) > limit,
        )
    if (to - from_) / width > MAX_BUCKETS:
        raise FieldInvalid(
            "resolution", f"too fine for this range: more than {MAX_BUCKETS} buckets"
        )
    rows = await store.measurement_buckets(session, annulus_id, width, from_, to)
    return s.Measurements(
        annulus_id=annulus_id,
        resolution=resolution,
        buckets=[s.MeasurementBucket(**r) for r in rows],
    )


# --- MAASP and integrity ------------------------------------------------------------------------


@router.get(
    "/annuli/{annulus_id}/maasp",
    response_model=s.MaaspHistory,
    summary="Current MAASP (latest config version) and its history, newest first",
    responses=ITEM_RESPONSES,
)
async def maasp_history(
    annulus_id: s.PathId, session: SessionDep, user: Viewer, page: PageDep
) -> s.MaaspHistory:
    await _annulus_exists(session, annulus_id)
    rows = await store.maasp_history(session, annulus_id, page.limit, page.offset)
    history = [s.MaaspOut(**r) for r in rows]
    current = history[0] if history and page.offset == 0 else None
    if current is None and page.offset:
        r = await store.current_maasp(session, annulus_id)
        current = s.MaaspOut(**r) if r else None
    return s.MaaspHistory(annulus_id=annulus_id, current=current, history=history)


async def _well_exists(session: Any, well_id: int) -> None:
    if not await store.well_exists(session, well_id):
        raise NotFound(f"well {well_id} not found")


@router.get(
    "/wells/{well_id}/integrity",
    response_model=s.IntegrityOut,
    summary="The well's latest integrity snapshot",
    responses=ITEM_RESPONSES,
)
async def integrity(well_id: s.PathId, session: SessionDep, user: Viewer) -> s.IntegrityOut:
    await _well_exists(session, well_id)
    row = await store.latest_integrity_snapshot(session, well_id)
    if row is None:
        raise NotFound(f"well {well_id} has no integrity snapshot yet")
    return s.IntegrityOut(**row)


@router.get(
    "/wells/{well_id}/integrity/history",
    response_model=list[s.IntegrityOut],
    summary="The well's integrity snapshots, newest first",
    responses=ITEM_RESPONSES,
)
async def integrity_history(
    well_id: s.PathId,
    session: SessionDep,
    user: Viewer,
    page: PageDep,
    from_: Annotated[s.Timestamp | None, Query(alias="from")] = None,
    to: Annotated[s.Timestamp | None, Query()] = None,
) -> list[s.IntegrityOut]:
    await _well_exists(session, well_id)
    rows = await store.integrity_history(session, well_id, from_, to, page.limit, page.offset)
    return [s.IntegrityOut(**r) for r in rows]


# --- fleet --------------------------------------------------------------------------------------


async def fleet_json(conn: Any, wells: FleetWells, **filters: str | None) -> bytes:
    """The body of GET /fleet (schemas.Fleet), serialised; ``conn`` is a psycopg connection
    (shared.infrastructure.db.driver_connection); ``filters`` are field, status, country and
    colour, None where not given."""
    rows = filter_fleet_rows(await wells.rows(conn), filters)
    per_well = highest_by_well(*await store.fleet_annuli(conn))
    return fleet_body(rows, per_well)


@router.get(
    "/fleet",
    response_model=s.Fleet,
    summary="Every well with its status colour, risk, highest utilisation and open tasks",
    description="Two SQL queries over the fleet read model whatever the number of wells. "
    "highest_utilisation is computed from each annulus's latest reading and current MAASP "
    "(bad readings excluded); "
    "an annulus with pressure over a MAASP of 0 is infinitely utilised: highest_level "
    "exceeded, highest_utilisation null (JSON has no infinity).",
    responses=ITEM_RESPONSES,
)
async def fleet(
    request: Request,
    user: Viewer,
    field: s.Text | None = None,
    country: s.Text | None = None,
    status: WellStatus | None = None,
    colour: IntegrityStatus | None = None,
) -> Response:
    async with driver_connection(request.app.state.read_engine) as conn:
        body = await fleet_json(
            conn,
            request.app.state.fleet_wells,
            field=field,
            country=country,
            status=status.value if status else None,
            colour=colour.value if colour else None,
        )
    return Response(body, media_type="application/json")

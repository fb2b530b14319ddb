"""What the users look at: a well's state, measurement charts, MAASP, integrity, the fleet.

These are read-only and hot (the operations centre polls them), so each answers in one or
two SQL round trips: latest rows through LATERAL joins on the (annulus_id, ts) style
indexes, downsampling with ``date_bin`` in PostgreSQL, never a query per well or annulus.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import text

from services.api import schemas as s
from services.api.deps import PageDep, SessionDep, Viewer
from services.api.errors import ITEM_RESPONSES, FieldInvalid, NotFound
from services.api.fleet import fleet_json
from shared.contracts.enums import IntegrityStatus, Quality, UtilisationLevel, WellStatus
from shared.domain.utilisation import Thresholds, level_for, utilisation
from shared.infrastructure.db import driver_connection
from shared.persistence.measurement_storage import TS

router = APIRouter(tags=["queries"])

# psycopg parameters: run on the driver's connection (shared.infrastructure.db.driver_connection).
_STATE_SQL = """
SELECT
  row_to_json(w) AS well,
  (SELECT coalesce(json_agg(x ORDER BY x.kind, x.top_md, x.name), '[]') FROM (
      SELECT id, 'casing' AS kind, name, casing_type::text AS casing_type, outer_diameter_in,
             top_md, bottom_md FROM casing_string WHERE well_id = w.id
      UNION ALL
      SELECT id, 'tubing', name, NULL, outer_diameter_in, top_md, bottom_md
        FROM tubing_string WHERE well_id = w.id) x) AS strings,
  (SELECT coalesce(json_agg(json_build_object(
            'id', e.id, 'name', e.name, 'element_type', e.element_type,
            'envelope_type', v.type, 'status', e.status,
            'next_test_due', e.next_test_due) ORDER BY v.type, e.id), '[]')
     FROM barrier_element e JOIN barrier_envelope v ON v.id = e.envelope_id
    WHERE v.well_id = w.id) AS elements,
  (SELECT coalesce(json_agg(json_build_object(
            'id', a.id, 'name', a.name,
            'inner_tubing_string_id', a.inner_tubing_string_id,
            'inner_casing_string_id', a.inner_casing_string_id,
            'outer_casing_string_id', a.outer_casing_string_id,
            'warning_threshold', a.warning_threshold,
            'exceeded_threshold', a.exceeded_threshold, 'clear_band', a.clear_band,
            'reading', CASE WHEN m.timestamp IS NULL THEN NULL ELSE json_build_object(
                'timestamp', m.timestamp, 'pressure_bar', m.pressure_bar, 'temperature_c', m.temperature_c,
                'quality', m.quality, 'source', m.source) END,
            'maasp_bar', r.maasp_bar, 'limiting_point_name', r.limiting_point_name)
            ORDER BY a.name), '[]')
     FROM annulus a
     LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, temperature_c, quality, source
                          FROM annulus_measurement WHERE annulus_id = a.id
                         ORDER BY timestamp DESC LIMIT 1) m ON true
     LEFT JOIN LATERAL (SELECT maasp_bar, limiting_point_name FROM maasp_result
                         WHERE annulus_id = a.id ORDER BY config_version DESC LIMIT 1) r ON true
    WHERE a.well_id = w.id) AS annuli,
  (SELECT row_to_json(i) FROM (SELECT * FROM integrity_snapshot WHERE well_id = w.id
                                ORDER BY created_at DESC, id DESC LIMIT 1) i) AS integrity,
  (SELECT coalesce(json_agg(t ORDER BY t.due_date NULLS LAST, t.id), '[]')
     FROM task t WHERE t.well_id = w.id AND t.status IN ('open', 'in_progress')) AS tasks
FROM well w WHERE w.id = %(well_id)s
"""


def _annulus_level(
    pressure_bar: float | None, quality: str | None, maasp_bar: float | None, a: Any
) -> tuple[UtilisationLevel, float | None]:
    """Level and utilisation of one annulus from its latest reading and current MAASP.

    Bad readings are shown, never used in a calculation. A pressure over a MAASP of 0 is
    infinitely utilised: level exceeded, utilisation reported as null (JSON has no infinity).
    """
    if pressure_bar is None or quality == Quality.bad:
        return UtilisationLevel.unknown, None
    util = utilisation(pressure_bar, maasp_bar)
    if util is None:
        return UtilisationLevel.unknown, None
    try:
        thresholds = Thresholds(a["warning_threshold"], a["exceeded_threshold"], a["clear_band"])
    except ValueError:
        thresholds = Thresholds()  # stored thresholds predating validation: WIMS defaults
    return level_for(util, thresholds), util


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
        row = await (await conn.execute(_STATE_SQL, {"well_id": well_id})).fetchone()
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


_HOUR, _DAY = timedelta(hours=1), timedelta(days=1)
_ROLLUPS = ((_DAY, "annulus_measurement_daily"), (_HOUR, "annulus_measurement_hourly"))


def rollup_for(width: timedelta, from_: datetime) -> tuple[str, timedelta] | None:
    """The roll-up table (and its bucket) that answers buckets of ``width`` aligned on
    ``from_`` exactly, or None: each roll-up bucket must fall inside one answer bucket, so
    the width must be a whole number of roll-up buckets and ``from_`` on a roll-up bucket
    boundary (UTC hours, UTC days)."""
    utc = from_.astimezone(UTC)
    for unit, table in _ROLLUPS:
        aligned = utc == datetime(utc.year, utc.month, utc.day, tzinfo=UTC) + (
            timedelta(hours=utc.hour) if unit == _HOUR else timedelta(0)
        )
        if width % unit == timedelta(0) and aligned:
            return table, unit
    return None


# Whole roll-up buckets from `from` to `edge`, raw readings from `edge` to `to` (the
# unfinished last roll-up bucket, if any), merged into the answer's buckets. min, max and
# count are those of the raw readings; avg is sum / count (equal up to rounding).
_ROLLUP_BUCKETS_SQL = f"""
SELECT date_bin(:width, b, :from) AS bucket_start, min(mn) AS min, max(mx) AS max,
       sum(s) / sum(c)::float8 AS avg, sum(c)::bigint AS count
FROM (
  SELECT bucket_start AS b, min_bar AS mn, max_bar AS mx, sum_bar AS s, reading_count AS c
    FROM {{table}} WHERE annulus_id = :a AND bucket_start >= :from AND bucket_start < :edge
  UNION ALL
  SELECT {TS}, pressure_bar, pressure_bar, pressure_bar, 1
    FROM annulus_measurement WHERE annulus_id = :a AND {TS} >= :edge AND {TS} < :to
     AND quality <> 'bad' AND pressure_bar IS NOT NULL
) x
GROUP BY 1 ORDER BY 1
"""
_RAW_BUCKETS_SQL = (
    f"SELECT date_bin(:width, {TS}, :from) AS bucket_start, min(pressure_bar) AS min, "
    "max(pressure_bar) AS max, avg(pressure_bar) AS avg, count(*) AS count "
    f"FROM annulus_measurement WHERE annulus_id = :a AND {TS} >= :from AND {TS} < :to "
    "AND quality <> 'bad' AND pressure_bar IS NOT NULL "
    "GROUP BY bucket_start ORDER BY bucket_start"
)


def buckets_query(width: timedelta, from_: datetime, to: datetime) -> tuple[str, dict[str, Any]]:
    """The SQL for min/max/avg buckets, and its extra parameters: from a roll-up when one
    fits (long ranges then read a row per hour or day rather than every reading; raw
    readings past the retention period are gone, their roll-ups are not), else raw."""
    fit = rollup_for(width, from_)
    if fit is None:
        return _RAW_BUCKETS_SQL, {"width": width}
    table, unit = fit
    edge = from_ + unit * ((to - from_) // unit)
    return _ROLLUP_BUCKETS_SQL.format(table=table), {"width": width, "edge": edge}


async def _annulus_exists(session: Any, annulus_id: int) -> None:
    if await session.scalar(text("SELECT 1 FROM annulus WHERE id = :a"), {"a": annulus_id}) is None:
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
    params = {"a": annulus_id, "from": from_, "to": to}
    if width is None:
        rows = (
            await session.execute(
                text(
                    "SELECT timestamp, pressure_bar, temperature_c, quality, source "
                    "FROM annulus_measurement WHERE annulus_id = :a "
                    "AND timestamp >= :from AND timestamp < :to "
                    "ORDER BY timestamp, source LIMIT :n"
                ),
                params | {"n": limit + 1},
            )
        ).mappings()
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
    sql, extra = buckets_query(width, from_, to)
    rows = (await session.execute(text(sql), params | extra)).mappings()
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
    rows = (
        await session.execute(
            text(
                "SELECT * FROM maasp_result WHERE annulus_id = :a "
                "ORDER BY config_version DESC LIMIT :n OFFSET :o"
            ),
            {"a": annulus_id, "n": page.limit, "o": page.offset},
        )
    ).mappings()
    history = [s.MaaspOut(**r) for r in rows]
    current = history[0] if history and page.offset == 0 else None
    if current is None and page.offset:
        r = (
            (
                await session.execute(
                    text(
                        "SELECT * FROM maasp_result WHERE annulus_id = :a "
                        "ORDER BY config_version DESC LIMIT 1"
                    ),
                    {"a": annulus_id},
                )
            )
            .mappings()
            .first()
        )
        current = s.MaaspOut(**r) if r else None
    return s.MaaspHistory(annulus_id=annulus_id, current=current, history=history)


async def _well_exists(session: Any, well_id: int) -> None:
    if await session.scalar(text("SELECT 1 FROM well WHERE id = :w"), {"w": well_id}) is None:
        raise NotFound(f"well {well_id} not found")


@router.get(
    "/wells/{well_id}/integrity",
    response_model=s.IntegrityOut,
    summary="The well's latest integrity snapshot",
    responses=ITEM_RESPONSES,
)
async def integrity(well_id: s.PathId, session: SessionDep, user: Viewer) -> s.IntegrityOut:
    await _well_exists(session, well_id)
    row = (
        (
            await session.execute(
                text(
                    "SELECT * FROM integrity_snapshot WHERE well_id = :w "
                    "ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                {"w": well_id},
            )
        )
        .mappings()
        .first()
    )
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
    rows = (
        await session.execute(
            text(
                "SELECT * FROM integrity_snapshot WHERE well_id = :w "
                "AND (CAST(:from AS timestamptz) IS NULL OR created_at >= :from) "
                "AND (CAST(:to AS timestamptz) IS NULL OR created_at < :to) "
                "ORDER BY created_at DESC, id DESC LIMIT :n OFFSET :o"
            ),
            {"w": well_id, "from": from_, "to": to, "n": page.limit, "o": page.offset},
        )
    ).mappings()
    return [s.IntegrityOut(**r) for r in rows]


# --- fleet --------------------------------------------------------------------------------------


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

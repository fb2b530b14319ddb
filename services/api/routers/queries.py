"""What the users look at: a well's state, measurement charts, MAASP, integrity, the fleet.

These are read-only and hot (the operations centre polls them), so each answers in one or
two SQL round trips: latest rows through LATERAL joins on the (annulus_id, ts) style
indexes, downsampling with ``date_bin`` in PostgreSQL, never a query per well or annulus.
"""

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query
from sqlalchemy import text

from services.api import schemas as s
from services.api.deps import PageDep, SessionDep, Viewer
from services.api.errors import ITEM_RESPONSES, FieldInvalid, NotFound
from shared.domain.utilisation import LEVEL_CODES, Thresholds, level_for, utilisation
from shared.enums import IntegrityStatus, Quality, UtilisationLevel, WellStatus

router = APIRouter(tags=["queries"])

_STATE_SQL = text(
    """
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
            'envelope_type', v.envelope_type, 'status', e.status,
            'next_test_due', e.next_test_due) ORDER BY v.envelope_type, e.id), '[]')
     FROM barrier_element e JOIN barrier_envelope v ON v.id = e.envelope_id
    WHERE v.well_id = w.id) AS elements,
  (SELECT coalesce(json_agg(json_build_object(
            'id', a.id, 'name', a.name,
            'inner_tubing_string_id', a.inner_tubing_string_id,
            'inner_casing_string_id', a.inner_casing_string_id,
            'outer_casing_string_id', a.outer_casing_string_id,
            'warning_threshold', a.warning_threshold,
            'exceeded_threshold', a.exceeded_threshold, 'clear_band', a.clear_band,
            'reading', CASE WHEN m.ts IS NULL THEN NULL ELSE json_build_object(
                'ts', m.ts, 'pressure_bar', m.pressure_bar, 'temperature_c', m.temperature_c,
                'quality', m.quality, 'source', m.source) END,
            'maasp_bar', r.maasp_bar, 'limiting_point_name', r.limiting_point_name)
            ORDER BY a.name), '[]')
     FROM annulus a
     LEFT JOIN LATERAL (SELECT ts, pressure_bar, temperature_c, quality, source
                          FROM annulus_measurement WHERE annulus_id = a.id
                         ORDER BY ts DESC LIMIT 1) m ON true
     LEFT JOIN LATERAL (SELECT maasp_bar, limiting_point_name FROM maasp_result
                         WHERE annulus_id = a.id ORDER BY config_version DESC LIMIT 1) r ON true
    WHERE a.well_id = w.id) AS annuli,
  (SELECT row_to_json(i) FROM (SELECT * FROM integrity_snapshot WHERE well_id = w.id
                                ORDER BY ts DESC, id DESC LIMIT 1) i) AS integrity,
  (SELECT coalesce(json_agg(t ORDER BY t.due_at NULLS LAST, t.id), '[]')
     FROM task t WHERE t.well_id = w.id AND t.status IN ('open', 'in_progress')) AS tasks
FROM well w WHERE w.id = :well_id
"""
)


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
async def well_state(well_id: s.PathId, session: SessionDep, user: Viewer) -> s.WellState:
    row = (await session.execute(_STATE_SQL, {"well_id": well_id})).mappings().first()
    if row is None:
        raise NotFound(f"well {well_id} not found")
    return s.WellState(
        well=row["well"],
        strings=row["strings"],
        barrier_elements=row["elements"],
        annuli=[annulus_state(a) for a in row["annuli"]],
        integrity=row["integrity"],
        open_tasks=row["tasks"],
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
    if await session.scalar(text("SELECT 1 FROM annulus WHERE id = :a"), {"a": annulus_id}) is None:
        raise NotFound(f"annulus {annulus_id} not found")


@router.get(
    "/annuli/{annulus_id}/measurements",
    response_model=s.Measurements,
    summary="Annulus readings over a time range, raw or downsampled in SQL",
    description="resolution=raw returns the readings (at most `limit`, 10000); a duration "
    "(30s, 5m, 1h, 1d...) returns min/max/avg pressure per bucket, aligned on `from`, over "
    "good and uncertain readings (bad readings are never used in a calculation). Buckets "
    "without readings are left out. Default range: the last 24 hours.",
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
                    "SELECT ts, pressure_bar, temperature_c, quality, source "
                    "FROM annulus_measurement WHERE annulus_id = :a AND ts >= :from AND ts < :to "
                    "ORDER BY ts, source LIMIT :n"
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
    rows = (
        await session.execute(
            text(
                "SELECT date_bin(:width, ts, :from) AS bucket_start, min(pressure_bar) AS min, "
                "max(pressure_bar) AS max, avg(pressure_bar) AS avg, count(*) AS count "
                "FROM annulus_measurement WHERE annulus_id = :a AND ts >= :from AND ts < :to "
                "AND quality <> 'bad' AND pressure_bar IS NOT NULL "
                "GROUP BY bucket_start ORDER BY bucket_start"
            ),
            params | {"width": width},
        )
    ).mappings()
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
                    "SELECT * FROM integrity_snapshot WHERE well_id = :w ORDER BY ts DESC, id DESC "
                    "LIMIT 1"
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
                "AND (CAST(:from AS timestamptz) IS NULL OR ts >= :from) "
                "AND (CAST(:to AS timestamptz) IS NULL OR ts < :to) "
                "ORDER BY ts DESC, id DESC LIMIT :n OFFSET :o"
            ),
            {"w": well_id, "from": from_, "to": to, "n": page.limit, "o": page.offset},
        )
    ).mappings()
    return [s.IntegrityOut(**r) for r in rows]


# --- fleet --------------------------------------------------------------------------------------

_FLEET_WELLS_SQL = text(
    """
SELECT w.id, w.name, w.field, w.status, w.well_type, w.commissioning,
       i.status AS colour, i.assessed, coalesce(i.assessment_gaps, '[]') AS assessment_gaps,
       i.risk_score, i.risk_category,
       coalesce(t.open_tasks, 0) AS open_tasks,
       coalesce(t.critical_open_tasks, 0) AS critical_open_tasks,
       coalesce(t.overdue_open_tasks, 0) AS overdue_open_tasks
FROM well w
LEFT JOIN LATERAL (SELECT status, assessed, assessment_gaps, risk_score, risk_category
                     FROM integrity_snapshot
                    WHERE well_id = w.id ORDER BY ts DESC, id DESC LIMIT 1) i ON true
LEFT JOIN (SELECT well_id, count(*) AS open_tasks,
                  count(*) FILTER (WHERE priority = 'critical') AS critical_open_tasks,
                  count(*) FILTER (WHERE due_at < now()) AS overdue_open_tasks
             FROM task WHERE status IN ('open', 'in_progress') GROUP BY well_id) t
       ON t.well_id = w.id
WHERE (CAST(:field AS text) IS NULL OR w.field = :field)
  AND (CAST(:status AS text) IS NULL OR w.status = CAST(:status AS well_status))
ORDER BY w.name
"""
)
_FLEET_ANNULI_SQL = text(
    """
SELECT a.well_id, m.pressure_bar, m.quality, r.maasp_bar,
       a.warning_threshold, a.exceeded_threshold, a.clear_band
FROM annulus a
JOIN well w ON w.id = a.well_id
LEFT JOIN LATERAL (SELECT pressure_bar, quality FROM annulus_measurement
                    WHERE annulus_id = a.id ORDER BY ts DESC LIMIT 1) m ON true
LEFT JOIN LATERAL (SELECT maasp_bar FROM maasp_result WHERE annulus_id = a.id
                    ORDER BY config_version DESC LIMIT 1) r ON true
WHERE (CAST(:field AS text) IS NULL OR w.field = :field)
  AND (CAST(:status AS text) IS NULL OR w.status = CAST(:status AS well_status))
"""
)


@router.get(
    "/fleet",
    response_model=s.Fleet,
    summary="Every well with its status colour, risk, highest utilisation and open tasks",
    description="Two SQL queries whatever the number of wells. highest_utilisation is "
    "computed from each annulus's latest reading and current MAASP (bad readings excluded); "
    "an annulus with pressure over a MAASP of 0 is infinitely utilised: highest_level "
    "exceeded, highest_utilisation null (JSON has no infinity).",
    responses=ITEM_RESPONSES,
)
async def fleet(
    session: SessionDep,
    user: Viewer,
    field: s.Text | None = None,
    status: WellStatus | None = None,
    colour: IntegrityStatus | None = None,
) -> s.Fleet:
    params = {"field": field, "status": status.value if status else None}
    highest: dict[int, float] = {}
    levels: dict[int, UtilisationLevel] = {}
    for a in (await session.execute(_FLEET_ANNULI_SQL, params)).mappings():
        well_id = a["well_id"]
        level, util = _annulus_level(a["pressure_bar"], a["quality"], a["maasp_bar"], a)
        if LEVEL_CODES[level] > LEVEL_CODES[levels.get(well_id, UtilisationLevel.unknown)]:
            levels[well_id] = level
        if util is not None and util > highest.get(well_id, -1.0):
            highest[well_id] = util
    wells = []
    for r in (await session.execute(_FLEET_WELLS_SQL, params)).mappings():
        if colour is not None and r["colour"] != colour:
            continue
        util = highest.get(r["id"])
        wells.append(
            s.FleetWell(
                **r,
                highest_utilisation=None if util is None or math.isinf(util) else util,
                highest_level=levels.get(r["id"], UtilisationLevel.unknown),
            )
        )
    return s.Fleet(wells=wells)

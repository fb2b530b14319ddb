"""The query routes' read path (``services/api/routers/queries.py``): every SQL statement
they run, each behind a function named for what it reads.

Most of these tables belong to other services: readings and their roll-ups to ingest,
MAASP results to maasp, integrity snapshots to integrity, auto tasks to tasks
(docs/architecture.md, "Table ownership"); the API only reads them, here. ``/fleet``'s
read path is ``services/api/fleet.py``.

The functions return what the driver returns (rows, mappings, None), for the router to
judge and shape into responses. ``well_state_row``, the hottest read, runs one statement on
the driver's connection (``shared.infrastructure.db.driver_connection``, psycopg
``%(name)s`` parameters); the others run on the request's session.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import MappingResult, RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from shared.persistence.measurement_storage import TS

# --- /wells/{id}/state --------------------------------------------------------------------------

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
            'reading', CASE WHEN f.reading_ts IS NULL THEN NULL ELSE json_build_object(
                'timestamp', f.reading_ts, 'pressure_bar', f.pressure_bar,
                'temperature_c', f.temperature_c, 'quality', f.quality, 'source', f.source) END,
            'maasp_bar', f.maasp_bar, 'limiting_point_name', f.limiting_point_name)
            ORDER BY a.name), '[]')
     FROM annulus a
     -- The latest reading and current MAASP, kept by the writers' triggers (migrations 0008,
     -- 0010): one row, where the measurement table would be probed once per partition.
     LEFT JOIN fleet_annulus f ON f.annulus_id = a.id
    WHERE a.well_id = w.id) AS annuli,
  (SELECT row_to_json(i) FROM (SELECT * FROM integrity_snapshot WHERE well_id = w.id
                                ORDER BY created_at DESC, id DESC LIMIT 1) i) AS integrity,
  (SELECT coalesce(json_agg(t ORDER BY t.due_date NULLS LAST, t.id), '[]')
     FROM task t WHERE t.well_id = w.id AND t.status IN ('open', 'in_progress')) AS tasks
FROM well w WHERE w.id = %(well_id)s
"""


async def well_state_row(conn: Any, well_id: int) -> tuple[Any, ...] | None:
    """A well's /state row, or None: well, casing_string, tubing_string, barrier_element, barrier_envelope, annulus (api's), fleet_annulus (the read model of annulus_measurement, ingest's, and maasp_result, maasp's), integrity_snapshot (integrity's), task (tasks' and api's)."""
    return await (await conn.execute(_STATE_SQL, {"well_id": well_id})).fetchone()


# --- existence ----------------------------------------------------------------------------------


async def annulus_exists(session: AsyncSession, annulus_id: int) -> bool:
    """Whether the annulus exists (annulus, api's)."""
    return (
        await session.scalar(text("SELECT 1 FROM annulus WHERE id = :a"), {"a": annulus_id})
        is not None
    )


async def well_exists(session: AsyncSession, well_id: int) -> bool:
    """Whether the well exists (well, api's)."""
    return (
        await session.scalar(text("SELECT 1 FROM well WHERE id = :w"), {"w": well_id}) is not None
    )


# --- measurements -------------------------------------------------------------------------------

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


async def raw_measurements(
    session: AsyncSession, annulus_id: int, from_: datetime, to: datetime, n: int
) -> MappingResult:
    """An annulus's first n readings in [from_, to), bad too (annulus_measurement, ingest's)."""
    return (
        await session.execute(
            text(
                "SELECT timestamp, pressure_bar, temperature_c, quality, source "
                "FROM annulus_measurement WHERE annulus_id = :a "
                "AND timestamp >= :from AND timestamp < :to "
                "ORDER BY timestamp, source LIMIT :n"
            ),
            {"a": annulus_id, "from": from_, "to": to, "n": n},
        )
    ).mappings()


async def measurement_buckets(
    session: AsyncSession, annulus_id: int, width: timedelta, from_: datetime, to: datetime
) -> MappingResult:
    """An annulus's pressure buckets (annulus_measurement and its roll-ups, ingest's)."""
    sql, extra = buckets_query(width, from_, to)
    return (
        await session.execute(text(sql), {"a": annulus_id, "from": from_, "to": to} | extra)
    ).mappings()


# --- MAASP --------------------------------------------------------------------------------------


async def maasp_history(
    session: AsyncSession, annulus_id: int, limit: int, offset: int
) -> MappingResult:
    """A page of an annulus's MAASP results, newest first (maasp_result, maasp's)."""
    return (
        await session.execute(
            text(
                "SELECT * FROM maasp_result WHERE annulus_id = :a "
                "ORDER BY config_version DESC LIMIT :n OFFSET :o"
            ),
            {"a": annulus_id, "n": limit, "o": offset},
        )
    ).mappings()


async def current_maasp(session: AsyncSession, annulus_id: int) -> RowMapping | None:
    """An annulus's latest-config MAASP result or None (maasp_result, maasp's)."""
    return (
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


# --- integrity ----------------------------------------------------------------------------------


async def latest_integrity_snapshot(session: AsyncSession, well_id: int) -> RowMapping | None:
    """A well's latest integrity snapshot or None (integrity_snapshot, integrity's)."""
    return (
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


async def integrity_history(
    session: AsyncSession,
    well_id: int,
    from_: datetime | None,
    to: datetime | None,
    limit: int,
    offset: int,
) -> MappingResult:
    """A page of a well's snapshots, newest first (integrity_snapshot, integrity's)."""
    return (
        await session.execute(
            text(
                "SELECT * FROM integrity_snapshot WHERE well_id = :w "
                "AND (CAST(:from AS timestamptz) IS NULL OR created_at >= :from) "
                "AND (CAST(:to AS timestamptz) IS NULL OR created_at < :to) "
                "ORDER BY created_at DESC, id DESC LIMIT :n OFFSET :o"
            ),
            {"w": well_id, "from": from_, "to": to, "n": limit, "o": offset},
        )
    ).mappings()

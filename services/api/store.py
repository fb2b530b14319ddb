"""The api's SQL (its database adapter): every statement the service runs outside the
generic CRUD, each behind a function named for what it reads or writes.

- the query routes' read path (``services/api/processing/queries.py``: ``/state``,
  measurements, MAASP, integrity and its history) and ``/fleet``'s (the fleet read model,
  its change notifications);
- the transactional outbox: what a config event is built from, the row that queues it, and
  the relay's lock, reads and stamps (``services/api/processing/outbox.py``,
  ``services/api/publisher.py``);
- the alert history insert (``services/api/pump.py``);
- what the derived critical points are derived from and stored as
  (``services/api/processing/derived.py``).

The generic CRUD on the API's own tables keeps its ORM statements in
``services/api/processing/crud.py`` (and the handlers of ``processing/`` theirs).

Most of the tables read here belong to other services: readings and their roll-ups to
ingest, MAASP results to maasp, integrity snapshots to integrity, auto tasks to tasks
(docs/architecture.md, "Table ownership"); the API only reads them, here.

The read functions return what the driver returns (rows, mappings, None), for the handlers
to judge and shape into responses. ``well_state_row``, the hottest read, runs one statement
on the driver's connection (``shared.infrastructure.db.driver_connection``, psycopg
``%(name)s`` parameters), as do ``/fleet``'s; the others run on the request's session.
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import psycopg
from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import MappingResult, RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from shared.contracts import events as ev
from shared.contracts import topics
from shared.contracts.enums import CasingType
from shared.contracts.topics import entity_key
from shared.persistence.config_events import NEXT_CONFIG_VERSION
from shared.persistence.measurement_storage import TS
from shared.persistence.models import (
    AlertRecord,
    Annulus,
    BarrierElement,
    BarrierEnvelope,
    CasingString,
    CementInterval,
    CriticalPoint,
    OutboxRecord,
    SurveyStation,
)

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
    # Only the bounds given are in the statement: an ``(:from IS NULL OR ...)`` condition
    # lets PostgreSQL's generic plan (psycopg prepares a statement on its fifth use) scan
    # every row of the well for a bound it cannot see.
    bounds = "".join(
        condition
        for condition, value in (
            (" AND created_at >= :from", from_),
            (" AND created_at < :to", to),
        )
        if value is not None
    )
    return (
        await session.execute(
            text(
                f"SELECT * FROM integrity_snapshot WHERE well_id = :w{bounds} "
                "ORDER BY created_at DESC, id DESC LIMIT :n OFFSET :o"
            ),
            {"w": well_id, "from": from_, "to": to, "n": limit, "o": offset},
        )
    ).mappings()


# --- /fleet -------------------------------------------------------------------------------------
# The fleet read model (migration 0008; docs/decisions.md, "The fleet read model"): its column
# names are in this module's SQL only; the aggregate it replaces is ``FLEET_TRUTH_SQL``, which
# the tests compare it with. All of these run on the driver's connection (psycopg).

_WELLS_SQL = """
SELECT w.id, w.name, w.field, w.status::text, w.type::text, w.country, w.commissioning,
       f.colour::text, f.assessed, coalesce(f.assessment_gaps::text, '[]'),
       f.risk_score, f.risk_category::text,
       coalesce(t.open_tasks, 0), coalesce(t.critical_open_tasks, 0),
       coalesce(t.overdue_open_tasks, 0)
FROM well w
LEFT JOIN fleet_well f ON f.well_id = w.id
LEFT JOIN (SELECT well_id, count(*) AS open_tasks,
                  count(*) FILTER (WHERE priority = 'critical') AS critical_open_tasks,
                  count(*) FILTER (WHERE due_date < now()) AS overdue_open_tasks
             FROM task WHERE status IN ('open', 'in_progress') GROUP BY well_id) t
       ON t.well_id = w.id
ORDER BY w.name
"""
# When the first open task still to fall due does: the rows' overdue counts change then,
# with no write to announce it. Seconds from now (no clock but PostgreSQL's is involved).
_NEXT_DUE_SQL = """
SELECT extract(epoch FROM min(due_date) - now())::float8 FROM task
 WHERE status IN ('open', 'in_progress') AND due_date >= now()
"""

# Every annulus of the fleet, one packed big-endian column each (rows enter all the
# aggregates of one query in the same order, so the columns line up). A bad reading is
# shown, never used in a calculation: its pressure counts as none (NaN: unknown).
_ANNULI_SQL = """
SELECT coalesce(string_agg(int8send(a.well_id), ''), ''),
       coalesce(string_agg(float8send(coalesce(
           CASE WHEN fa.quality = 'bad' THEN NULL ELSE fa.pressure_bar END, 'NaN')), ''), ''),
       coalesce(string_agg(float8send(coalesce(fa.maasp_bar, 'NaN')), ''), ''),
       coalesce(string_agg(float8send(a.warning_threshold), ''), ''),
       coalesce(string_agg(float8send(a.exceeded_threshold), ''), ''),
       coalesce(string_agg(float8send(a.clear_band), ''), '')
FROM annulus a
LEFT JOIN fleet_annulus fa ON fa.annulus_id = a.id
"""

#: What the read model stands for, aggregated from the history tables: each annulus's
#: latest reading and current MAASP, each well's latest snapshot. Tests compare it with the
#: read model's rows.
FLEET_TRUTH_SQL = """
SELECT a.id AS annulus_id, m.timestamp AS reading_ts, m.pressure_bar, m.quality::text AS quality,
       r.config_version AS maasp_config_version, r.maasp_bar,
       i.created_at AS snapshot_ts, i.overall_status::text AS colour, i.risk_score,
       i.risk_category::text AS risk_category, i.assessed, i.assessment_gaps
FROM annulus a
LEFT JOIN LATERAL (SELECT timestamp, pressure_bar, quality FROM annulus_measurement
                    WHERE annulus_id = a.id ORDER BY timestamp DESC LIMIT 1) m ON true
LEFT JOIN LATERAL (SELECT config_version, maasp_bar FROM maasp_result WHERE annulus_id = a.id
                    ORDER BY config_version DESC LIMIT 1) r ON true
LEFT JOIN LATERAL (SELECT created_at, overall_status, risk_score, risk_category, assessed,
                          assessment_gaps
                     FROM integrity_snapshot
                    WHERE well_id = a.well_id ORDER BY created_at DESC, id DESC LIMIT 1) i ON true
ORDER BY a.id
"""
FLEET_MODEL_SQL = """
SELECT a.id AS annulus_id, fa.reading_ts, fa.pressure_bar, fa.quality::text AS quality,
       fa.maasp_config_version, fa.maasp_bar,
       f.snapshot_ts, f.colour::text AS colour, f.risk_score,
       f.risk_category::text AS risk_category, f.assessed, f.assessment_gaps
FROM annulus a
LEFT JOIN fleet_annulus fa ON fa.annulus_id = a.id
LEFT JOIN fleet_well f ON f.well_id = a.well_id
ORDER BY a.id
"""

#: The channel migration 0009's triggers notify when ``well``, ``fleet_well`` or ``task``
#: change.
FLEET_CHANNEL = "wims_fleet"


async def fleet_well_rows(conn: Any) -> tuple[list[tuple], float]:
    """Every well's /fleet row (well, fleet_well, task), with ``assessment_gaps`` as JSON
    ready to embed, and for how many seconds the rows stay right if nothing is written
    (until an open task falls due). The columns, in order: id, name, field, status, type,
    country, commissioning, colour, assessed, assessment_gaps, risk_score, risk_category,
    open_tasks, critical_open_tasks, overdue_open_tasks."""
    # Binary: no value goes through its text form.
    cursor = conn.cursor(binary=True)
    await cursor.execute(_WELLS_SQL)
    rows = [(*row[:9], orjson.Fragment(row[9]), *row[10:]) for row in await cursor.fetchall()]
    await cursor.execute(_NEXT_DUE_SQL)
    (next_due_s,) = await cursor.fetchone()
    return rows, float("inf") if next_due_s is None else next_due_s


async def fleet_annuli(conn: Any) -> list[np.ndarray]:
    """Every annulus of the fleet (annulus, fleet_annulus), as native numpy arrays, one entry
    per annulus in each: its well, its usable pressure and its MAASP (NaN: none), its stored
    warning threshold, exceeded threshold and clear band."""
    cursor = conn.cursor(binary=True)  # the packed columns arrive as bytes
    await cursor.execute(_ANNULI_SQL)
    wells, *floats = await cursor.fetchone()
    return [np.frombuffer(wells, dtype=">i8").astype(np.int64)] + [
        np.frombuffer(column, dtype=">f8").astype(np.float64) for column in floats
    ]


async def connect_fleet_listener(libpq_url: str) -> psycopg.AsyncConnection:
    """A connection of its own for hearing the fleet's change notifications."""
    return await psycopg.AsyncConnection.connect(
        libpq_url,
        autocommit=True,
        connect_timeout=2,
        application_name="wims-api-fleet-listener",
    )


async def listen_for_fleet_changes(listener: psycopg.AsyncConnection) -> None:
    await listener.execute(f"LISTEN {FLEET_CHANNEL}")


async def round_trip(listener: psycopg.AsyncConnection) -> None:
    """One round trip: PostgreSQL delivers every pending notification before it answers."""
    await listener.execute("SELECT 1")


# --- the outbox ---------------------------------------------------------------------------------
# Written in the request's transaction (services/api/processing/outbox.py); relayed by
# services/api/publisher.py.

# Any constant; it names "the outbox relay" among PostgreSQL advisory locks.
RELAY_LOCK_KEY = 0x5749_4D53_4F42  # "WIMSOB"


async def next_outbox_id(session: AsyncSession) -> int:
    """The next outbox row id, which is also the config version of the event it carries."""
    return int(await session.scalar(NEXT_CONFIG_VERSION))


def add_outbox_row(
    session: AsyncSession, topic: topics.Topic, key: int, event: ev.Event, oid: int
) -> None:
    """Queues ``event`` for ``topic`` (outbox, api's), keyed by the entity id ``key``."""
    session.add(OutboxRecord(id=oid, topic=topic.name, key=entity_key(key), value=event.encode()))


async def critical_points(session: AsyncSession, annulus_id: int) -> list[CriticalPoint]:
    """An annulus's critical points in id order (critical_point, api's)."""
    return list(
        await session.scalars(
            select(CriticalPoint)
            .where(CriticalPoint.annulus_id == annulus_id)
            .order_by(CriticalPoint.id)
        )
    )


async def annuli_with_point_counts(session: AsyncSession, well_id: int) -> list[Row]:
    """A well's annuli by name: (id, name, number of critical points) (annulus,
    critical_point, api's)."""
    points = (
        select(func.count(CriticalPoint.id))
        .where(CriticalPoint.annulus_id == Annulus.id)
        .scalar_subquery()
    )
    return list(
        await session.execute(
            select(Annulus.id, Annulus.name, points)
            .where(Annulus.well_id == well_id)
            .order_by(Annulus.name)
        )
    )


async def barrier_elements_with_envelope_type(session: AsyncSession, well_id: int) -> list[Row]:
    """A well's barrier elements in id order, each with its envelope's type
    (barrier_element, barrier_envelope, api's)."""
    return list(
        await session.execute(
            select(BarrierElement, BarrierEnvelope.type)
            .join(BarrierEnvelope, BarrierEnvelope.id == BarrierElement.envelope_id)
            .where(BarrierEnvelope.well_id == well_id)
            .order_by(BarrierElement.id)
        )
    )


async def cement_intervals(session: AsyncSession, well_id: int) -> list[Row]:
    """A well's cement intervals: (top_md, bottom_md, quality_flag) (cement_interval, api's)."""
    return list(
        await session.execute(
            select(
                CementInterval.top_md, CementInterval.bottom_md, CementInterval.quality_flag
            ).where(CementInterval.well_id == well_id)
        )
    )


async def take_relay_lock(conn: AsyncConnection) -> bool:
    """The relay's transaction-level advisory lock; False when another API process holds it."""
    return bool(
        await conn.scalar(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": RELAY_LOCK_KEY})
    )


async def lock_unsent_outbox_rows(conn: AsyncConnection, n: int) -> Sequence[Row]:
    """Up to ``n`` unsent outbox rows in id order, locked for this transaction (outbox, api's)."""
    return (
        await conn.execute(
            text(
                "SELECT id, topic, key, value FROM outbox WHERE sent_at IS NULL "
                "ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"n": n},
        )
    ).all()


async def mark_outbox_sent(conn: AsyncConnection, ids: list[int]) -> None:
    """Stamps ``sent_at`` on the outbox rows ``ids`` (outbox, api's)."""
    await conn.execute(
        text("UPDATE outbox SET sent_at = now() WHERE id = ANY(:ids)"),
        {"ids": ids},
    )


# --- alert history ------------------------------------------------------------------------------


async def insert_alerts(session: AsyncSession, rows: list[dict[str, Any]]) -> int:
    """Stores alert rows once each (alert, api's): an event id already stored is left alone
    (a redelivery). Returns how many were new."""
    result = await session.execute(
        insert(AlertRecord).values(rows).on_conflict_do_nothing(index_elements=["event_id"])
    )
    return max(result.rowcount or 0, 0)


# --- derived critical points ------------------------------------------------------------------


async def survey_stations(session: AsyncSession, well_id: int) -> list[SurveyStation]:
    """A well's deviation survey by MD (survey_station, api's)."""
    return list(
        await session.scalars(
            select(SurveyStation)
            .where(SurveyStation.well_id == well_id)
            .order_by(SurveyStation.md_m)
        )
    )


async def fluid_gradient_outside(session: AsyncSession, casing_id: int) -> float | None:
    """The fluid gradient of the annulus whose inner casing is ``casing_id`` (the next
    annulus out), or None (annulus, api's)."""
    return await session.scalar(
        select(Annulus.fluid_gradient_bar_per_m)
        .where(Annulus.inner_casing_string_id == casing_id)
        .limit(1)
    )


async def fluid_gradient_inside(session: AsyncSession, casing_id: int) -> float | None:
    """The fluid gradient of the annulus whose outer casing is ``casing_id`` (the next
    annulus in), or None (annulus, api's)."""
    return await session.scalar(
        select(Annulus.fluid_gradient_bar_per_m)
        .where(Annulus.outer_casing_string_id == casing_id)
        .limit(1)
    )


async def liner_inside(
    session: AsyncSession, well_id: int, outer: CasingString
) -> CasingString | None:
    """The shallowest liner of the well hung inside ``outer`` (casing_string, api's)."""
    return await session.scalar(
        select(CasingString)
        .where(
            CasingString.well_id == well_id,
            CasingString.casing_type == CasingType.liner,
            CasingString.id != outer.id,
            CasingString.top_md > outer.top_md,
            CasingString.top_md < outer.bottom_md,
        )
        .order_by(CasingString.top_md)
        .limit(1)
    )


async def top_of_cement_md(session: AsyncSession, casing_id: int) -> float | None:
    """The shallowest cement top behind a casing, or None (cement_interval, api's)."""
    return await session.scalar(
        select(func.min(CementInterval.top_md)).where(CementInterval.casing_id == casing_id)
    )


async def delete_critical_points(session: AsyncSession, ids: list[int]) -> None:
    """Deletes the critical points ``ids`` (critical_point, api's)."""
    await session.execute(delete(CriticalPoint).where(CriticalPoint.id.in_(ids)))


def add_critical_point(session: AsyncSession, values: dict[str, Any]) -> CriticalPoint:
    """Adds a critical point row to the transaction (critical_point, api's)."""
    row = CriticalPoint(**values)
    session.add(row)
    return row


async def annuli_of_well(session: AsyncSession, well_id: int) -> list[Annulus]:
    """A well's annuli (annulus, api's)."""
    return list(await session.scalars(select(Annulus).where(Annulus.well_id == well_id)))

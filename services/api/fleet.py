"""GET /fleet's read path: every well with its colour, risk, highest utilisation and open
tasks, from the fleet read model.

The latest integrity snapshot of each well and the latest reading and current MAASP of each
annulus are not aggregated here: PostgreSQL keeps them, one row per well (``fleet_well``)
and per annulus (``fleet_annulus``), current in the writers' own transactions (migration
0008; docs/decisions.md, "The fleet read model"). Utilisation and level are judged here,
for all annuli at once, by the domain's vectorised rules.

At 5,000 wells a request's cost is moving 5,000 rows through the driver, not finding them
(measured in docs/decisions.md, "The fleet read model"), so:

- the well-level rows (names, status, colour, risk, open-task counts), which change with an
  integrity snapshot or a task, not with a reading, are kept in memory by ``FleetWells`` and
  read again only when PostgreSQL notifies a change (migration 0009) or a task falls due;
- the annuli, whose readings change every second, are read on every request, as one row of
  packed columns (``float8send``/``int8send`` aggregated into one ``bytea`` per column, read
  by numpy in microseconds) instead of 10,000 rows of Python objects;
- each well's ``assessment_gaps`` is passed through as the JSON text PostgreSQL holds
  (``orjson.Fragment``), not parsed and serialised again;
- filters apply to the rows in memory.

The read model's column names are in this module's SQL only; the aggregate it replaces is
``FLEET_TRUTH_SQL``, which the tests compare it with.
"""

import asyncio
import logging
import time
from typing import Any

import numpy as np
import orjson
import psycopg

from services.api.metrics import FLEET_WELL_ROWS
from shared.contracts.enums import UtilisationLevel
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_BY_CODE,
    Thresholds,
    levels_for,
    utilisation_array,
)

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


def _thresholds(
    warning: np.ndarray, exceeded: np.ndarray, clear_band: np.ndarray
) -> tuple[Any, Any]:
    """Warning and exceeded threshold per annulus from its stored (warning, exceeded,
    clear_band), each distinct triple checked once by ``Thresholds`` itself (stored
    thresholds predating validation count as the WIMS defaults); scalars when every annulus
    has the same (the common case: the defaults)."""
    stored = np.stack([warning, exceeded, clear_band], axis=1)
    if (stored == stored[0]).all():  # one triple: no need to sort 10,000 rows to find it
        triples, inverse = stored[:1], np.zeros(len(stored), dtype=np.intp)
    else:
        triples, inverse = np.unique(stored, axis=0, return_inverse=True)
    checked = []
    for w, e, band in triples.tolist():
        try:
            t = Thresholds(w, e, band)
        except ValueError:
            t = DEFAULT_THRESHOLDS
        checked.append((t.warning, t.exceeded))
    if len(checked) == 1:
        return checked[0]
    per_annulus = np.array(checked, dtype=np.float64)[inverse.reshape(-1)]
    return per_annulus[:, 0], per_annulus[:, 1]


_LEVEL_NAMES = [LEVEL_BY_CODE[code].value for code in sorted(LEVEL_BY_CODE)]
_UNKNOWN = (None, UtilisationLevel.unknown.value)


def highest_by_well(
    wells: np.ndarray,
    pressure_bar: np.ndarray,
    maasp_bar: np.ndarray,
    warning: np.ndarray,
    exceeded: np.ndarray,
    clear_band: np.ndarray,
) -> dict[int, tuple[float | None, str]]:
    """Per well: the highest utilisation over its annuli (None when none has one, or when
    one is infinitely utilised: JSON has no infinity) and the worst level (no hysteresis).

    One entry per annulus in each array: its well, its usable pressure and its MAASP (NaN:
    none), its stored thresholds."""
    if wells.size == 0:
        return {}
    util = utilisation_array(pressure_bar, maasp_bar)
    codes = levels_for(util, *_thresholds(warning, exceeded, clear_band))
    ids, inverse = np.unique(wells, return_inverse=True)
    highest = np.full(ids.shape[0], np.nan)
    np.fmax.at(highest, inverse, util)  # fmax: NaN only where every annulus is NaN
    highest[~np.isfinite(highest)] = np.nan
    worst = np.zeros(ids.shape[0], dtype=np.int8)
    np.maximum.at(worst, inverse, codes)
    return {
        well: (None if h != h else h, _LEVEL_NAMES[c])  # h != h: NaN
        for well, h, c in zip(ids.tolist(), highest.tolist(), worst.tolist(), strict=True)
    }


def _unpack(row: tuple[bytes, ...]) -> list[np.ndarray]:
    """The packed columns of ``_ANNULI_SQL`` as native numpy arrays."""
    wells, *floats = row
    return [np.frombuffer(wells, dtype=">i8").astype(np.int64)] + [
        np.frombuffer(column, dtype=">f8").astype(np.float64) for column in floats
    ]


log = logging.getLogger(__name__)

#: The channel migration 0009's triggers notify when ``well``, ``fleet_well`` or ``task``
#: change.
CHANNEL = "wims_fleet"


class FleetWells:
    """The well-level rows of GET /fleet (a well's names and status, its latest snapshot's
    colour and risk, its open-task counts), kept in memory and read again only when they
    may have changed: on a notification from migration 0009's triggers, when an open task
    falls due (its overdue count changes with no write), and at least every ``max_age_s``.
    The utilisation part changes with every reading and is read on every request.

    Before reusing the rows, a request makes one round trip on the listening connection:
    PostgreSQL delivers every pending notification before it answers, and a notification is
    queued when its transaction commits, so every commit made before the request is heard
    first (a client that writes and then reads sees its write). While the listening
    connection is down, nothing is reused: every request reads, and a connection is tried
    again at most once a second. ``max_age_s`` 0 turns the reuse off.
    """

    def __init__(self, libpq_url: str, max_age_s: float) -> None:
        self._url = libpq_url
        self._max_age_s = max_age_s
        self._listener: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()
        self._retry_at = 0.0
        # Notifications heard (and listening connections lost): the version of the sources.
        self._changes = 0
        self._rows: list[tuple] | None = None
        self._rows_version = -1
        self._rows_until = 0.0  # time.monotonic()

    async def rows(self, conn: Any) -> list[tuple]:
        """Every well's row (``_WELLS_SQL``), current as of this call; ``conn`` reads them
        when they have to be read."""
        if not await self._caught_up():
            FLEET_WELL_ROWS.labels("database").inc()
            return (await _read_wells(conn))[0]
        if (
            self._rows is not None
            and self._rows_version == self._changes
            and time.monotonic() < self._rows_until
        ):
            FLEET_WELL_ROWS.labels("memory").inc()
            return self._rows
        FLEET_WELL_ROWS.labels("database").inc()
        version = self._changes  # a change heard while reading makes the next call read
        rows, valid_s = await _read_wells(conn)
        self._rows, self._rows_version = rows, version
        self._rows_until = time.monotonic() + min(self._max_age_s, valid_s)
        return rows

    async def _caught_up(self) -> bool:
        """True once every notification of a commit made before this call has been heard;
        False when that cannot be known (no listening connection)."""
        if self._max_age_s <= 0:
            return False
        async with self._lock:
            try:
                if self._listener is None:
                    if time.monotonic() < self._retry_at:
                        return False
                    self._retry_at = time.monotonic() + 1.0
                    listener = await psycopg.AsyncConnection.connect(
                        self._url,
                        autocommit=True,
                        connect_timeout=2,
                        application_name="wims-api-fleet-listener",
                    )
                    listener.add_notify_handler(self._heard)
                    self._listener = listener
                    await listener.execute(f"LISTEN {CHANNEL}")
                    self._changes += 1  # whatever changed while nobody listened
                else:
                    await self._listener.execute("SELECT 1")
                return True
            except psycopg.Error as exc:
                log.warning("fleet: not listening for changes (%r); reading on every request", exc)
                await self._drop()
                return False

    def _heard(self, _notify: psycopg.Notify) -> None:
        self._changes += 1

    async def _drop(self) -> None:
        self._changes += 1
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def keep_listening(self, interval_s: float = 5.0) -> None:
        """Background: between requests, take the notifications off the connection (so
        they do not queue up in PostgreSQL for an idle API) and reconnect a lost one."""
        while True:
            await self._caught_up()
            await asyncio.sleep(interval_s)

    async def close(self) -> None:
        async with self._lock:
            await self._drop()


async def _read_wells(conn: Any) -> tuple[list[tuple], float]:
    """Every well's row, with ``assessment_gaps`` as JSON ready to embed, and for how many
    seconds the rows stay right if nothing is written (until an open task falls due)."""
    # Binary: no value goes through its text form.
    cursor = conn.cursor(binary=True)
    await cursor.execute(_WELLS_SQL)
    rows = [(*row[:9], orjson.Fragment(row[9]), *row[10:]) for row in await cursor.fetchall()]
    await cursor.execute(_NEXT_DUE_SQL)
    (next_due_s,) = await cursor.fetchone()
    return rows, float("inf") if next_due_s is None else next_due_s


# Where each filter of GET /fleet looks in a row of ``_WELLS_SQL``.
_FILTER_COLUMNS = {"field": 2, "status": 3, "country": 5, "colour": 7}


async def fleet_json(conn: Any, wells: FleetWells, **filters: str | None) -> bytes:
    """The body of GET /fleet (schemas.Fleet), serialised; ``conn`` is a psycopg connection
    (shared.infrastructure.db.driver_connection); ``filters`` are the keys of
    ``_FILTER_COLUMNS``, None where not given."""
    rows = await wells.rows(conn)
    given = [(_FILTER_COLUMNS[name], v) for name, v in filters.items() if v is not None]
    if given:
        rows = [row for row in rows if all(row[i] == value for i, value in given)]
    cursor = conn.cursor(binary=True)  # the packed columns arrive as bytes
    await cursor.execute(_ANNULI_SQL)
    per_well = highest_by_well(*_unpack(await cursor.fetchone()))
    answer = []
    for (
        well_id, name, field, status, type_, country, commissioning, colour, assessed, gaps,
        risk_score, risk_category, open_tasks, critical_open_tasks, overdue_open_tasks,
    ) in rows:  # fmt: skip
        highest_utilisation, highest_level = per_well.get(well_id, _UNKNOWN)
        answer.append(
            {
                "id": well_id,
                "name": name,
                "field": field,
                "status": status,
                "type": type_,
                "country": country,
                "commissioning": commissioning,
                "colour": colour,
                "assessed": assessed,
                "assessment_gaps": gaps,
                "risk_score": risk_score,
                "risk_category": risk_category,
                "open_tasks": open_tasks,
                "critical_open_tasks": critical_open_tasks,
                "overdue_open_tasks": overdue_open_tasks,
                "highest_utilisation": highest_utilisation,
                "highest_level": highest_level,
            }
        )
    return orjson.dumps({"wells": answer})

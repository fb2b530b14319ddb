"""GET /fleet's read path: every well with its colour, risk, highest utilisation and open
tasks, from the fleet read model.

The latest integrity snapshot of each well and the latest reading and current MAASP of each
annulus are not aggregated here: PostgreSQL keeps them, one row per well (``fleet_well``)
and per annulus (``fleet_annulus``), current in the writers' own transactions (migration
0008; docs/decisions.md, "The fleet read model"). Open-task counts are counted live (a
task is "overdue" relative to now, and open tasks are few). Utilisation and level are
judged here, for all annuli at once, by the domain's vectorised rules; the answer is
serialised once with orjson: at 5,000 wells, building and validating 5,000 pydantic
objects was most of a request.

The read model's column names are in this module's SQL only; the aggregate it replaces is
``FLEET_TRUTH_SQL``, which the tests compare it with.
"""

from typing import Any

import numpy as np
import orjson

from shared.contracts.enums import UtilisationLevel
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_BY_CODE,
    Thresholds,
    levels_for,
    utilisation_array,
)

_FILTERS = """
  (CAST(%(field)s AS text) IS NULL OR w.field = %(field)s)
  AND (CAST(%(status)s AS text) IS NULL OR w.status = CAST(%(status)s AS well_status))
  AND (CAST(%(country)s AS text) IS NULL OR w.country = %(country)s)"""

_WELLS_SQL = f"""
SELECT w.id, w.name, w.field, w.status::text, w.type::text, w.country, w.commissioning,
       f.colour::text, f.assessed, coalesce(f.assessment_gaps, '[]'::jsonb),
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
WHERE {_FILTERS}
  AND (CAST(%(colour)s AS text) IS NULL OR f.colour = CAST(%(colour)s AS integrity_status))
ORDER BY w.name
"""
_WELL_KEYS = (
    "id",
    "name",
    "field",
    "status",
    "type",
    "country",
    "commissioning",
    "colour",
    "assessed",
    "assessment_gaps",
    "risk_score",
    "risk_category",
    "open_tasks",
    "critical_open_tasks",
    "overdue_open_tasks",
    "highest_utilisation",
    "highest_level",
)

# Bad readings are shown, never used in a calculation: their pressure counts as none.
_ANNULI_SQL = f"""
SELECT a.well_id, CASE WHEN fa.quality = 'bad' THEN NULL ELSE fa.pressure_bar END,
       fa.maasp_bar, a.warning_threshold, a.exceeded_threshold, a.clear_band
FROM annulus a
JOIN well w ON w.id = a.well_id
LEFT JOIN fleet_annulus fa ON fa.annulus_id = a.id
WHERE {_FILTERS}
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


def _checked(warning: float, exceeded: float, band: float) -> tuple[float, float]:
    try:
        t = Thresholds(warning, exceeded, band)
    except ValueError:
        t = DEFAULT_THRESHOLDS  # stored thresholds predating validation: the WIMS defaults
    return t.warning, t.exceeded


def _thresholds(triples: list[tuple[float, float, float]]) -> tuple[Any, Any]:
    """Warning and exceeded threshold per annulus from its stored (warning, exceeded,
    clear_band), each distinct triple checked once by ``Thresholds`` itself; scalars when
    every annulus has the same (the common case: the defaults)."""
    checked = {t: _checked(*t) for t in set(triples)}
    if len(checked) == 1:
        return next(iter(checked.values()))
    per_annulus = np.array([checked[t] for t in triples], dtype=np.float64)
    return per_annulus[:, 0], per_annulus[:, 1]


_LEVEL_NAMES = [LEVEL_BY_CODE[code].value for code in sorted(LEVEL_BY_CODE)]


def highest_by_well(annuli: list[Any]) -> dict[int, tuple[float | None, str]]:
    """Per well: the highest utilisation over its annuli (None when none has one, or when
    one is infinitely utilised: JSON has no infinity) and the worst level (no hysteresis).

    ``annuli`` rows: (well_id, usable pressure or None, maasp_bar or None, warning,
    exceeded, clear_band)."""
    if not annuli:
        return {}
    # Column by column (zip(*rows) over thousands of rows is slower); None becomes NaN: no
    # reading, or no MAASP, is an unknown utilisation.
    wells = np.array([r[0] for r in annuli], dtype=np.int64)
    pressure = np.array([r[1] for r in annuli], dtype=np.float64)
    maasp = np.array([r[2] for r in annuli], dtype=np.float64)
    util = utilisation_array(pressure, maasp)
    codes = levels_for(util, *_thresholds([(r[3], r[4], r[5]) for r in annuli]))
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


async def fleet_json(
    conn: Any, field: str | None, country: str | None, status: str | None, colour: str | None
) -> bytes:
    """The body of GET /fleet (schemas.Fleet), serialised; ``conn`` is a psycopg connection
    (shared.infrastructure.db.driver_connection)."""
    params = {"field": field, "country": country, "status": status}
    annuli = await (await conn.execute(_ANNULI_SQL, params)).fetchall()
    wells = await (await conn.execute(_WELLS_SQL, params | {"colour": colour})).fetchall()
    per_well = highest_by_well(annuli)
    unknown = (None, UtilisationLevel.unknown.value)
    rows = [(*row, *per_well.get(row[0], unknown)) for row in wells]
    return orjson.dumps({"wells": [dict(zip(_WELL_KEYS, row, strict=True)) for row in rows]})

"""The api's pure core: what it judges and builds from rows it is handed, no I/O (no
database, no Kafka, no clock).

- ``/state`` and ``/fleet``: an annulus's level and utilisation from its latest reading and
  current MAASP, the same rule vectorised for every annulus of the fleet, and the fleet's
  answer built from its rows;
- the outbox: the well config event built from the well as it is in the transaction;
- the alert history: the row an alert is stored as;
- derived critical points: the stored architecture as the domain's inputs, and the
  proposals compared with the points already stored.

The rules themselves are in ``shared/domain``; this module applies them. Rows come from
``services/api/store.py`` (ORM objects are read by attribute only; their classes are named
for type checking).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from shared.contracts import events as ev
from shared.contracts.enums import ElementType, Quality, UtilisationLevel
from shared.domain.critical_points import (
    Accessory,
    Casing,
    Derivation,
    DerivedPoint,
    Tubing,
    Tvd,
)
from shared.domain.integrity import cement_quality_behind
from shared.domain.survey import Station, minimum_curvature
from shared.domain.utilisation import (
    DEFAULT_THRESHOLDS,
    LEVEL_BY_CODE,
    Thresholds,
    level_for,
    levels_for,
    utilisation,
    utilisation_array,
)

if TYPE_CHECKING:
    from shared.persistence.models import (
        CasingString,
        CriticalPoint,
        SurveyStation,
        TubingString,
        Well,
    )

# --- an annulus's level (/state) ----------------------------------------------------------------


def annulus_level(
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


# --- the fleet (/fleet) -------------------------------------------------------------------------
# Utilisation and level are judged here, for all annuli at once, by the domain's vectorised
# rules; the rows are ``services/api/store.py``'s ``fleet_well_rows`` and ``fleet_annuli``.


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


# Where each filter of GET /fleet looks in a row of ``store.fleet_well_rows``.
_FILTER_COLUMNS = {"field": 2, "status": 3, "country": 5, "colour": 7}


def filter_fleet_rows(rows: list[tuple], filters: dict[str, str | None]) -> list[tuple]:
    """The rows that match every given filter (the keys of ``_FILTER_COLUMNS``, None where
    not given)."""
    given = [(_FILTER_COLUMNS[name], v) for name, v in filters.items() if v is not None]
    if given:
        rows = [row for row in rows if all(row[i] == value for i, value in given)]
    return rows


def fleet_body(rows: list[tuple], per_well: dict[int, tuple[float | None, str]]) -> bytes:
    """The body of GET /fleet (schemas.Fleet), serialised, from the wells' rows
    (``store.fleet_well_rows``) and their highest utilisation and level
    (``highest_by_well``)."""
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


# --- the outbox's well config -------------------------------------------------------------------


def well_config_event(
    well: Well,
    annuli: Sequence[tuple[int, str, int]],
    elements: Sequence[tuple[Any, Any]],
    cement: Sequence[tuple[Any, ...]],
    oid: int,
    *,
    deleted: bool,
) -> ev.WellConfig:
    """The well config event: the well's annuli ((id, name, number of critical points)), its
    barrier elements (each with its envelope's type; a cement element with the quality of
    the cement behind it) and consequence level, as version ``oid``."""
    return ev.WellConfig(
        event_id=ev.derived_id("well_config", well.id, oid),
        well_id=well.id,
        version=oid,
        name=well.name,
        type=well.type,
        location=well.location,
        consequence_level=well.consequence_level,
        annuli=[ev.AnnulusRef(id=a_id, name=name, critical_points=n) for a_id, name, n in annuli],
        elements=[
            ev.BarrierElementConfig(
                id=el.id,
                name=el.name,
                element_type=el.element_type,
                envelope_type=env_type,
                status=el.status,
                last_tested_at=el.last_tested_at,
                next_test_due=el.next_test_due,
                cement_quality=(
                    cement_quality_behind(el.depth_md, [tuple(r) for r in cement])
                    if el.element_type is ElementType.cement
                    else None
                ),
                cement_quality_override=el.cement_quality_override,
            )
            for el, env_type in elements
        ],
        commissioning=well.commissioning,
        deleted=deleted,
    )


# --- the alert history --------------------------------------------------------------------------


def alert_row(alert: ev.Alert, partition: int, offset: int) -> dict[str, Any]:
    """The alert table's row for ``alert``, read at ``partition``/``offset`` of wims.alerts."""
    return {
        "event_id": alert.event_id,
        "kind": str(alert.kind),
        "severity": str(alert.severity),
        "well_id": alert.well_id,
        "annulus_id": alert.annulus_id,
        "ts": alert.ts,
        "message": alert.message,
        "payload": alert.model_dump(mode="json"),
        "kafka_partition": partition,
        "kafka_offset": offset,
    }


# --- derived critical points --------------------------------------------------------------------

#: a manual point this close in MD to a derived point of the same type overrides it
OVERRIDE_TOLERANCE_M = 1.0
DERIVED = "derived"
MANUAL = "manual"


def tvd_of(stations: Sequence[SurveyStation]) -> Tvd:
    """TVD of any MD of the well: its survey by minimum curvature, vertical without one."""
    if not stations:
        return float
    trajectory = minimum_curvature(
        [Station(r.md_m, r.inclination_deg, r.azimuth_deg) for r in stations]
    )
    return lambda md: float(trajectory.tvd_at(md)[0])


def casing_input(row: CasingString, toc_md: float | None = None) -> Casing:
    return Casing(
        name=row.name,
        shoe_md=row.bottom_md,
        shoe_tvd=row.shoe_tvd,
        burst_limit_bar=row.burst_limit_bar,
        collapse_limit_bar=row.collapse_limit_bar,
        derating_percent=row.derating_percent,
        formation_strength_gradient_bar_per_m=row.formation_strength_gradient_bar_per_m,
        top_of_cement_md=toc_md,
    )


def tubing_input(row: TubingString) -> Tubing:
    accessories: tuple[Accessory, ...] = ()
    if row.sssv_depth_md is not None and row.sssv_collapse_limit_bar is not None:
        accessories = (Accessory("SSSV", row.sssv_depth_md, row.sssv_collapse_limit_bar),)
    return Tubing(
        packer_depth_md=row.packer_depth_md,
        collapse_limit_bar=row.collapse_limit_bar,
        packer_rating_bar=row.packer_rating_bar,
        fluid_gradient_bar_per_m=row.fluid_gradient_bar_per_m or 0.0,
        min_pressure_bar=row.min_pressure_bar or 0.0,
        derating_percent=row.derating_percent,
        accessories=accessories,
    )


def overriding(point: DerivedPoint, manual: Sequence[CriticalPoint]) -> CriticalPoint | None:
    """The manual point that takes the place of ``point``, if any."""
    for row in manual:
        same_type = str(row.point_type) == str(point.point_type)
        if same_type and abs(row.depth_md - point.depth_md) <= OVERRIDE_TOLERANCE_M:
            return row
    return None


def derivation_record(point: DerivedPoint) -> dict[str, Any]:
    return {
        "kind": point.kind,
        "formula": point.formula,
        "source": point.source,
        "inputs": dict(point.inputs),
    }


@dataclass
class Proposal:
    point: DerivedPoint
    status: str  # proposed, accepted, changed (differs from the accepted one), overridden
    critical_point_id: int | None


def _same(row: CriticalPoint, point: DerivedPoint) -> bool:
    return (
        abs(row.tvd_m - point.tvd_m) < 1e-6
        and abs(row.depth_md - point.depth_md) < 1e-6
        and abs(row.pressure_limit_bar - point.pressure_limit_bar) < 1e-6
    )


def compare_proposals(derivation: Derivation, rows: Sequence[CriticalPoint]) -> list[Proposal]:
    """Each derived point with its status against the annulus's stored points ``rows``."""
    manual = [r for r in rows if r.origin == MANUAL]
    accepted = {(r.derivation or {}).get("kind"): r for r in rows if r.origin == DERIVED}
    out = []
    for point in derivation.points:
        override = overriding(point, manual)
        if override is not None:
            out.append(Proposal(point, "overridden", override.id))
        elif (row := accepted.get(point.kind)) is not None:
            out.append(Proposal(point, "accepted" if _same(row, point) else "changed", row.id))
        else:
            out.append(Proposal(point, "proposed", None))
    return out


def derived_point_values(annulus_id: int, point: DerivedPoint, user_id: int) -> dict[str, Any]:
    """The critical_point row an accepted derived point is stored as."""
    return {
        "annulus_id": annulus_id,
        "label": point.label,
        "point_type": point.point_type,
        "depth_md": point.depth_md,
        "tvd_m": point.tvd_m,
        "pressure_limit_bar": point.pressure_limit_bar,
        "notes": f"derived: {point.formula} ({point.source})",
        "origin": DERIVED,
        "derivation": derivation_record(point),
        "accepted_by_id": user_id,
    }

"""Derived critical points: the stored architecture turned into the domain's inputs, and the
engineer's acceptance of the proposals (docs/domain.md, "Derived critical points").

Proposals are computed on demand from the well as it is now (strings, cement, annuli,
survey); nothing is stored until an engineer accepts them (or, with
``WIMS_AUTO_ACCEPT_DERIVED_POINTS=true``, every architecture change accepts them). Accepted
points are ordinary ``critical_point`` rows with ``origin='derived'``, so MAASP is
recomputed the one way it always is: the annulus config goes through the outbox to the
MAASP worker. A manual point of the same type at the same depth (within
``OVERRIDE_TOLERANCE_M``) overrides a derived one: the derived one is not stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api.processing.outbox import queue_annulus_config
from shared.contracts.enums import CasingType
from shared.domain.critical_points import (
    Accessory,
    AnnulusSetting,
    Casing,
    Derivation,
    DerivedPoint,
    Liner,
    Tubing,
    Tvd,
    derive_a_annulus,
    derive_outer_annulus,
)
from shared.domain.survey import Station, minimum_curvature
from shared.persistence.models import (
    Annulus,
    CasingString,
    CementInterval,
    CriticalPoint,
    SurveyStation,
    TubingString,
    User,
    Well,
)

#: a manual point this close in MD to a derived point of the same type overrides it
OVERRIDE_TOLERANCE_M = 1.0
DERIVED = "derived"
MANUAL = "manual"


async def survey_stations(session: AsyncSession, well_id: int) -> list[SurveyStation]:
    return list(
        await session.scalars(
            select(SurveyStation)
            .where(SurveyStation.well_id == well_id)
            .order_by(SurveyStation.md_m)
        )
    )


async def well_tvd(session: AsyncSession, well_id: int) -> Tvd:
    """TVD of any MD of the well: its survey by minimum curvature, vertical without one."""
    rows = await survey_stations(session, well_id)
    if not rows:
        return float
    trajectory = minimum_curvature(
        [Station(r.md_m, r.inclination_deg, r.azimuth_deg) for r in rows]
    )
    return lambda md: float(trajectory.tvd_at(md)[0])


def _casing(row: CasingString, toc_md: float | None = None) -> Casing:
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


def _tubing(row: TubingString) -> Tubing:
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


async def _neighbour_gradient(session: AsyncSession, condition: Any) -> float | None:
    return await session.scalar(select(Annulus.fluid_gradient_bar_per_m).where(condition).limit(1))


async def derive_for(session: AsyncSession, annulus: Annulus) -> Derivation:
    """The proposals for one annulus from the well as it is in this transaction."""
    well = await session.get(Well, annulus.well_id)
    assert well is not None
    tvd = await well_tvd(session, well.id)
    backup = annulus.backup_gradient_bar_per_m
    if backup is None and annulus.outer_casing_string_id is not None:
        # behind the outer casing: the fluid of the next annulus out
        backup = await _neighbour_gradient(
            session, Annulus.inner_casing_string_id == annulus.outer_casing_string_id
        )
    outer = (
        await session.get(CasingString, annulus.outer_casing_string_id)
        if annulus.outer_casing_string_id is not None
        else None
    )
    out = Derivation()
    if outer is None:
        out.missing["annulus"] = ["annulus.outer_casing_string_id"]
        return out
    setting = AnnulusSetting(
        fluid_gradient_bar_per_m=annulus.fluid_gradient_bar_per_m,
        backup_gradient_bar_per_m=backup,
        wellhead_rating_bar=well.wellhead_rating_bar,
        tree_rating_bar=well.tree_rating_bar,
    )
    if annulus.inner_tubing_string_id is not None:
        tubing = await session.get(TubingString, annulus.inner_tubing_string_id)
        assert tubing is not None
        liner_row = await session.scalar(
            select(CasingString)
            .where(
                CasingString.well_id == well.id,
                CasingString.casing_type == CasingType.liner,
                CasingString.id != outer.id,
                CasingString.top_md > outer.top_md,
                CasingString.top_md < outer.bottom_md,
            )
            .order_by(CasingString.top_md)
            .limit(1)
        )
        liner = Liner(liner_row.top_md, liner_row.liner_hanger_rating_bar) if liner_row else None
        return derive_a_annulus(setting, _tubing(tubing), _casing(outer), tvd, liner)
    if annulus.inner_casing_string_id is None:
        out.missing["annulus"] = ["annulus.inner_tubing_string_id or inner_casing_string_id"]
        return out
    inner = await session.get(CasingString, annulus.inner_casing_string_id)
    assert inner is not None
    toc = await session.scalar(
        select(func.min(CementInterval.top_md)).where(CementInterval.casing_id == inner.id)
    )
    inside = await _neighbour_gradient(
        session, Annulus.outer_casing_string_id == annulus.inner_casing_string_id
    )
    setting = AnnulusSetting(
        fluid_gradient_bar_per_m=setting.fluid_gradient_bar_per_m,
        backup_gradient_bar_per_m=setting.backup_gradient_bar_per_m,
        inner_gradient_bar_per_m=inside,
        wellhead_rating_bar=setting.wellhead_rating_bar,
    )
    return derive_outer_annulus(setting, _casing(inner, toc), _casing(outer), tvd)


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


async def _points(session: AsyncSession, annulus_id: int) -> list[CriticalPoint]:
    return list(
        await session.scalars(
            select(CriticalPoint)
            .where(CriticalPoint.annulus_id == annulus_id)
            .order_by(CriticalPoint.id)
        )
    )


def _same(row: CriticalPoint, point: DerivedPoint) -> bool:
    return (
        abs(row.tvd_m - point.tvd_m) < 1e-6
        and abs(row.depth_md - point.depth_md) < 1e-6
        and abs(row.pressure_limit_bar - point.pressure_limit_bar) < 1e-6
    )


async def proposals(session: AsyncSession, annulus: Annulus) -> tuple[list[Proposal], Derivation]:
    derivation = await derive_for(session, annulus)
    rows = await _points(session, annulus.id)
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
    return out, derivation


async def accept(
    session: AsyncSession, annulus: Annulus, user: User, kinds: Sequence[str] | None = None
) -> tuple[list[CriticalPoint], list[Proposal], Derivation]:
    """Stores the proposals (all, or those of ``kinds``) as the annulus's derived points,
    replacing the derived points of those kinds; overridden ones are left out. Queues the
    annulus config so the MAASP worker recomputes MAASP. Returns the stored rows."""
    props, derivation = await proposals(session, annulus)
    chosen = [p for p in props if kinds is None or p.point.kind in kinds]
    replaced = {p.point.kind for p in chosen}
    derived_rows = [r for r in await _points(session, annulus.id) if r.origin == DERIVED]
    stale = [
        r.id for r in derived_rows if kinds is None or (r.derivation or {}).get("kind") in replaced
    ]
    if stale:
        await session.execute(delete(CriticalPoint).where(CriticalPoint.id.in_(stale)))
    stored = []
    for p in chosen:
        if p.status == "overridden":
            continue
        row = CriticalPoint(
            annulus_id=annulus.id,
            label=p.point.label,
            point_type=p.point.point_type,
            depth_md=p.point.depth_md,
            tvd_m=p.point.tvd_m,
            pressure_limit_bar=p.point.pressure_limit_bar,
            notes=f"derived: {p.point.formula} ({p.point.source})",
            origin=DERIVED,
            derivation=derivation_record(p.point),
            accepted_by_id=user.id,
        )
        session.add(row)
        stored.append(row)
    await session.flush()
    await queue_annulus_config(session, annulus)
    return stored, props, derivation


async def accept_well_if_auto(session: AsyncSession, well_id: int, user: User, auto: bool) -> None:
    """With auto-accept on, an architecture change re-derives every annulus of the well."""
    if not auto:
        return
    for annulus in await session.scalars(select(Annulus).where(Annulus.well_id == well_id)):
        await accept(session, annulus, user)

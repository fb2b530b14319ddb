"""Derived critical points: the proposals for an annulus from the well as it is stored, and
the engineer's acceptance of them (docs/domain.md, "Derived critical points").

Proposals are computed on demand from the well as it is now (strings, cement, annuli,
survey); nothing is stored until an engineer accepts them (or, with
``WIMS_AUTO_ACCEPT_DERIVED_POINTS=true``, every architecture change accepts them). Accepted
points are ordinary ``critical_point`` rows with ``origin='derived'``, so MAASP is
recomputed the one way it always is: the annulus config goes through the outbox to the
MAASP worker. A manual point of the same type at the same depth (within
``OVERRIDE_TOLERANCE_M``) overrides a derived one: the derived one is not stored.

The stored architecture turned into the domain's inputs, and the comparison of the
proposals with the stored points, are ``services/api/core.py``'s; the statements are
``services/api/store.py``'s.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.api import store
from services.api.core import (
    DERIVED,
    Proposal,
    casing_input,
    compare_proposals,
    derived_point_values,
    tubing_input,
    tvd_of,
)
from services.api.processing.outbox import queue_annulus_config
from shared.domain.critical_points import (
    AnnulusSetting,
    Derivation,
    Liner,
    Tvd,
    derive_a_annulus,
    derive_outer_annulus,
)
from shared.persistence.models import (
    Annulus,
    CasingString,
    CriticalPoint,
    TubingString,
    User,
    Well,
)


async def well_tvd(session: AsyncSession, well_id: int) -> Tvd:
    """TVD of any MD of the well: its survey by minimum curvature, vertical without one."""
    return tvd_of(await store.survey_stations(session, well_id))


async def derive_for(session: AsyncSession, annulus: Annulus) -> Derivation:
    """The proposals for one annulus from the well as it is in this transaction."""
    well = await session.get(Well, annulus.well_id)
    assert well is not None
    tvd = await well_tvd(session, well.id)
    backup = annulus.backup_gradient_bar_per_m
    if backup is None and annulus.outer_casing_string_id is not None:
        # behind the outer casing: the fluid of the next annulus out
        backup = await store.fluid_gradient_outside(session, annulus.outer_casing_string_id)
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
        liner_row = await store.liner_inside(session, well.id, outer)
        liner = Liner(liner_row.top_md, liner_row.liner_hanger_rating_bar) if liner_row else None
        return derive_a_annulus(setting, tubing_input(tubing), casing_input(outer), tvd, liner)
    if annulus.inner_casing_string_id is None:
        out.missing["annulus"] = ["annulus.inner_tubing_string_id or inner_casing_string_id"]
        return out
    inner = await session.get(CasingString, annulus.inner_casing_string_id)
    assert inner is not None
    toc = await store.top_of_cement_md(session, inner.id)
    inside = await store.fluid_gradient_inside(session, annulus.inner_casing_string_id)
    setting = AnnulusSetting(
        fluid_gradient_bar_per_m=setting.fluid_gradient_bar_per_m,
        backup_gradient_bar_per_m=setting.backup_gradient_bar_per_m,
        inner_gradient_bar_per_m=inside,
        wellhead_rating_bar=setting.wellhead_rating_bar,
    )
    return derive_outer_annulus(setting, casing_input(inner, toc), casing_input(outer), tvd)


async def proposals(session: AsyncSession, annulus: Annulus) -> tuple[list[Proposal], Derivation]:
    derivation = await derive_for(session, annulus)
    rows = await store.critical_points(session, annulus.id)
    return compare_proposals(derivation, rows), derivation


async def accept(
    session: AsyncSession, annulus: Annulus, user: User, kinds: Sequence[str] | None = None
) -> tuple[list[CriticalPoint], list[Proposal], Derivation]:
    """Stores the proposals (all, or those of ``kinds``) as the annulus's derived points,
    replacing the derived points of those kinds; overridden ones are left out. Queues the
    annulus config so the MAASP worker recomputes MAASP. Returns the stored rows."""
    props, derivation = await proposals(session, annulus)
    chosen = [p for p in props if kinds is None or p.point.kind in kinds]
    replaced = {p.point.kind for p in chosen}
    derived_rows = [
        r for r in await store.critical_points(session, annulus.id) if r.origin == DERIVED
    ]
    stale = [
        r.id for r in derived_rows if kinds is None or (r.derivation or {}).get("kind") in replaced
    ]
    if stale:
        await store.delete_critical_points(session, stale)
    stored = [
        store.add_critical_point(session, derived_point_values(annulus.id, p.point, user.id))
        for p in chosen
        if p.status != "overridden"
    ]
    await session.flush()
    await queue_annulus_config(session, annulus)
    return stored, props, derivation


async def accept_well_if_auto(session: AsyncSession, well_id: int, user: User, auto: bool) -> None:
    """With auto-accept on, an architecture change re-derives every annulus of the well."""
    if not auto:
        return
    for annulus in await store.annuli_of_well(session, well_id):
        await accept(session, annulus, user)

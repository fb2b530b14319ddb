"""The well architecture, barriers, tags and tasks: generic CRUD plus the rules an engineer
expects (geometry checks) and the outbox records the stream processors need."""

import math
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.api import schemas as s
from services.api.core import DERIVED, MANUAL, OVERRIDE_TOLERANCE_M
from services.api.errors import FieldInvalid
from services.api.processing.crud import Ctx, Parent, Resource, crud_router, get_or_404
from services.api.processing.derived import accept_well_if_auto, well_tvd
from services.api.processing.outbox import (
    queue_annulus_config,
    queue_barrier_event,
    queue_well_config,
)
from shared.contracts import events as ev
from shared.contracts.enums import (
    CasingType,
    CementQuality,
    CriticalPointType,
    ElementStatus,
    ElementType,
    TaskPriority,
    TaskStatus,
    TriggerType,
    WellLocation,
    WellStatus,
    WellType,
)
from shared.domain.maasp import default_fluid_gradient
from shared.domain.risk import default_consequence
from shared.domain.task_rules import next_test_due
from shared.domain.utilisation import Thresholds
from shared.persistence.models import (
    Annulus,
    BarrierElement,
    BarrierEnvelope,
    BarrierTest,
    CasingString,
    CementInterval,
    CriticalPoint,
    ScadaTag,
    Task,
    TubingString,
    Well,
)

WELL = Parent(Well, "wells", "well_id", "well")


# --- shared checks ------------------------------------------------------------------------------


def check_md_range(obj: Any, well: Well) -> None:
    if obj.top_md >= obj.bottom_md:
        raise FieldInvalid("top_md", f"must be less than bottom_md ({obj.bottom_md} m)")
    if obj.bottom_md > well.measured_depth:
        raise FieldInvalid(
            "bottom_md",
            f"must be within the well's measured_depth ({well.measured_depth} m)",
        )


def check_diameters(obj: Any) -> None:
    if obj.inner_diameter_in >= obj.outer_diameter_in:
        raise FieldInvalid(
            "inner_diameter_in",
            f"must be less than outer_diameter_in ({obj.outer_diameter_in} in)",
        )


async def well_of(session: AsyncSession, well_id: int) -> Well:
    return await get_or_404(session, Well, well_id, "well")


# --- wells --------------------------------------------------------------------------------------


async def _deepest_item(session: AsyncSession, well_id: int) -> tuple[float, str] | None:
    """The deepest measured depth of anything placed in the well, and what it is."""
    candidates = [
        (
            select(func.max(CasingString.bottom_md)).where(CasingString.well_id == well_id),
            "casing string",
        ),
        (
            select(func.max(TubingString.bottom_md)).where(TubingString.well_id == well_id),
            "tubing string",
        ),
        (
            select(func.max(CementInterval.bottom_md)).where(CementInterval.well_id == well_id),
            "cement interval",
        ),
        (
            select(func.max(CriticalPoint.depth_md))
            .join(Annulus, Annulus.id == CriticalPoint.annulus_id)
            .where(Annulus.well_id == well_id),
            "critical point",
        ),
    ]
    deepest: tuple[float, str] | None = None
    for stmt, what in candidates:
        depth = await session.scalar(stmt)
        if depth is not None and (deepest is None or depth > deepest[0]):
            deepest = (depth, what)
    return deepest


async def prepare_well(session: AsyncSession, well: Well, ctx: Ctx) -> None:
    if well.consequence_level is None:
        well.consequence_level = default_consequence(well.type)


async def validate_well(session: AsyncSession, well: Well, ctx: Ctx) -> None:
    if well.true_vertical_depth is not None and well.true_vertical_depth > well.measured_depth:
        raise FieldInvalid(
            "true_vertical_depth",
            f"must not exceed measured_depth ({well.measured_depth} m)",
        )
    if ctx.action == "update" and well.measured_depth < ctx.old["measured_depth"]:
        deepest = await _deepest_item(session, well.id)
        if deepest is not None and deepest[0] > well.measured_depth:
            raise FieldInvalid(
                "measured_depth",
                f"a {deepest[1]} of this well reaches {deepest[0]} m, deeper than "
                f"{well.measured_depth} m",
            )


async def well_before_delete(session: AsyncSession, well: Well, ctx: Ctx) -> None:
    # The database cascades the annuli away: remember them to tell the MAASP worker.
    ctx.extra["annuli"] = list(
        await session.scalars(select(Annulus).where(Annulus.well_id == well.id))
    )


async def well_changed(session: AsyncSession, well: Well, ctx: Ctx) -> None:
    deleted = ctx.action == "delete"
    for annulus in ctx.extra.get("annuli", []):
        await queue_annulus_config(session, annulus, deleted=True)
    await queue_well_config(session, well, deleted=deleted)
    if ctx.action == "update":  # wellhead and tree ratings are inputs of derived points
        await architecture_changed(session, well, ctx)


async def architecture_changed(session: AsyncSession, obj: Any, ctx: Ctx) -> None:
    """With WIMS_AUTO_ACCEPT_DERIVED_POINTS, any change to what the derived critical points
    are made of re-derives and accepts them for the whole well."""
    auto = ctx.settings is not None and ctx.settings.auto_accept_derived_points
    well_id = obj.id if isinstance(obj, Well) else obj.well_id
    if auto and await session.get(Well, well_id) is not None:
        await accept_well_if_auto(session, well_id, ctx.user, auto)


wells = Resource(
    model=Well,
    path="wells",
    label="well",
    tag="wells",
    create=s.WellCreate,
    update=s.WellUpdate,
    read=s.WellRead,
    flat_collection=True,
    filters={
        "field": str,
        "country": str,
        "status": WellStatus,
        "type": WellType,
        "location": WellLocation,
        "consequence_level": int,
    },
    range_filters=("spud_date", "completion_date"),
    sort_fields=(
        "id",
        "name",
        "field",
        "country",
        "type",
        "status",
        "measured_depth",
        "spud_date",
        "completion_date",
        "created_at",
    ),
    prepare=prepare_well,
    validate=validate_well,
    before_delete=well_before_delete,
    changed=well_changed,
    description="Changes publish the well's config (wims.well-config) through the outbox.",
)


# --- strings and cement -------------------------------------------------------------------------


async def _annuli_using(session: AsyncSession, obj: Any) -> list[Annulus]:
    if isinstance(obj, TubingString):
        cond = Annulus.inner_tubing_string_id == obj.id
    else:
        cond = (Annulus.inner_casing_string_id == obj.id) | (
            Annulus.outer_casing_string_id == obj.id
        )
    return list(await session.scalars(select(Annulus).where(cond)))


async def validate_string(session: AsyncSession, obj: Any, ctx: Ctx) -> None:
    well = await well_of(session, obj.well_id)
    check_md_range(obj, well)
    check_diameters(obj)
    if isinstance(obj, CasingString) and obj.shoe_tvd is not None and obj.shoe_tvd > obj.bottom_md:
        raise FieldInvalid("shoe_tvd", f"must not exceed bottom_md ({obj.bottom_md} m)")
    if isinstance(obj, TubingString) and obj.packer_depth_md is not None:
        if not obj.top_md <= obj.packer_depth_md <= obj.bottom_md:
            raise FieldInvalid(
                "packer_depth_md",
                f"must lie within the string ({obj.top_md} to {obj.bottom_md} m)",
            )
    if ctx.action == "update":
        # A resized string must still fit the annuli it bounds.
        for annulus in await _annuli_using(session, obj):
            await check_annulus_strings(session, annulus, changed=obj)


async def validate_cement(session: AsyncSession, obj: CementInterval, ctx: Ctx) -> None:
    well = await well_of(session, obj.well_id)
    casing = await session.get(CasingString, obj.casing_id)
    if casing is None or casing.well_id != obj.well_id:
        raise FieldInvalid("casing_id", f"no casing string {obj.casing_id} in this well")
    check_md_range(obj, well)
    if obj.top_tvd is not None and obj.top_tvd > obj.top_md:
        raise FieldInvalid("top_tvd", f"must not exceed top_md ({obj.top_md} m)")


async def cement_changed(session: AsyncSession, obj: CementInterval, ctx: Ctx) -> None:
    # The cement elements' quality comes with the well's config
    # (services/api/core.py, well_config_event).
    well = await session.get(Well, obj.well_id)
    if well is not None:
        await queue_well_config(session, well)
    await architecture_changed(session, obj, ctx)  # the top of cement places points


casing_strings = Resource(
    model=CasingString,
    path="casing-strings",
    label="casing string",
    tag="well architecture",
    create=s.CasingStringCreate,
    update=s.CasingStringUpdate,
    read=s.CasingStringRead,
    parent=WELL,
    filters={"casing_type": CasingType, "name": str},
    sort_fields=("id", "name", "top_md", "bottom_md", "outer_diameter_in"),
    validate=validate_string,
    changed=architecture_changed,
)
tubing_strings = Resource(
    model=TubingString,
    path="tubing-strings",
    label="tubing string",
    tag="well architecture",
    create=s.TubingStringCreate,
    update=s.TubingStringUpdate,
    read=s.TubingStringRead,
    parent=WELL,
    filters={"name": str},
    sort_fields=("id", "name", "top_md", "bottom_md"),
    validate=validate_string,
    changed=architecture_changed,
)
cement_intervals = Resource(
    model=CementInterval,
    path="cement-intervals",
    label="cement interval",
    tag="well architecture",
    create=s.CementIntervalCreate,
    update=s.CementIntervalUpdate,
    read=s.CementIntervalRead,
    parent=WELL,
    filters={"casing_id": int, "quality_flag": CementQuality},
    sort_fields=("id", "top_md", "bottom_md"),
    validate=validate_cement,
    changed=cement_changed,
    description="A quality_flag of poor or uncertain degrades the cement barrier element of "
    "the casing's envelope (the integrity snapshot says why): changes publish the well's "
    "config (wims.well-config) through the outbox.",
)


# --- annuli and critical points -----------------------------------------------------------------


async def _string(
    session: AsyncSession,
    model: type,
    string_id: int | None,
    field: str,
    well_id: int,
    changed: Any,
) -> Any:
    if string_id is None:
        return None
    if changed is not None and isinstance(changed, model) and changed.id == string_id:
        return changed
    obj = await session.get(model, string_id)
    if obj is None or obj.well_id != well_id:
        raise FieldInvalid(
            field, f"no {model.__tablename__.replace('_', ' ')} {string_id} in this well"
        )
    return obj


async def check_annulus_strings(
    session: AsyncSession, annulus: Annulus, changed: Any = None
) -> None:
    if annulus.inner_tubing_string_id is not None and annulus.inner_casing_string_id is not None:
        raise FieldInvalid(
            "inner_casing_string_id",
            "set only one of inner_tubing_string_id (A annulus) and inner_casing_string_id",
        )
    inner_field = (
        "inner_tubing_string_id" if annulus.inner_tubing_string_id else "inner_casing_string_id"
    )
    inner = await _string(
        session, TubingString, annulus.inner_tubing_string_id, inner_field, annulus.well_id, changed
    ) or await _string(
        session, CasingString, annulus.inner_casing_string_id, inner_field, annulus.well_id, changed
    )
    outer = await _string(
        session,
        CasingString,
        annulus.outer_casing_string_id,
        "outer_casing_string_id",
        annulus.well_id,
        changed,
    )
    if inner is not None and outer is not None:
        if inner is outer:
            raise FieldInvalid(inner_field, "the inner and outer string must differ")
        if inner.outer_diameter_in >= outer.inner_diameter_in:
            raise FieldInvalid(
                inner_field,
                f"the inner string (OD {inner.outer_diameter_in} in) does not fit inside the "
                f"outer casing (ID {outer.inner_diameter_in} in) of annulus {annulus.name}",
            )


def _fill_gradient(annulus: Annulus, ctx: Ctx) -> None:
    """fluid_type gives the gradient when none is sent; a gradient that was the old type's
    default follows a change of type, one an engineer gave stays."""
    if ctx.action == "update":
        old_default = default_fluid_gradient(ctx.old["fluid_type"])
        follows = ctx.old["fluid_gradient_bar_per_m"] == old_default
        if annulus.fluid_type != ctx.old["fluid_type"] and follows:
            sent = annulus.fluid_gradient_bar_per_m != ctx.old["fluid_gradient_bar_per_m"]
            new_default = default_fluid_gradient(annulus.fluid_type)
            if not sent and new_default is not None:
                annulus.fluid_gradient_bar_per_m = new_default
        return
    if annulus.fluid_gradient_bar_per_m is None:
        default = default_fluid_gradient(annulus.fluid_type)
        if default is None:
            raise FieldInvalid(
                "fluid_gradient_bar_per_m",
                f"is required for fluid_type {annulus.fluid_type} (only gas, brine and mud "
                "have a default)",
            )
        annulus.fluid_gradient_bar_per_m = default


async def validate_annulus(session: AsyncSession, annulus: Annulus, ctx: Ctx) -> None:
    _fill_gradient(annulus, ctx)
    await check_annulus_strings(session, annulus)
    try:
        Thresholds(annulus.warning_threshold, annulus.exceeded_threshold, annulus.clear_band)
    except ValueError as exc:
        if annulus.clear_band >= annulus.warning_threshold:
            raise FieldInvalid(
                "clear_band", f"must be less than warning_threshold ({exc})"
            ) from None
        raise FieldInvalid(
            "warning_threshold", f"must be less than exceeded_threshold ({exc})"
        ) from None


async def annulus_changed(session: AsyncSession, annulus: Annulus, ctx: Ctx) -> None:
    await queue_annulus_config(session, annulus, deleted=ctx.action == "delete")
    if ctx.action != "update" or annulus.name != ctx.old.get("name"):
        # The well's config lists its annuli.
        await queue_well_config(session, await well_of(session, annulus.well_id))
    await architecture_changed(session, annulus, ctx)


def _fill_depth_md(point: CriticalPoint, ctx: Ctx) -> None:
    """Until a deviation survey exists the point's measured depth is its vertical depth (a
    vertical well); a depth derived so follows a changed tvd_m, one given stays."""
    if ctx.action == "create":
        if point.depth_md is None and point.tvd_m is None:
            raise FieldInvalid("depth_md", "send depth_md (TVD from the survey), tvd_m or both")
        if point.depth_md is None:
            point.depth_md = point.tvd_m
        return
    derived = ctx.old["depth_md"] == ctx.old["tvd_m"]
    if derived and point.depth_md == ctx.old["depth_md"] and point.tvd_m != ctx.old["tvd_m"]:
        point.depth_md = point.tvd_m


async def validate_critical_point(session: AsyncSession, point: CriticalPoint, ctx: Ctx) -> None:
    _fill_depth_md(point, ctx)
    annulus = await get_or_404(session, Annulus, point.annulus_id, "annulus")
    well = await well_of(session, annulus.well_id)
    if point.depth_md > well.measured_depth:
        raise FieldInvalid(
            "depth_md", f"must be within the well's measured_depth ({well.measured_depth} m)"
        )
    if point.tvd_m is None:  # a depth given in MD gets its TVD from the survey
        point.tvd_m = (await well_tvd(session, well.id))(point.depth_md)
    if ctx.action == "update" and point.origin == DERIVED:
        # An engineer who edits a derived point takes it over: it is a manual point now.
        point.origin, point.derivation = MANUAL, None
    if point.tvd_m > point.depth_md:
        raise FieldInvalid("tvd_m", f"must not exceed depth_md ({point.depth_md} m)")
    if well.true_vertical_depth is not None and point.tvd_m > well.true_vertical_depth:
        raise FieldInvalid(
            "tvd_m", f"must be within the well's true_vertical_depth ({well.true_vertical_depth} m)"
        )


async def critical_point_changed(session: AsyncSession, point: CriticalPoint, ctx: Ctx) -> None:
    if ctx.action != "delete" and point.origin == MANUAL:
        # A manual point overrides the derived point of its type at its depth.
        await session.execute(
            delete(CriticalPoint).where(
                CriticalPoint.annulus_id == point.annulus_id,
                CriticalPoint.origin == DERIVED,
                CriticalPoint.point_type == point.point_type,
                func.abs(CriticalPoint.depth_md - point.depth_md) <= OVERRIDE_TOLERANCE_M,
            )
        )
    annulus = await session.get(Annulus, point.annulus_id)
    if annulus is not None:
        await queue_annulus_config(session, annulus)
        if ctx.action != "update":
            # The well's config counts each annulus's critical points: the integrity
            # worker tells from it whether the annulus has a MAASP.
            await queue_well_config(session, await well_of(session, annulus.well_id))


annuli = Resource(
    model=Annulus,
    path="annuli",
    label="annulus",
    tag="well architecture",
    create=s.AnnulusCreate,
    update=s.AnnulusUpdate,
    read=s.AnnulusRead,
    parent=WELL,
    filters={"name": str},
    sort_fields=("id", "name"),
    validate=validate_annulus,
    changed=annulus_changed,
    description=s.AnnulusCreate.__doc__ or "",
)
critical_points = Resource(
    model=CriticalPoint,
    path="critical-points",
    label="critical point",
    tag="well architecture",
    create=s.CriticalPointCreate,
    update=s.CriticalPointUpdate,
    read=s.CriticalPointRead,
    parent=Parent(Annulus, "annuli", "annulus_id", "annulus"),
    filters={"point_type": CriticalPointType},
    sort_fields=("id", "label", "depth_md", "tvd_m", "pressure_limit_bar"),
    validate=validate_critical_point,
    changed=critical_point_changed,
    description="Changes publish the annulus's config (wims.annulus-config) through the "
    "outbox, so the MAASP worker recomputes MAASP. tvd_m omitted: from the well's survey. A "
    "manual point replaces the derived point of its type within 1 m of its depth; editing a "
    "derived point makes it manual.",
)


async def validate_scada_tag(session: AsyncSession, tag: ScadaTag, ctx: Ctx) -> None:
    if await session.get(Annulus, tag.annulus_id) is None:
        raise FieldInvalid("annulus_id", f"no annulus {tag.annulus_id}")


scada_tags = Resource(
    model=ScadaTag,
    path="scada-tags",
    label="SCADA tag",
    tag="ingest configuration",
    create=s.ScadaTagCreate,
    update=s.ScadaTagUpdate,
    read=s.ScadaTagRead,
    flat_collection=True,
    filters={"annulus_id": int, "tag": str},
    sort_fields=("id", "tag", "annulus_id"),
    validate=validate_scada_tag,
    description="Maps a historian tag to the annulus it measures; the ingest service reads it.",
)


# --- barriers -----------------------------------------------------------------------------------


async def prepare_envelope(session: AsyncSession, envelope: BarrierEnvelope, ctx: Ctx) -> None:
    if envelope.name is None:
        envelope.name = f"{envelope.type.value.capitalize()} envelope"


async def envelope_changed(session: AsyncSession, envelope: BarrierEnvelope, ctx: Ctx) -> None:
    well = await session.get(Well, envelope.well_id)
    if well is not None:
        await queue_well_config(session, well)


async def _element_well(
    session: AsyncSession, element: BarrierElement
) -> tuple[BarrierEnvelope, Well]:
    envelope = await get_or_404(session, BarrierEnvelope, element.envelope_id, "barrier envelope")
    return envelope, await well_of(session, envelope.well_id)


async def prepare_element(session: AsyncSession, element: BarrierElement, ctx: Ctx) -> None:
    if element.well_id is None:
        element.well_id = ctx.parent.well_id


async def validate_element(session: AsyncSession, element: BarrierElement, ctx: Ctx) -> None:
    _, well = await _element_well(session, element)
    if element.well_id != well.id:
        raise FieldInvalid("well_id", f"must be the envelope's well ({well.id})")
    if element.depth_md is not None and element.depth_md > well.measured_depth:
        raise FieldInvalid(
            "depth_md", f"must be within the well's measured_depth ({well.measured_depth} m)"
        )
    try:
        element.next_test_due = next_test_due(
            element.element_type, element.last_tested_at, interval_days=element.test_interval_days
        )
    except OverflowError:
        # Python's datetime ends with year 9999 (schemas.py bounds the interval itself).
        raise FieldInvalid(
            "last_tested_at", "the next test (last_tested_at + the interval) falls after year 9999"
        ) from None


def status_changed_event(
    element: BarrierElement, envelope: BarrierEnvelope, old: ElementStatus | None, ts: datetime
) -> ev.ElementStatusChanged:
    return ev.ElementStatusChanged(
        event_id=ev.derived_id("element_status", element.id, old, element.status, ts.isoformat()),
        well_id=envelope.well_id,
        barrier_element_id=element.id,
        element_name=element.name,
        element_type=element.element_type,
        envelope_type=envelope.type,
        old_status=old,
        new_status=element.status,
        ts=ts,
    )


async def element_changed(session: AsyncSession, element: BarrierElement, ctx: Ctx) -> None:
    envelope = await session.get(BarrierEnvelope, element.envelope_id)
    if envelope is None:
        return  # its envelope went in the same transaction; the envelope hook told the world
    old = ctx.old.get("status")
    if ctx.action != "delete" and (ctx.action == "create" or element.status != old):
        event = status_changed_event(element, envelope, old, datetime.now(UTC))
        await queue_barrier_event(session, event)
    well = await well_of(session, envelope.well_id)
    await queue_well_config(session, well)


barrier_envelopes = Resource(
    model=BarrierEnvelope,
    path="barrier-envelopes",
    label="barrier envelope",
    tag="barriers",
    create=s.BarrierEnvelopeCreate,
    update=s.BarrierEnvelopeUpdate,
    read=s.BarrierEnvelopeRead,
    parent=WELL,
    filters={"type": s.EnvelopeType},
    sort_fields=("id", "type", "name"),
    prepare=prepare_envelope,
    changed=envelope_changed,
)
barrier_elements = Resource(
    model=BarrierElement,
    path="barrier-elements",
    label="barrier element",
    tag="barriers",
    create=s.BarrierElementCreate,
    update=s.BarrierElementUpdate,
    read=s.BarrierElementRead,
    parent=Parent(BarrierEnvelope, "barrier-envelopes", "envelope_id", "barrier envelope"),
    filters={"element_type": ElementType, "status": ElementStatus},
    sort_fields=("id", "name", "element_type", "status", "next_test_due"),
    prepare=prepare_element,
    validate=validate_element,
    changed=element_changed,
    description="A status change publishes ElementStatusChanged (wims.barrier-events) and "
    "the well's config through the outbox. next_test_due is computed from last_tested_at and "
    "test_interval_days (or the element type's default interval).",
)


# --- barrier tests ------------------------------------------------------------------------------


async def prepare_test(session: AsyncSession, test: BarrierTest, ctx: Ctx) -> None:
    test.performed_by_id = ctx.user.id


async def test_changed(session: AsyncSession, test: BarrierTest, ctx: Ctx) -> None:
    """A recorded test updates its element and tells the integrity and tasks services."""
    if ctx.action != "create":
        return
    element = await get_or_404(session, BarrierElement, test.barrier_element_id, "barrier element")
    envelope, _ = await _element_well(session, element)
    old_status = element.status
    if test.result == s.TestResult.failed:
        element.status = ElementStatus.failed
    elif test.result == s.TestResult.passed and old_status in (
        ElementStatus.unknown,
        ElementStatus.failed,
    ):
        element.status = ElementStatus.ok
    # An inconclusive test proves nothing: the status stays, and so does the test schedule
    # (the tasks service opens a retest task).
    conclusive = test.result != s.TestResult.inconclusive
    if conclusive and (element.last_tested_at is None or test.test_date >= element.last_tested_at):
        element.last_tested_at = test.test_date
        element.next_test_due = next_test_due(
            element.element_type, test.test_date, interval_days=element.test_interval_days
        )
    await session.flush()
    if element.status != old_status:
        await queue_barrier_event(
            session, status_changed_event(element, envelope, old_status, test.test_date)
        )
    await queue_barrier_event(
        session,
        ev.BarrierTestRecorded(
            event_id=ev.derived_id("barrier_test", test.id),
            well_id=envelope.well_id,
            barrier_element_id=element.id,
            element_name=element.name,
            element_type=element.element_type,
            envelope_type=envelope.type,
            test_id=test.id,
            test_type=test.test_type,
            result=test.result,
            test_date=test.test_date,
            leak_rate=test.leak_rate,
            leak_rate_unit=test.leak_rate_unit,
            pressure_applied_bar=test.pressure_applied_bar,
            next_test_due=element.next_test_due,
        ),
    )
    await queue_well_config(session, await well_of(session, envelope.well_id))


async def validate_test(session: AsyncSession, test: BarrierTest, ctx: Ctx) -> None:
    if test.test_date.tzinfo is None:
        raise FieldInvalid("test_date", "must carry a time zone (e.g. 2026-01-31T10:00:00Z)")
    if test.test_date > datetime.now(UTC):
        raise FieldInvalid("test_date", "is in the future: record a test once it is done")
    if test.leak_rate is not None and not math.isfinite(test.leak_rate):
        raise FieldInvalid("leak_rate", "must be a finite number")


barrier_tests = Resource(
    model=BarrierTest,
    path="barrier-tests",
    nested_path="tests",
    label="barrier test",
    tag="barriers",
    create=s.BarrierTestCreate,
    update=s.BarrierTestUpdate,
    read=s.BarrierTestRead,
    parent=Parent(BarrierElement, "barrier-elements", "barrier_element_id", "barrier element"),
    filters={"test_type": s.TestType, "result": s.TestResult},
    sort_fields=("id", "test_date"),
    prepare=prepare_test,
    validate=validate_test,
    changed=test_changed,
    description=(s.BarrierTestCreate.__doc__ or "")
    + " Publishes BarrierTestRecorded (and ElementStatusChanged when the status moves) to "
    "wims.barrier-events through the outbox.",
)


# --- tasks --------------------------------------------------------------------------------------


async def prepare_task(session: AsyncSession, task: Task, ctx: Ctx) -> None:
    task.trigger_type = TriggerType.manual
    task.auto_generated = False
    if task.status in (TaskStatus.done, TaskStatus.cancelled):
        task.closed_at = datetime.now(UTC)


async def validate_task(session: AsyncSession, task: Task, ctx: Ctx) -> None:
    if await session.get(Well, task.well_id) is None:
        raise FieldInvalid("well_id", f"no well {task.well_id}")
    if task.annulus_id is not None:
        annulus = await session.get(Annulus, task.annulus_id)
        if annulus is None or annulus.well_id != task.well_id:
            raise FieldInvalid("annulus_id", f"no annulus {task.annulus_id} in well {task.well_id}")
    if task.barrier_element_id is not None:
        row = await session.execute(
            select(BarrierEnvelope.well_id)
            .join(BarrierElement, BarrierElement.envelope_id == BarrierEnvelope.id)
            .where(BarrierElement.id == task.barrier_element_id)
        )
        found = row.scalar_one_or_none()
        if found != task.well_id:
            raise FieldInvalid(
                "barrier_element_id",
                f"no barrier element {task.barrier_element_id} in well {task.well_id}",
            )
    if ctx.action == "update":
        if task.auto_generated:
            for name in ("title", "description"):
                if getattr(task, name) != ctx.old[name]:
                    raise FieldInvalid(
                        name, "an auto-generated task's text belongs to the tasks service"
                    )
        closing = task.status in (TaskStatus.done, TaskStatus.cancelled)
        if closing and ctx.old["status"] not in (TaskStatus.done, TaskStatus.cancelled):
            task.closed_at = datetime.now(UTC)
        elif not closing:
            task.closed_at = None


tasks = Resource(
    model=Task,
    path="tasks",
    label="task",
    tag="tasks",
    create=s.TaskCreate,
    update=s.TaskUpdate,
    read=s.TaskRead,
    flat_collection=True,
    filters={
        "well_id": int,
        "status": TaskStatus,
        "priority": TaskPriority,
        "trigger_type": TriggerType,
        "auto_generated": bool,
        "assigned_to_id": int,
    },
    sort_fields=("id", "due_date", "priority", "status", "created_at"),
    prepare=prepare_task,
    validate=validate_task,
    description="Engineers create manual tasks (trigger_type manual); auto tasks come from "
    "the tasks service.",
)

RESOURCES = (
    wells,
    casing_strings,
    tubing_strings,
    cement_intervals,
    annuli,
    critical_points,
    scada_tags,
    barrier_envelopes,
    barrier_elements,
    barrier_tests,
    tasks,
)


def build_router() -> APIRouter:
    router = APIRouter()
    for res in RESOURCES:
        router.include_router(crud_router(res))
    return router

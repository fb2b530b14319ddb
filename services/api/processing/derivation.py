"""A well's deviation survey (JSON or CSV) and the critical points derived from its
architecture: proposals to read, and the engineer's acceptance."""

import csv
import io
import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from sqlalchemy import delete

from services.api import schemas as s
from services.api.deps import Admin, Engineer, SessionDep, Viewer
from services.api.errors import ITEM_RESPONSES, WRITE_RESPONSES, FieldInvalid
from services.api.processing.crud import commit, get_or_404
from services.api.processing.derived import accept, accept_well_if_auto, proposals
from services.api.store import survey_stations
from shared.domain.maasp import CriticalPoint as Point
from shared.domain.maasp import maasp
from shared.domain.survey import Station, SurveyError, minimum_curvature, validate_stations
from shared.persistence.models import Annulus, SurveyStation, User, Well

router = APIRouter(tags=["well architecture"])

# CSV header names accepted for each column (the first is the JSON field name).
_COLUMNS = {
    "md_m": ("md_m", "md"),
    "inclination_deg": ("inclination_deg", "inclination", "inc"),
    "azimuth_deg": ("azimuth_deg", "azimuth", "azi"),
}


def _survey_read(well_id: int, rows: list[SurveyStation]) -> s.SurveyRead:
    if not rows:
        return s.SurveyRead(well_id=well_id, stations=[])
    trajectory = minimum_curvature(
        [Station(r.md_m, r.inclination_deg, r.azimuth_deg) for r in rows]
    )
    tvds = trajectory.tvd_at([r.md_m for r in rows])
    return s.SurveyRead(
        well_id=well_id,
        stations=[
            s.SurveyStationOut(
                md_m=r.md_m, inclination_deg=r.inclination_deg, azimuth_deg=r.azimuth_deg, tvd_m=t
            )
            for r, t in zip(rows, tvds, strict=True)
        ],
    )


def _checked(well: Well, stations: list[Station]) -> list[Station]:
    try:
        validate_stations(stations)
    except SurveyError as exc:
        raise FieldInvalid(f"stations.{exc.index}.{exc.field}", exc.reason) from None
    tvds = minimum_curvature(stations).tvd_at([st.md_m for st in stations])
    for i, (st, tvd) in enumerate(zip(stations, tvds, strict=True)):
        if tvd < 0:
            raise FieldInvalid(
                f"stations.{i}.inclination_deg", "the path rises above the wellhead (TVD < 0)"
            )
        if st.md_m > well.measured_depth:
            raise FieldInvalid(
                f"stations.{i}.md_m",
                f"must be within the well's measured_depth ({well.measured_depth} m)",
            )
    return stations


async def _replace_survey(
    request: Request, session: Any, well: Well, stations: list[Station], user: User
) -> s.SurveyRead:
    _checked(well, stations)
    await session.execute(delete(SurveyStation).where(SurveyStation.well_id == well.id))
    session.add_all(
        SurveyStation(
            well_id=well.id,
            md_m=st.md_m,
            inclination_deg=st.inclination_deg,
            azimuth_deg=st.azimuth_deg,
        )
        for st in stations
    )
    await session.flush()
    await accept_well_if_auto(
        session, well.id, user, request.app.state.settings.auto_accept_derived_points
    )
    await commit(request, session)
    return _survey_read(well.id, await survey_stations(session, well.id))


@router.get(
    "/wells/{well_id}/survey",
    response_model=s.SurveyRead,
    summary="The well's deviation survey, with TVD by minimum curvature",
    responses=ITEM_RESPONSES,
)
async def get_survey(well_id: s.PathId, session: SessionDep, user: Viewer) -> s.SurveyRead:
    await get_or_404(session, Well, well_id, "well")
    return _survey_read(well_id, await survey_stations(session, well_id))


@router.put(
    "/wells/{well_id}/survey",
    response_model=s.SurveyRead,
    summary="Replace the well's deviation survey (JSON)",
    description="Stations: MD strictly increasing, inclination 0-180°, azimuth 0-360°, MD "
    "within the well. A 422 names the station (stations.<index>.<field>). With "
    "WIMS_AUTO_ACCEPT_DERIVED_POINTS the well's derived critical points are re-derived.",
    responses=WRITE_RESPONSES,
)
async def put_survey(
    request: Request, well_id: s.PathId, body: s.SurveyIn, session: SessionDep, user: Engineer
) -> s.SurveyRead:
    well = await get_or_404(session, Well, well_id, "well")
    stations = [Station(x.md_m, x.inclination_deg, x.azimuth_deg) for x in body.stations]
    return await _replace_survey(request, session, well, stations, user)


def parse_survey_csv(text: str) -> list[Station]:
    """Stations from CSV with a header row naming md_m (or md), inclination_deg (inclination,
    inc) and azimuth_deg (azimuth, azi); other columns are ignored."""
    try:
        return _parse_csv(text)
    except csv.Error as exc:
        raise FieldInvalid("body", f"not readable as CSV: {exc}") from None


def _parse_csv(text: str) -> list[Station]:
    reader = csv.reader(io.StringIO(text))
    header = [h.strip().lower() for h in next(reader, [])]
    index = {}
    for field, names in _COLUMNS.items():
        found = [i for i, h in enumerate(header) if h in names]
        if not found:
            raise FieldInvalid(
                "body", f"the CSV header must name a {field} column ({', '.join(names)})"
            )
        index[field] = found[0]
    stations = []
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue
        i = len(stations)
        values = {}
        for field, col in index.items():
            try:
                values[field] = float(row[col])
            except (IndexError, ValueError):
                raise FieldInvalid(f"stations.{i}.{field}", "must be a number") from None
            if not math.isfinite(values[field]):
                raise FieldInvalid(f"stations.{i}.{field}", "must be a finite number")
        stations.append(Station(**values))
    if not stations:
        raise FieldInvalid("stations", "the CSV holds no station")
    return stations


@router.put(
    "/wells/{well_id}/survey/csv",
    response_model=s.SurveyRead,
    summary="Replace the well's deviation survey (CSV upload)",
    description="A text/csv body with a header row: md_m,inclination_deg,azimuth_deg (md, "
    "inc, azi accepted). The same checks as the JSON upload; station indexes count data rows "
    "from 0.",
    responses=WRITE_RESPONSES,
)
async def put_survey_csv(
    request: Request,
    well_id: s.PathId,
    session: SessionDep,
    user: Engineer,
    body: Annotated[str, Body(media_type="text/csv", min_length=1, max_length=2_000_000)],
) -> s.SurveyRead:
    well = await get_or_404(session, Well, well_id, "well")
    return await _replace_survey(request, session, well, parse_survey_csv(body), user)


@router.delete(
    "/wells/{well_id}/survey",
    status_code=204,
    summary="Delete the well's survey (admin): the well is vertical again",
    responses=ITEM_RESPONSES,
)
async def delete_survey(
    request: Request, well_id: s.PathId, session: SessionDep, user: Admin
) -> Response:
    await get_or_404(session, Well, well_id, "well")
    await session.execute(delete(SurveyStation).where(SurveyStation.well_id == well_id))
    await accept_well_if_auto(
        session, well_id, user, request.app.state.settings.auto_accept_derived_points
    )
    await commit(request, session)
    return Response(status_code=204)


def _read(annulus: Annulus, props: list[Any], missing: dict[str, list[str]]) -> s.DerivedPointsRead:
    points = [Point(None, p.point.label, p.point.tvd_m, p.point.pressure_limit_bar) for p in props]
    allowable = maasp(points, annulus.fluid_gradient_bar_per_m, annulus.safety_factor)
    return s.DerivedPointsRead(
        annulus_id=annulus.id,
        points=[
            s.DerivedPointRead(
                kind=p.point.kind,
                point_type=p.point.point_type,
                label=p.point.label,
                depth_md=p.point.depth_md,
                tvd_m=p.point.tvd_m,
                pressure_limit_bar=p.point.pressure_limit_bar,
                allowable_surface_bar=a,
                formula=p.point.formula,
                source=p.point.source,
                inputs=p.point.inputs,
                status=p.status,
                critical_point_id=p.critical_point_id,
            )
            for p, a in zip(props, allowable.allowable_surface_bar, strict=True)
        ],
        missing=missing,
    )


@router.get(
    "/annuli/{annulus_id}/derived-critical-points",
    response_model=s.DerivedPointsRead,
    summary="Critical points derived from the architecture (proposals and their status)",
    description="Each point carries its formula, inputs and source; `missing` names the "
    "fields to fill in for the points that cannot be derived yet.",
    responses=ITEM_RESPONSES,
)
async def get_derived(
    annulus_id: s.PathId, session: SessionDep, user: Viewer
) -> s.DerivedPointsRead:
    annulus = await get_or_404(session, Annulus, annulus_id, "annulus")
    props, derivation = await proposals(session, annulus)
    return _read(annulus, props, derivation.missing)


@router.post(
    "/annuli/{annulus_id}/derived-critical-points/accept",
    response_model=s.AcceptDerivedRead,
    summary="Accept derived critical points: they become the annulus's derived points",
    description="Replaces the annulus's derived points of the accepted kinds (all when "
    "`kinds` is omitted); a manual point of the same type and depth overrides a derived one. "
    "Publishes the annulus config (wims.annulus-config) through the outbox, so the MAASP "
    "worker recomputes MAASP.",
    responses=WRITE_RESPONSES,
)
async def accept_derived(
    request: Request,
    annulus_id: s.PathId,
    session: SessionDep,
    user: Engineer,
    body: s.AcceptDerivedIn | None = None,
) -> s.AcceptDerivedRead:
    annulus = await get_or_404(session, Annulus, annulus_id, "annulus")
    kinds = body.kinds if body is not None else None
    if kinds is not None:
        props, _ = await proposals(session, annulus)
        unknown = sorted(set(kinds) - {p.point.kind for p in props})
        if unknown:
            raise FieldInvalid("kinds", f"not derivable for this annulus: {', '.join(unknown)}")
    stored, props, derivation = await accept(session, annulus, user, kinds)
    await commit(request, session)
    for row in stored:
        await session.refresh(row)
    return s.AcceptDerivedRead(
        annulus_id=annulus.id,
        accepted=[s.CriticalPointRead.model_validate(r) for r in stored],
        overridden=[p.point.kind for p in props if p.status == "overridden"],
        missing=derivation.missing,
    )

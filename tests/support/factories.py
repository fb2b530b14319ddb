"""Arrange helpers for integration tests: rows written straight to the real database."""

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from shared.contracts.enums import WellLocation, WellStatus, WellType
from shared.persistence.models import Annulus, CriticalPoint, Well


def make_well(engine: Engine, name: str = "W-1", **kw: Any) -> int:
    with Session(engine) as s, s.begin():
        well = Well(
            name=name,
            field=kw.pop("field", "North"),
            type=kw.pop("type", WellType.oil_producer),
            status=kw.pop("status", WellStatus.active),
            location=kw.pop("location", WellLocation.platform),
            measured_depth=kw.pop("measured_depth", 3500.0),
            consequence_level=kw.pop("consequence_level", 3),
            **kw,
        )
        s.add(well)
        s.flush()
        return well.id


def make_annulus(
    engine: Engine,
    well_id: int,
    name: str = "A",
    critical_points: list[tuple[str, float, float]] | None = None,
    **kw: Any,
) -> int:
    """An annulus with critical points given as (label, tvd_m, pressure_limit_bar)."""
    with Session(engine) as s, s.begin():
        annulus = Annulus(
            well_id=well_id,
            name=name,
            fluid_gradient_bar_per_m=kw.pop("fluid_gradient_bar_per_m", 0.1),
            **kw,
        )
        s.add(annulus)
        s.flush()
        for label, tvd, limit in critical_points or []:
            s.add(
                CriticalPoint(
                    annulus_id=annulus.id,
                    label=label,
                    point_type="wellhead" if tvd == 0 else "shoe",
                    depth_md=tvd,
                    tvd_m=tvd,
                    pressure_limit_bar=limit,
                )
            )
        return annulus.id


def make_barrier_element(
    engine: Engine,
    well_id: int,
    name: str = "SSSV",
    element_type: str = "sssv",
    envelope_type: str = "primary",
    **kw: Any,
) -> int:
    """A barrier element in the well's envelope of that type (the envelope is made once)."""
    from sqlalchemy import select

    from shared.persistence.models import BarrierElement, BarrierEnvelope

    with Session(engine) as s, s.begin():
        envelope_id = s.scalar(
            select(BarrierEnvelope.id).where(
                BarrierEnvelope.well_id == well_id, BarrierEnvelope.type == envelope_type
            )
        )
        if envelope_id is None:
            envelope = BarrierEnvelope(
                well_id=well_id, type=envelope_type, name=f"{envelope_type} barrier"
            )
            s.add(envelope)
            s.flush()
            envelope_id = envelope.id
        element = BarrierElement(
            well_id=well_id,
            envelope_id=envelope_id,
            name=name,
            element_type=element_type,
            status=kw.pop("status", "ok"),
            **kw,
        )
        s.add(element)
        s.flush()
        return element.id


def make_api_key(engine: Engine, source: str = "pi-test", name: str = "test key") -> str:
    """An API key bound to ``source``, stored hashed as the API stores it; returns the secret."""
    from shared.infrastructure.auth import new_api_key
    from shared.persistence.models import ApiKey

    secret, prefix, digest = new_api_key()
    with Session(engine) as s, s.begin():
        s.add(ApiKey(name=name, source=source, key_prefix=prefix, key_hash=digest))
    return secret


def make_user(engine: Engine, email: str, role: str = "engineer", active: bool = True) -> int:
    """A user row (the password is unusable: tests mint tokens directly)."""
    from shared.persistence.models import User

    with Session(engine) as s, s.begin():
        user = User(email=email, password_hash="!", role=role, is_active=active)
        s.add(user)
        s.flush()
        return user.id


def make_scada_tag(engine: Engine, tag: str, annulus_id: int) -> int:
    from shared.persistence.models import ScadaTag

    with Session(engine) as s, s.begin():
        row = ScadaTag(tag=tag, annulus_id=annulus_id)
        s.add(row)
        s.flush()
        return row.id

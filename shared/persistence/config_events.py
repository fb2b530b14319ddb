"""Configuration events built from database rows: one place, for the API's outbox and the
operators' `wims publish-annulus-config`."""

from collections.abc import Iterable

from sqlalchemy import text

from shared.contracts import events as ev
from shared.persistence.models import Annulus, CriticalPoint

# Config versions come from the outbox sequence, so a config published by hand
# (`wims publish-annulus-config`) orders correctly against the API's outbox records.
NEXT_CONFIG_VERSION = text("SELECT nextval(pg_get_serial_sequence('outbox', 'id'))")


def annulus_config_event(
    annulus: Annulus, points: Iterable[CriticalPoint], version: int, *, deleted: bool = False
) -> ev.AnnulusConfig:
    """Everything the MAASP worker needs for one annulus. The event id is derived from
    (annulus, version), so publishing the same version twice is recognised downstream."""
    return ev.AnnulusConfig(
        event_id=ev.derived_id("annulus_config", annulus.id, version),
        annulus_id=annulus.id,
        well_id=annulus.well_id,
        name=annulus.name,
        version=version,
        fluid_gradient_bar_per_m=annulus.fluid_gradient_bar_per_m,
        safety_factor=annulus.safety_factor,
        warning_threshold=annulus.warning_threshold,
        exceeded_threshold=annulus.exceeded_threshold,
        clear_band=annulus.clear_band,
        imposed_pressure=annulus.imposed_pressure,
        critical_points=[
            ev.CriticalPointConfig(
                id=p.id,
                label=p.label,
                point_type=p.point_type.value if p.point_type is not None else None,
                tvd_m=p.tvd_m,
                pressure_limit_bar=p.pressure_limit_bar,
            )
            for p in points
        ],
        deleted=deleted,
    )

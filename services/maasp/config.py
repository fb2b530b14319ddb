"""Annulus configs: from the AnnulusConfig event to what the readings agent needs (MAASP,
thresholds), computed once per config version (pure; reading a config from the database is
in services.maasp.store)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.contracts import events as ev
from shared.contracts.topics import entity_key
from shared.domain.maasp import CriticalPoint, maasp
from shared.domain.utilisation import Thresholds

annulus_key = entity_key  # the table key is the Kafka key


@dataclass(frozen=True, slots=True)
class ConfigView:
    """What judging a reading needs from an annulus config, computed once per version."""

    annulus_id: int
    well_id: int
    name: str
    version: int
    deleted: bool
    maasp_bar: float | None
    limiting_point_id: int | None
    limiting_point_name: str | None
    thresholds: Thresholds
    imposed_pressure: bool


def evaluate_config(config: ev.AnnulusConfig) -> ConfigView:
    """MAASP and thresholds of a config. Raises ValueError (naming the field) when the
    config cannot give a sound MAASP: such a config must not replace a good one."""
    try:
        thresholds = Thresholds(
            warning=config.warning_threshold,
            exceeded=config.exceeded_threshold,
            clear_band=config.clear_band,
        )
    except ValueError as exc:
        raise ValueError(f"thresholds: {exc}") from None
    maasp_bar: float | None = None
    point_id: int | None = None
    point_name: str | None = None
    if not config.deleted:
        points = [
            CriticalPoint(p.id, p.label, p.tvd_m, p.pressure_limit_bar)
            for p in config.critical_points
        ]
        try:
            outcome = maasp(points, config.fluid_gradient_bar_per_m, config.safety_factor)
        except ValueError as exc:
            raise ValueError(f"critical_points/fluid_gradient/safety_factor: {exc}") from None
        maasp_bar = outcome.maasp_bar
        if outcome.limiting_point is not None:
            point_id = outcome.limiting_point.id
            point_name = outcome.limiting_point.name
    return ConfigView(
        annulus_id=config.annulus_id,
        well_id=config.well_id,
        name=config.name,
        version=config.version,
        deleted=config.deleted,
        maasp_bar=maasp_bar,
        limiting_point_id=point_id,
        limiting_point_name=point_name,
        thresholds=thresholds,
        imposed_pressure=config.imposed_pressure,
    )


def view_to_table(view: ConfigView) -> dict[str, Any]:
    """The config table's value (JSON): the evaluated view, so recovery needs no recompute."""
    return {
        "annulus_id": view.annulus_id,
        "well_id": view.well_id,
        "name": view.name,
        "version": view.version,
        "deleted": view.deleted,
        "maasp_bar": view.maasp_bar,
        "limiting_point_id": view.limiting_point_id,
        "limiting_point_name": view.limiting_point_name,
        "warning": view.thresholds.warning,
        "exceeded": view.thresholds.exceeded,
        "clear_band": view.thresholds.clear_band,
        "imposed_pressure": view.imposed_pressure,
    }


def view_from_table(data: dict[str, Any]) -> ConfigView:
    return ConfigView(
        annulus_id=int(data["annulus_id"]),
        well_id=int(data["well_id"]),
        name=str(data["name"]),
        version=int(data["version"]),
        deleted=bool(data["deleted"]),
        maasp_bar=None if data["maasp_bar"] is None else float(data["maasp_bar"]),
        limiting_point_id=data["limiting_point_id"],
        limiting_point_name=data["limiting_point_name"],
        thresholds=Thresholds(
            warning=float(data["warning"]),
            exceeded=float(data["exceeded"]),
            clear_band=float(data["clear_band"]),
        ),
        imposed_pressure=bool(data["imposed_pressure"]),
    )


def maasp_result_event(view: ConfigView) -> ev.MaaspResult:
    # Derived id: a replayed config version emits the same result, recognisably.
    return ev.MaaspResult(
        event_id=ev.derived_id("maasp_result", view.annulus_id, view.version),
        annulus_id=view.annulus_id,
        well_id=view.well_id,
        config_version=view.version,
        maasp_bar=view.maasp_bar,
        limiting_point_id=view.limiting_point_id,
        limiting_point_name=view.limiting_point_name,
    )

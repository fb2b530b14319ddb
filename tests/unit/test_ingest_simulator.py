"""The SCADA simulator's values: realistic, valid, and its scenarios do what the demo needs."""

import random
from datetime import UTC, datetime, timedelta

from shared.contracts.enums import Quality
from shared.domain.readings import validate_batch
from tools.simulator import (
    BUILDUP_S,
    SAP_BLEED_S,
    SAP_BUILD_S,
    SAP_NORMAL_S,
    Scenario,
    generate_tick,
    make_profile,
    scenario_pressure,
)

START = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)


def _validate(records: list[dict]):
    return validate_batch(
        records,
        source="sim",
        now=START + timedelta(days=2),
        resolve_tag=lambda t: None,
        annulus_exists=lambda a: True,
    )


def test_every_generated_reading_passes_validation_with_the_chosen_bad_share() -> None:
    profiles = [make_profile(aid, 200.0 if aid % 2 else None) for aid in range(1, 41)]
    rng = random.Random(1)
    records = []
    for i in range(250):
        records += generate_tick(profiles, START + timedelta(seconds=i), i, rng, bad_share=0.1)
    result = _validate(records)
    assert not result.rejected
    bad = sum(r.quality is Quality.bad for r in result.accepted)
    assert 0.08 < bad / len(records) < 0.12
    good = [r for r in result.accepted if r.quality is Quality.good]
    # Below MAASP in normal operation, and never negative.
    assert all(0 <= r.pressure_bar < 200.0 for r in good if r.annulus_id % 2)


def test_thermal_cycle_moves_pressure_and_temperature_together() -> None:
    (profile,) = [make_profile(7, 100.0)]
    rng = random.Random(2)
    points = []
    for hour in range(0, 24):
        ts = START + timedelta(hours=hour)
        (rec,) = generate_tick([profile], ts, hour * 3600.0, rng)
        (reading,) = _validate([rec]).accepted
        points.append((reading.pressure_bar, reading.temperature_c))
    pressures, temps = zip(*points, strict=True)
    hottest = max(range(24), key=temps.__getitem__)
    coldest = min(range(24), key=temps.__getitem__)
    assert pressures[hottest] > pressures[coldest] + profile.thermal_bar


def test_buildup_passes_maasp_and_sap_bleeds_down_then_rebuilds() -> None:
    profile = make_profile(4, 150.0)
    assert scenario_pressure("buildup", profile, 0) == profile.baseline_bar
    assert scenario_pressure("buildup", profile, BUILDUP_S) > 150.0
    base = profile.baseline_bar
    assert scenario_pressure("sap", profile, SAP_NORMAL_S / 2) == base
    low = scenario_pressure("sap", profile, SAP_NORMAL_S + SAP_BLEED_S)
    assert low < 0.05 * base
    rebuilt = scenario_pressure("sap", profile, SAP_NORMAL_S + SAP_BLEED_S + SAP_BUILD_S)
    assert rebuilt > 0.9 * base
    # During the SAP scenario the temperature stays flat: the rise is not thermal.
    rng = random.Random(3)
    temps = [
        generate_tick(
            [profile],
            START + timedelta(hours=h),
            SAP_NORMAL_S + SAP_BLEED_S + h * 600,
            rng,
            scenarios={4: "sap"},
        )[0]
        for h in range(6)
    ]
    values = [r.get("temperature") for r in temps]
    assert max(values) - min(values) < 5 if profile.imperial else max(values) - min(values) < 2


def test_scenario_parse_refuses_garbage() -> None:
    assert Scenario.parse("sap:12") == Scenario("sap", 12)
    for text in ("sap", "boom:1", "buildup:x"):
        try:
            Scenario.parse(text)
        except ValueError:
            continue
        raise AssertionError(text)

"""Constrained values of the data model: one place for every enum WIMS stores or sends.

They are ``StrEnum`` so a value is its own wire and database spelling.
"""

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"
    engineer = "engineer"
    admin = "admin"


class WellType(StrEnum):
    """The specification's producer / injector / testing, and the finer types WIMS had
    before (they set a better default consequence level, shared/domain/risk.py)."""

    producer = "producer"
    injector = "injector"
    testing = "testing"
    oil_producer = "oil_producer"
    gas_producer = "gas_producer"
    water_injector = "water_injector"
    gas_injector = "gas_injector"
    observation = "observation"


class WellStatus(StrEnum):
    active = "active"
    shut_in = "shut-in"
    suspended = "suspended"
    abandoned = "abandoned"


class WellLocation(StrEnum):
    """Where the wellhead sits; it sets the monitoring duty (platform monthly, subsea daily)."""

    platform = "platform"
    subsea = "subsea"
    onshore = "onshore"


class CasingType(StrEnum):
    conductor = "conductor"
    surface = "surface"
    intermediate = "intermediate"
    production = "production"
    liner = "liner"


class CementQuality(StrEnum):
    """A cement interval's quality_flag (the specification's spelling: upper-case OK).
    poor or uncertain cement degrades the cement barrier element behind it
    (shared/domain/integrity.py)."""

    ok = "OK"
    uncertain = "uncertain"
    poor = "poor"


class FluidType(StrEnum):
    """What fills an annulus; it gives the default fluid_gradient_bar_per_m
    (shared/domain/maasp.py DEFAULT_FLUID_GRADIENT_BAR_PER_M)."""

    gas = "gas"
    brine = "brine"
    mud = "mud"
    other = "other"


class CriticalPointType(StrEnum):
    shoe = "shoe"
    top_of_cement = "top_of_cement"
    weak_formation = "weak_formation"
    outer_casing_burst = "outer_casing_burst"
    inner_string_collapse = "inner_string_collapse"
    packer = "packer"
    liner_hanger = "liner_hanger"
    wellhead = "wellhead"
    tree = "tree"


class Quality(StrEnum):
    good = "good"
    uncertain = "uncertain"
    bad = "bad"


class UtilisationLevel(StrEnum):
    unknown = "unknown"
    normal = "normal"
    warning = "warning"
    exceeded = "exceeded"


class EnvelopeType(StrEnum):
    primary = "primary"
    secondary = "secondary"


class ElementType(StrEnum):
    sssv = "sssv"
    packer = "packer"
    tubing = "tubing"
    tubing_hanger = "tubing_hanger"
    casing = "casing"
    cement = "cement"
    wellhead = "wellhead"
    wellhead_seal = "wellhead_seal"
    tree_valve = "tree_valve"
    annulus_valve = "annulus_valve"
    formation = "formation"


class ElementStatus(StrEnum):
    ok = "ok"
    degraded = "degraded"
    failed = "failed"
    unknown = "unknown"


class EnvelopeStatus(StrEnum):
    intact = "intact"
    degraded = "degraded"
    failed = "failed"


class TestType(StrEnum):
    __test__ = False  # not a pytest test class

    pressure = "pressure"
    inflow = "inflow"
    leak_rate = "leak-rate"
    functional = "functional"


class TestResult(StrEnum):
    __test__ = False

    passed = "pass"
    failed = "fail"
    # Neither: the element keeps its status and a retest task opens (shared/domain/task_rules.py).
    inconclusive = "inconclusive"


class IntegrityStatus(StrEnum):
    green = "green"
    amber = "amber"
    red = "red"


class RiskCategory(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    extreme = "extreme"


class AlertKind(StrEnum):
    maasp_warning = "maasp_warning"
    maasp_exceeded = "maasp_exceeded"
    maasp_cleared = "maasp_cleared"
    sap_detected = "sap_detected"
    diagnostic_test_due = "diagnostic_test_due"
    integrity_status_changed = "integrity_status_changed"
    data_stale = "data_stale"
    data_stale_cleared = "data_stale_cleared"
    maasp_missing = "maasp_missing"
    maasp_missing_cleared = "maasp_missing_cleared"
    annulus_communication = "annulus_communication"


class Severity(StrEnum):
    info = "info"
    warning = "warning"
    critical = "critical"


class TriggerType(StrEnum):
    """Why a task exists. The seed's names where it has them (maasp_exceed, sap_detected,
    failed_test), the same style for the rest."""

    manual = "manual"
    maasp_exceed = "maasp_exceed"
    maasp_warning = "maasp_warning"
    sap_detected = "sap_detected"
    diagnostic_test_due = "diagnostic_test_due"
    failed_test = "failed_test"
    inconclusive_test = "inconclusive_test"  # a barrier test that proved nothing: retest
    integrity_red = "integrity_red"
    test_due = "test_due"
    data_stale = "data_stale"
    maasp_missing = "maasp_missing"
    annulus_communication = "annulus_communication"


class TaskPriority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    critical = "critical"


class TaskStatus(StrEnum):
    open = "open"
    in_progress = "in_progress"
    done = "done"
    cancelled = "cancelled"


OPEN_TASK_STATUSES = (TaskStatus.open, TaskStatus.in_progress)
PRIORITY_RANK = {p: i for i, p in enumerate(TaskPriority)}

"""Event contracts: every value on every WIMS topic.

Each event is a frozen pydantic model with ``event_id`` (UUID, consumers deduplicate by it),
``schema_version`` and an ``event_type`` literal that discriminates the union on a topic.
Changes are additive only; a breaking change is a new event type. The one exception, the
move to the specification's field names (docs/data-model.md), decodes the old names too
(``renamed``), so events retained on a topic from before the upgrade still read.
Encoded as JSON with orjson.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4, uuid5

import orjson
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from shared.contracts import topics
from shared.contracts.enums import (
    AlertKind,
    CementQuality,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    IntegrityStatus,
    Quality,
    RiskCategory,
    Severity,
    TaskPriority,
    TaskStatus,
    TestResult,
    TestType,
    TriggerType,
    UtilisationLevel,
    WellLocation,
    WellType,
)

# 2: the specification's field names and value sets (risk categories low/medium/high/extreme,
# test type leak-rate). Version 1 events still decode (``renamed``, ``_from_version_1``).
SCHEMA_VERSION = 2
# Namespace for ids derived from content, so a replay of the same fact gets the same id.
WIMS_NAMESPACE = UUID("6f2b8d55-0c8e-4a54-9d7a-3b8f6f1a2c11")


def derived_id(*parts: object) -> UUID:
    """A deterministic event id from the facts that make an event unique."""
    return uuid5(WIMS_NAMESPACE, "|".join(str(p) for p in parts))


def utcnow() -> datetime:
    return datetime.now(UTC)


def renamed(name: str, old: str, *args: Any, **kwargs: Any) -> Any:
    """A field under the specification's ``name`` that also reads its ``old`` name."""
    return Field(*args, validation_alias=AliasChoices(name, old), **kwargs)


# Version 1 spelt these values differently; the same four risk bands were named
# low/medium/significant/high (shared/persistence/migrations/versions/0003_specification_names.py).
_V1_VALUES: dict[str, dict[str, str]] = {
    "risk_category": {"significant": "high", "high": "extreme"},
    "test_type": {"leak_rate": "leak-rate"},
}


def _from_version_1(data: Any) -> Any:
    if not isinstance(data, dict) or data.get("schema_version", SCHEMA_VERSION) >= 2:
        return data
    out = dict(data)
    for name, mapping in _V1_VALUES.items():
        if isinstance(out.get(name), str):
            out[name] = mapping.get(out[name], out[name])
    return out


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: UUID = Field(default_factory=uuid4)
    schema_version: int = SCHEMA_VERSION

    def encode(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="python"))


# --- readings -----------------------------------------------------------------------------


class Reading(Event):
    """One annulus pressure reading, normalised to bar and degC, timestamp in UTC.

    ``event_id`` is derived from (annulus_id, ts, source): the same reading pushed twice
    has the same id and is stored once.
    """

    event_type: Literal["reading"] = "reading"
    annulus_id: int
    well_id: int | None = None
    ts: datetime
    pressure_bar: float | None = Field(None, description="None for a bad reading with no value")
    temperature_c: float | None = None
    quality: Quality = Quality.good
    source: str
    received_at: datetime = Field(default_factory=utcnow)


class FieldErrorModel(BaseModel):
    model_config = ConfigDict(frozen=True)

    field: str
    reason: str
    code: str = "invalid"


class RejectedReading(Event):
    event_type: Literal["rejected_reading"] = "rejected_reading"
    source: str
    index: int
    record: Any = None
    errors: list[FieldErrorModel]
    received_at: datetime = Field(default_factory=utcnow)


# --- configuration (compacted topics, published by the API outbox) -----------------------


class CriticalPointConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    label: str = renamed("label", "name")
    point_type: str | None = None
    tvd_m: float
    pressure_limit_bar: float


class AnnulusConfig(Event):
    """Everything the MAASP worker needs for one annulus. ``version`` grows with each change."""

    event_type: Literal["annulus_config"] = "annulus_config"
    annulus_id: int
    well_id: int
    name: str
    version: int
    fluid_gradient_bar_per_m: float
    safety_factor: float = 0.9
    warning_threshold: float = 0.8
    exceeded_threshold: float = 1.0
    clear_band: float = 0.05
    imposed_pressure: bool = Field(
        False, description="operator-imposed pressure (e.g. gas lift): never SAP"
    )
    critical_points: list[CriticalPointConfig] = []
    deleted: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


class BarrierElementConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    element_type: ElementType
    envelope_type: EnvelopeType
    status: ElementStatus
    last_tested_at: datetime | None = None
    next_test_due: datetime | None = None
    # A cement element: the worst quality_flag of the cement intervals behind it, and
    # whether an engineer has judged it sound anyway (shared/domain/integrity.py).
    cement_quality: CementQuality | None = None
    cement_quality_override: bool = False


class AnnulusRef(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    critical_points: int | None = Field(
        None, ge=0, description="how many critical points define its MAASP; None: not stated"
    )


class WellConfig(Event):
    event_type: Literal["well_config"] = "well_config"
    well_id: int
    version: int
    name: str
    type: WellType = renamed("type", "well_type")
    location: WellLocation | None = None
    consequence_level: int = Field(ge=1, le=5)
    annuli: list[AnnulusRef] = []
    elements: list[BarrierElementConfig] = []
    commissioning: bool = Field(
        False, description="an engineer is commissioning the well: no colour alerts"
    )
    deleted: bool = False
    updated_at: datetime = Field(default_factory=utcnow)


# --- MAASP worker output -------------------------------------------------------------------


class MaaspResult(Event):
    event_type: Literal["maasp_result"] = "maasp_result"
    annulus_id: int
    well_id: int
    config_version: int
    maasp_bar: float | None
    limiting_point_id: int | None = None
    limiting_point_name: str | None = None
    computed_at: datetime = Field(default_factory=utcnow)


class AnnulusState(Event):
    event_type: Literal["annulus_state"] = "annulus_state"
    well_id: int
    annulus_id: int
    annulus_name: str | None = None
    ts: datetime
    pressure_bar: float | None
    maasp_bar: float | None
    utilisation: float | None
    level: UtilisationLevel
    sap_detected: bool = False
    diagnostic_test_due: bool = False
    reason: Literal["level_change", "heartbeat", "sap"] = "heartbeat"


class Alert(Event):
    """What the operations centre watches. ``event_id`` is derived from the episode, so a
    replayed alert is recognised as the same alert."""

    event_type: Literal["alert"] = "alert"
    kind: AlertKind
    severity: Severity
    well_id: int
    annulus_id: int | None = None
    barrier_element_id: int | None = None
    ts: datetime
    message: str
    pressure_bar: float | None = None
    maasp_bar: float | None = None
    utilisation: float | None = None
    limiting_point: str | None = None
    level: UtilisationLevel | None = None
    status: IntegrityStatus | None = None
    previous_status: IntegrityStatus | None = None
    details: dict[str, Any] = {}


# --- barrier events ------------------------------------------------------------------------


class ElementStatusChanged(Event):
    event_type: Literal["element_status_changed"] = "element_status_changed"
    well_id: int
    barrier_element_id: int = renamed("barrier_element_id", "element_id")
    element_name: str
    element_type: ElementType
    envelope_type: EnvelopeType
    old_status: ElementStatus | None
    new_status: ElementStatus
    ts: datetime


class BarrierTestRecorded(Event):
    event_type: Literal["barrier_test_recorded"] = "barrier_test_recorded"
    well_id: int
    barrier_element_id: int = renamed("barrier_element_id", "element_id")
    element_name: str
    element_type: ElementType
    envelope_type: EnvelopeType
    test_id: int
    test_type: TestType
    result: TestResult
    test_date: datetime = renamed("test_date", "performed_at")
    leak_rate: float | None = None
    leak_rate_unit: str | None = None
    pressure_applied_bar: float | None = renamed(
        "pressure_applied_bar", "test_pressure_bar", default=None
    )

    @model_validator(mode="before")
    @classmethod
    def _version_1(cls, data: Any) -> Any:
        return _from_version_1(data)

    next_test_due: datetime | None = None


BarrierEvent = Annotated[
    ElementStatusChanged | BarrierTestRecorded, Field(discriminator="event_type")
]


# --- integrity and tasks -------------------------------------------------------------------


class IntegritySnapshot(Event):
    event_type: Literal["integrity_snapshot"] = "integrity_snapshot"
    well_id: int
    created_at: datetime = renamed("created_at", "ts")
    overall_status: IntegrityStatus = renamed("overall_status", "status")
    previous_status: IntegrityStatus | None = None
    primary_status: EnvelopeStatus = renamed("primary_status", "primary_envelope_status")
    secondary_status: EnvelopeStatus = renamed("secondary_status", "secondary_envelope_status")
    probability: int = Field(ge=1, le=5)
    consequence: int = Field(ge=1, le=5)
    risk_score: int = Field(ge=0, le=100)
    risk_category: RiskCategory
    highest_annulus_utilisation: float | None = renamed(
        "highest_annulus_utilisation", "max_utilisation", default=None
    )

    @model_validator(mode="before")
    @classmethod
    def _version_1(cls, data: Any) -> Any:
        return _from_version_1(data)

    sap_detected: bool = False
    findings: list[dict[str, Any]] = []
    assessed: bool = True
    assessment_gaps: list[str] = []


class TaskEvent(Event):
    event_type: Literal["task_event"] = "task_event"
    action: Literal["created", "updated", "escalated", "closed"]
    task_id: int
    well_id: int
    trigger_type: TriggerType
    target: str | None = None
    priority: TaskPriority
    status: TaskStatus
    due_date: datetime | None = renamed("due_date", "due_at", default=None)
    title: str
    ts: datetime = Field(default_factory=utcnow)


# One TypeAdapter per topic decodes any event that may appear on it.
_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    topics.READINGS.name: TypeAdapter(Reading),
    topics.READINGS_REJECTED.name: TypeAdapter(RejectedReading),
    topics.ANNULUS_CONFIG.name: TypeAdapter(AnnulusConfig),
    topics.WELL_CONFIG.name: TypeAdapter(WellConfig),
    topics.MAASP_RESULTS.name: TypeAdapter(MaaspResult),
    topics.ANNULUS_STATE.name: TypeAdapter(AnnulusState),
    topics.ALERTS.name: TypeAdapter(Alert),
    topics.BARRIER_EVENTS.name: TypeAdapter(BarrierEvent),
    topics.INTEGRITY_SNAPSHOTS.name: TypeAdapter(IntegritySnapshot),
    topics.TASK_EVENTS.name: TypeAdapter(TaskEvent),
}


def decode(topic: str, value: bytes) -> Any:
    """Decode a value read from ``topic`` into its event model (raises on a bad message)."""
    return _ADAPTERS[topic].validate_json(value)


def encode(event: Event) -> bytes:
    return event.encode()

"""Request and response schemas: ``XCreate`` / ``XUpdate`` / ``XRead`` per resource.

Field names are the data model's (shared/persistence/models.py). Units: depths in metres (``*_md`` is
measured depth, ``*tvd*`` true vertical depth), pressures in bar, diameters in inches.
Cross-field rules that need stored data (a depth within the well, the inner string inside
the outer string) are checked by the routers on the merged row, so create and update follow
one path.

Request bodies (``In``) take JSON's types, not Python's lax coercions: an integer field a
JSON integer (5 or 5.0, not "5" or true), a boolean true or false (not 0), a number a JSON
number (not "1.5"), a date-time an ISO 8601 string (not a Unix time). In an ``XUpdate``
every field defaults to None, meaning "not sent" (only the fields sent change); a field
whose column is NOT NULL is typed without ``| None``, so an explicit null is a 422 and the
OpenAPI does not offer it.
"""

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictFloat,
    ValidationInfo,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from shared.contracts.enums import (
    CasingType,
    CementQuality,
    CriticalPointType,
    ElementStatus,
    ElementType,
    EnvelopeStatus,
    EnvelopeType,
    FluidType,
    IntegrityStatus,
    RiskCategory,
    Role,
    TaskPriority,
    TaskStatus,
    TestResult,
    TestType,
    TriggerType,
    UtilisationLevel,
    WellLocation,
    WellStatus,
    WellType,
)

# --- what the database can hold ----------------------------------------------------------------
# Every input bound below is one PostgreSQL (or Python's datetime arithmetic) would otherwise
# refuse later, as a database error the client cannot read; declared here, it is a 422 that
# names the field, and the OpenAPI says it, so a generated client knows before sending.

INT32_MAX = 2**31 - 1  # integer (int4) columns: most ids, test_interval_days
INT64_MAX = 2**63 - 1  # bigint columns (alert, snapshot and MAASP result ids), OFFSET
# PostgreSQL text cannot hold the NUL character; psycopg refuses it before sending.
NO_NUL_PATTERN = "^[^\\x00]*$"


def reject_nul(value: str) -> str:
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000)")
    return value


class NoNul:
    """A ``str`` annotation: NUL refused (422) and ``pattern`` declared in the schema."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(reject_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NO_NUL_PATTERN)
        return json_schema


_NUMBER = re.compile(r"\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*")


def _timestamp_input(value: Any) -> Any:
    # Lax datetime parsing takes a number (or, in a query string, "0.5") as Unix time; the
    # schema says an ISO 8601 string.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise PydanticCustomError(
            "datetime_type", "must be an ISO 8601 date-time string, e.g. 2026-01-31T10:00:00Z"
        )
    return value


def _timestamp_storable(value: datetime) -> datetime:
    # PostgreSQL stores any instant, but one whose UTC value is outside Python's years
    # 1-9999 (0001-01-01T00:00:00+01:00) cannot be read back into Python.
    if value.tzinfo is not None:
        try:
            value.astimezone(UTC)
        except OverflowError:
            raise PydanticCustomError(
                "datetime_range", "must be an instant from year 1 to 9999 in UTC"
            ) from None
    return value


# A date-time as JSON carries it: an ISO 8601 string, whose instant Python can hold.
Timestamp = Annotated[
    datetime, BeforeValidator(_timestamp_input), AfterValidator(_timestamp_storable)
]
Text = Annotated[str, NoNul()]


def _is_integer_field(annotation: Any) -> bool:
    return annotation is int or int in get_args(annotation)


# An id of an int4 table (every table a request names an id of), in a body, a path or a
# query. (annotated_types bounds, not Field(): FastAPI takes a Field inside a parameter's
# Annotated for the parameter's kind and would drop them.)
Id = Annotated[int, Interval(ge=1, le=INT32_MAX)]
PathId = Id
# An id of a bigint table (alerts, snapshots, MAASP results).
BigId = Annotated[int, Interval(ge=1, le=INT64_MAX)]
# A row or column of the 5 x 5 risk matrix, in a path.
RiskLevel = Annotated[int, Interval(ge=1, le=5)]
# A century: last test + interval stays a timedelta and a date Python can hold (beyond year
# 9999 is refused where the due date is computed, services/api/processing/resources.py).
MAX_TEST_INTERVAL_DAYS = 36_500
Float = StrictFloat  # a JSON number: an int is a float, a string or a boolean is not


def _nullable(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "null" or any(_nullable(o) for o in schema.get("anyOf", ()))


def _add_no_nul(schema: dict[str, Any]) -> None:
    if schema.get("type") == "string" and "enum" not in schema and "format" not in schema:
        schema.setdefault("pattern", NO_NUL_PATTERN)
    for option in schema.get("anyOf", ()):
        _add_no_nul(option)


class In(BaseModel):
    """Every request body. NaN and infinity are not depths or pressures; unknown keys are
    typos, say so; a NUL character in any text field is refused, whatever the field."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        return reject_nul(value) if isinstance(value, str) else value

    @field_validator("*", mode="before")
    @classmethod
    def _json_integer(cls, value: Any, info: ValidationInfo) -> Any:
        # JSON Schema's integer is a number without a fraction (5 and 5.0), never a string
        # or a boolean, which lax int parsing would take ("5", true). A validator here, not
        # on the type, keeps the fields' bounds in the schema as minimum and maximum.
        field = cls.model_fields.get(info.field_name or "")
        if isinstance(value, str | bool) and field and _is_integer_field(field.annotation):
            raise PydanticCustomError("int_type", "must be a JSON integer")
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler.resolve_ref_schema(handler(schema))
        for prop in json_schema.get("properties", {}).values():
            _add_no_nul(prop)
            if "default" in prop and prop["default"] is None and not _nullable(prop):
                del prop["default"]  # "not sent" in an update, not a value to send
        return json_schema


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


Name = Annotated[str, Field(min_length=1, max_length=100)]
Depth = Annotated[Float, Field(ge=0, description="m")]
PositiveDepth = Annotated[Float, Field(gt=0, description="m")]
Diameter = Annotated[Float, Field(gt=0, description="inches")]
Pressure = Annotated[Float, Field(gt=0, description="bar")]
Gradient = Annotated[Float, Field(ge=0, le=1, description="bar/m")]
Derating = Annotated[Float, Field(ge=0, lt=100, description="wear/corrosion, % of ratings")]


class Stamped(Out):
    id: int
    created_at: datetime
    updated_at: datetime


# --- wells ------------------------------------------------------------------------------------


Country = Annotated[str, Field(min_length=1, max_length=100)]
_COMMISSIONING = (
    "the well is being commissioned (configured, tested, brought into service): its "
    "snapshots record the truth but it raises no integrity colour alerts until cleared"
)
_ASSESSED = (
    "false while data a full assessment needs is missing (an envelope without barrier "
    "elements, an annulus without MAASP): the colour is then not a verdict; the console "
    "shows 'not assessed'"
)


class WellCreate(In):
    name: Name
    field: Name
    country: Country | None = None
    type: WellType
    status: WellStatus = WellStatus.active
    location: WellLocation | None = Field(
        None, description="where the wellhead sits (WIMS): sets the monitoring duty"
    )
    measured_depth: PositiveDepth = Field(description="total measured depth, m")
    true_vertical_depth: PositiveDepth | None = Field(None, description="m; <= measured_depth")
    wellhead_rating_bar: Pressure | None = Field(None, description="working pressure, bar")
    tree_rating_bar: Pressure | None = Field(None, description="working pressure, bar")
    consequence_level: int | None = Field(
        None, ge=1, le=5, description="1-5; default from the well type"
    )
    spud_date: Timestamp | None = None
    completion_date: Timestamp | None = None
    data_stale_after_s: int | None = Field(
        None,
        gt=0,
        le=INT32_MAX,
        description="s without a good reading before data_stale; null: the default",
    )
    commissioning: StrictBool = Field(False, description=_COMMISSIONING)


class WellUpdate(In):
    name: Name = None
    field: Name = None
    country: Country | None = None
    type: WellType = None
    status: WellStatus = None
    location: WellLocation | None = None
    measured_depth: PositiveDepth = None
    true_vertical_depth: PositiveDepth | None = None
    wellhead_rating_bar: Pressure | None = None
    tree_rating_bar: Pressure | None = None
    consequence_level: int = Field(None, ge=1, le=5)
    spud_date: Timestamp | None = None
    completion_date: Timestamp | None = None
    data_stale_after_s: int | None = Field(
        None,
        gt=0,
        le=INT32_MAX,
        description="s without a good reading before data_stale; null: the default",
    )
    commissioning: StrictBool = Field(None, description=_COMMISSIONING)


class WellRead(Stamped):
    name: str
    field: str
    country: str | None
    type: WellType
    status: WellStatus
    location: WellLocation | None
    measured_depth: float
    true_vertical_depth: float | None
    wellhead_rating_bar: float | None
    tree_rating_bar: float | None
    consequence_level: int
    spud_date: datetime | None
    completion_date: datetime | None
    data_stale_after_s: int | None
    commissioning: bool = Field(description=_COMMISSIONING)


# --- strings and cement -----------------------------------------------------------------------


class CasingStringCreate(In):
    well_id: Id | None = Field(None, description="optional: the well of the path")
    name: Name
    casing_type: CasingType | None = None
    outer_diameter_in: Diameter
    inner_diameter_in: Diameter = Field(description="inches; < outer_diameter_in")
    grade: str | None = Field(None, max_length=40)
    weight_ppf: Float | None = Field(None, gt=0, description="lb/ft")
    top_md: Depth
    bottom_md: PositiveDepth = Field(description="shoe, m; > top_md, <= the well's measured_depth")
    derating_percent: Derating = 0.0
    formation_strength_gradient_bar_per_m: Gradient | None = Field(
        None, description="bar/m at the shoe, from a leak-off or formation-integrity test"
    )
    liner_hanger_rating_bar: Pressure | None = Field(None, description="liners: hanger rating")
    shoe_tvd: PositiveDepth | None = None
    burst_limit_bar: Pressure | None = None
    collapse_limit_bar: Pressure | None = None


class CasingStringUpdate(In):
    name: Name = None
    casing_type: CasingType | None = None
    outer_diameter_in: Diameter = None
    inner_diameter_in: Diameter = None
    grade: str | None = Field(None, max_length=40)
    weight_ppf: Float | None = Field(None, gt=0)
    top_md: Depth = None
    bottom_md: PositiveDepth = None
    derating_percent: Derating = None
    formation_strength_gradient_bar_per_m: Gradient | None = None
    liner_hanger_rating_bar: Pressure | None = None
    shoe_tvd: PositiveDepth | None = None
    burst_limit_bar: Pressure | None = None
    collapse_limit_bar: Pressure | None = None


class CasingStringRead(Stamped):
    well_id: int
    name: str
    casing_type: CasingType | None
    outer_diameter_in: float
    inner_diameter_in: float
    grade: str | None
    weight_ppf: float | None
    top_md: float
    bottom_md: float
    derating_percent: float
    formation_strength_gradient_bar_per_m: float | None
    liner_hanger_rating_bar: float | None
    shoe_tvd: float | None
    burst_limit_bar: float | None
    collapse_limit_bar: float | None


class TubingStringCreate(In):
    well_id: Id | None = Field(None, description="optional: the well of the path")
    name: Name
    outer_diameter_in: Diameter
    inner_diameter_in: Diameter = Field(description="inches; < outer_diameter_in")
    grade: str | None = Field(None, max_length=40)
    top_md: Depth
    bottom_md: PositiveDepth
    packer_rating_bar: Pressure | None = Field(None, description="differential rating, bar")
    derating_percent: Derating = 0.0
    fluid_gradient_bar_per_m: Gradient | None = Field(
        None, description="least fluid gradient inside (gas), bar/m; none: empty tubing"
    )
    min_pressure_bar: Float | None = Field(None, ge=0, description="least tubing head pressure")
    sssv_depth_md: PositiveDepth | None = None
    sssv_collapse_limit_bar: Pressure | None = None
    packer_depth_md: PositiveDepth | None = Field(None, description="m; within the string")
    burst_limit_bar: Pressure | None = None
    collapse_limit_bar: Pressure | None = None


class TubingStringUpdate(In):
    name: Name = None
    outer_diameter_in: Diameter = None
    inner_diameter_in: Diameter = None
    grade: str | None = Field(None, max_length=40)
    top_md: Depth = None
    bottom_md: PositiveDepth = None
    packer_rating_bar: Pressure | None = None
    derating_percent: Derating = None
    fluid_gradient_bar_per_m: Gradient | None = None
    min_pressure_bar: Float | None = Field(None, ge=0)
    sssv_depth_md: PositiveDepth | None = None
    sssv_collapse_limit_bar: Pressure | None = None
    packer_depth_md: PositiveDepth | None = None
    burst_limit_bar: Pressure | None = None
    collapse_limit_bar: Pressure | None = None


class TubingStringRead(Stamped):
    well_id: int
    name: str
    outer_diameter_in: float
    inner_diameter_in: float
    grade: str | None
    top_md: float
    bottom_md: float
    packer_rating_bar: float | None
    derating_percent: float
    fluid_gradient_bar_per_m: float | None
    min_pressure_bar: float | None
    sssv_depth_md: float | None
    sssv_collapse_limit_bar: float | None
    packer_depth_md: float | None
    burst_limit_bar: float | None
    collapse_limit_bar: float | None


_QUALITY_DOC = (
    "OK, uncertain or poor; poor or uncertain cement degrades the cement barrier element of "
    "the envelope this casing belongs to, unless an engineer overrides it"
)


class CementIntervalCreate(In):
    well_id: Id | None = Field(None, description="optional: the well of the path")
    casing_id: Id = Field(description="the cemented casing string, in the same well")
    top_md: Depth = Field(description="top of cement, m")
    bottom_md: PositiveDepth
    compressive_strength_mpa: Float | None = Field(None, gt=0, description="MPa")
    quality_flag: CementQuality = Field(CementQuality.ok, description=_QUALITY_DOC)
    top_tvd: Depth | None = None
    verified_by: str | None = Field(None, max_length=100, description="e.g. CBL, calculated")


class CementIntervalUpdate(In):
    casing_id: Id = None
    top_md: Depth = None
    bottom_md: PositiveDepth = None
    compressive_strength_mpa: Float | None = Field(None, gt=0)
    quality_flag: CementQuality = Field(None, description=_QUALITY_DOC)
    top_tvd: Depth | None = None
    verified_by: str | None = Field(None, max_length=100)


class CementIntervalRead(Stamped):
    well_id: int
    casing_id: int
    top_md: float
    bottom_md: float
    compressive_strength_mpa: float | None
    quality_flag: CementQuality
    top_tvd: float | None
    verified_by: str | None


# --- annuli and critical points ---------------------------------------------------------------

_INNER_DOC = (
    "An annulus's inner string is either a tubing string (the A annulus: set "
    "inner_tubing_string_id) or a casing string (B, C...: set inner_casing_string_id); set "
    "at most one. Both strings must belong to the same well, and the inner string's outer "
    "diameter must be less than the outer casing's inner diameter."
)


_GRADIENT_DOC = (
    "annulus fluid gradient, bar/m; when not sent, the default of fluid_type (gas 0.02, "
    "brine 0.117, mud 0.14); required for fluid_type other"
)


class AnnulusCreate(In):
    __doc__ = _INNER_DOC
    well_id: Id | None = Field(None, description="optional: the well of the path")
    name: str = Field(min_length=1, max_length=20, description="A, B, C, D")
    inner_tubing_string_id: Id | None = Field(None, description=_INNER_DOC)
    inner_casing_string_id: Id | None = Field(None, description=_INNER_DOC)
    outer_casing_string_id: Id | None = None
    fluid_type: FluidType = Field(FluidType.other, description="gas, brine, mud or other")
    fluid_gradient_bar_per_m: Float | None = Field(None, ge=0, description=_GRADIENT_DOC)
    backup_gradient_bar_per_m: Gradient | None = Field(
        None, description="bar/m behind the outer casing; none: the next annulus out's fluid"
    )
    safety_factor: Float = Field(0.9, gt=0, le=1, description="multiplier on every limit")
    warning_threshold: Float = Field(0.8, gt=0, description="fraction of MAASP")
    exceeded_threshold: Float = Field(1.0, gt=0, description="fraction of MAASP")
    clear_band: Float = Field(0.05, ge=0, description="hysteresis below a threshold")
    operating_limit_bar: Pressure | None = Field(None, description="MAWOP/MOP, chosen")
    imposed_pressure: StrictBool = Field(
        False, description="operator-imposed (gas lift): never SAP"
    )


class AnnulusUpdate(In):
    __doc__ = _INNER_DOC
    name: str = Field(None, min_length=1, max_length=20)
    inner_tubing_string_id: Id | None = None
    inner_casing_string_id: Id | None = None
    outer_casing_string_id: Id | None = None
    fluid_type: FluidType = None
    fluid_gradient_bar_per_m: Float = Field(None, ge=0)
    backup_gradient_bar_per_m: Gradient | None = None
    safety_factor: Float = Field(None, gt=0, le=1)
    warning_threshold: Float = Field(None, gt=0)
    exceeded_threshold: Float = Field(None, gt=0)
    clear_band: Float = Field(None, ge=0)
    operating_limit_bar: Pressure | None = None
    imposed_pressure: StrictBool = None


class AnnulusRead(Stamped):
    well_id: int
    name: str
    inner_tubing_string_id: int | None
    inner_casing_string_id: int | None
    outer_casing_string_id: int | None
    fluid_type: FluidType
    fluid_gradient_bar_per_m: float
    backup_gradient_bar_per_m: float | None
    safety_factor: float
    warning_threshold: float
    exceeded_threshold: float
    clear_band: float
    operating_limit_bar: float | None
    imposed_pressure: bool


class CriticalPointCreate(In):
    annulus_id: Id | None = Field(None, description="optional: the annulus of the path")
    label: Name
    point_type: CriticalPointType | None = Field(None, description="what limits the point")
    depth_md: Depth | None = Field(
        None, description="m; within the well's measured_depth; tvd_m when not sent"
    )
    tvd_m: Depth | None = Field(
        None,
        description="m; <= depth_md; when not sent, from the well's survey at depth_md "
        "(vertical if none); send depth_md, tvd_m or both",
    )
    pressure_limit_bar: Pressure = Field(description="allowable pressure at depth")
    notes: str | None = None


class CriticalPointUpdate(In):
    label: Name = None
    point_type: CriticalPointType | None = None
    depth_md: Depth = None
    tvd_m: Depth = None
    pressure_limit_bar: Pressure = None
    notes: str | None = None


class CriticalPointRead(Stamped):
    annulus_id: int
    label: str
    point_type: CriticalPointType | None
    depth_md: float
    tvd_m: float
    pressure_limit_bar: float
    notes: str | None
    origin: str = Field(description="manual, or derived (accepted from the architecture)")
    derivation: dict[str, Any] | None = Field(
        description="a derived point's kind, formula, inputs and source"
    )
    accepted_by_id: int | None


class ScadaTagCreate(In):
    tag: str = Field(min_length=1, max_length=200, description="the historian's tag name")
    annulus_id: Id


class ScadaTagUpdate(In):
    tag: str = Field(None, min_length=1, max_length=200)
    annulus_id: Id = None


class ScadaTagRead(Stamped):
    tag: str
    annulus_id: int


# --- barriers -----------------------------------------------------------------------------------


class BarrierEnvelopeCreate(In):
    well_id: Id | None = Field(None, description="optional: the well of the path")
    type: EnvelopeType = Field(description="one primary and one secondary per well")
    name: Name | None = Field(
        None, description='display name; default "Primary envelope" or "Secondary envelope"'
    )
    description: str | None = None


class BarrierEnvelopeUpdate(In):
    name: Name = None
    description: str | None = None


class BarrierEnvelopeRead(Stamped):
    well_id: int
    type: EnvelopeType
    name: str
    description: str | None


_OVERRIDE_DOC = (
    "a cement element: true when an engineer judges it sound although the cement behind it "
    "(the cement intervals covering its depth_md, or all of the well's without a depth) is "
    "flagged poor or uncertain, which otherwise makes it count as degraded"
)


class BarrierElementCreate(In):
    well_id: Id | None = Field(None, description="optional: the envelope's well")
    envelope_id: Id | None = Field(None, description="optional: the envelope of the path")
    name: Name
    element_type: ElementType
    status: ElementStatus = ElementStatus.unknown
    depth_md: Depth | None = Field(None, description="m; within the well")
    test_interval_days: int | None = Field(
        None,
        gt=0,
        le=MAX_TEST_INTERVAL_DAYS,
        description="days between periodic tests; default by element type",
    )
    last_tested_at: Timestamp | None = None
    cement_quality_override: StrictBool = Field(False, description=_OVERRIDE_DOC)


class BarrierElementUpdate(In):
    name: Name = None
    element_type: ElementType = None
    status: ElementStatus = None
    depth_md: Depth | None = None
    test_interval_days: int | None = Field(None, gt=0, le=MAX_TEST_INTERVAL_DAYS)
    last_tested_at: Timestamp | None = None
    cement_quality_override: StrictBool = Field(None, description=_OVERRIDE_DOC)


class BarrierElementRead(Stamped):
    well_id: int
    envelope_id: int
    name: str
    element_type: ElementType
    status: ElementStatus
    depth_md: float | None
    test_interval_days: int | None
    last_tested_at: datetime | None
    next_test_due: datetime | None = Field(
        description="last test + interval; computed, refreshed by each recorded test"
    )
    cement_quality_override: bool


class BarrierTestCreate(In):
    """Recording a test updates its element: last_tested_at and next_test_due; a failed
    test sets the element failed; a passed test sets an unknown or failed element ok (a
    degraded element stays degraded: that is an engineer's judgement); an inconclusive test
    leaves the status as it is and opens a retest task."""

    barrier_element_id: Id | None = Field(None, description="optional: the element of the path")
    test_type: TestType
    test_date: Timestamp
    result: TestResult = Field(description='"pass", "fail" or "inconclusive"')
    pressure_applied_bar: Pressure | None = None
    leak_rate: Float | None = Field(None, ge=0)
    leak_rate_unit: str | None = Field(None, max_length=20, description="cm3/min, m3/min")
    duration_min: Float | None = Field(None, gt=0)
    comments: str | None = None


class BarrierTestUpdate(In):
    """A recorded result is a fact: only the comments can change."""

    comments: str | None = None


class BarrierTestRead(Stamped):
    barrier_element_id: int
    test_type: TestType
    test_date: datetime
    result: TestResult
    pressure_applied_bar: float | None
    leak_rate: float | None
    leak_rate_unit: str | None
    duration_min: float | None
    performed_by_id: int | None
    comments: str | None


# --- tasks ------------------------------------------------------------------------------------


class TaskCreate(In):
    """A manual task (trigger_type manual). Auto tasks are written by the tasks service."""

    well_id: Id
    annulus_id: Id | None = None
    barrier_element_id: Id | None = None
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    priority: TaskPriority = TaskPriority.normal
    due_date: Timestamp | None = None
    status: TaskStatus = TaskStatus.open
    auto_generated: Literal[False] = Field(
        False, description="false: the API creates manual tasks only"
    )
    trigger_type: Literal[TriggerType.manual] = TriggerType.manual
    assigned_to_id: Id | None = None


class TaskUpdate(In):
    """Status, priority, due date and assignee of any task; title and description of manual
    tasks only (an auto task's text belongs to the tasks service)."""

    title: str = Field(None, min_length=1, max_length=200)
    description: str = None
    priority: TaskPriority = None
    status: TaskStatus = None
    due_date: Timestamp | None = None
    assigned_to_id: Id | None = None


class TaskRead(Stamped):
    well_id: int
    annulus_id: int | None
    barrier_element_id: int | None
    title: str
    description: str
    trigger_type: TriggerType
    target: str | None
    auto_generated: bool
    priority: TaskPriority
    status: TaskStatus
    due_date: datetime | None
    assigned_to_id: int | None
    closed_at: datetime | None


# --- people and keys --------------------------------------------------------------------------

Email = Annotated[
    str,
    Field(
        min_length=3,
        max_length=320,
        pattern=r"^[^@\s\x00]+@[^@\s\x00]+$",
        description="login",
    ),
]


class UserCreate(In):
    email: Email
    full_name: str = Field("", max_length=200)
    password: str = Field(min_length=8, max_length=200)
    role: Role
    is_active: StrictBool = True


class UserUpdate(In):
    full_name: str = Field(None, max_length=200)
    password: str = Field(None, min_length=8, max_length=200)
    role: Role = None
    is_active: StrictBool = Field(None, description="false: cannot log in, tokens stop working")


class UserRead(Stamped):
    email: str
    full_name: str
    role: Role
    is_active: bool


class ApiKeyCreate(In):
    name: str = Field(min_length=1, max_length=200)
    source: str = Field(
        min_length=1, max_length=100, description="source name stamped on its readings"
    )


class ApiKeyRead(Stamped):
    name: str
    source: str
    key_prefix: str
    created_by_id: int | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    secret: str = Field(description="send as X-API-Key; shown once, only its hash is kept")


class RiskCell(In):
    probability_level: int = Field(ge=1, le=5)
    consequence_level: int = Field(ge=1, le=5)
    category: RiskCategory


class RiskMatrixRead(BaseModel):
    cells: list[RiskCell]


class RiskMatrixUpdate(In):
    cells: list[RiskCell] = Field(
        description="all 25 cells, each (probability_level, consequence_level) once"
    )


class RiskCellUpdate(In):
    category: RiskCategory


# --- auth --------------------------------------------------------------------------------------


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="seconds")


# --- queries -----------------------------------------------------------------------------------


class ReadingOut(BaseModel):
    timestamp: datetime
    pressure_bar: float | None
    temperature_c: float | None
    quality: str
    source: str


class MaaspOut(Out):
    annulus_id: int
    config_version: int
    maasp_bar: float | None
    limiting_point_id: int | None
    limiting_point_name: str | None
    computed_at: datetime


class MaaspHistory(BaseModel):
    annulus_id: int
    current: MaaspOut | None
    history: list[MaaspOut]


class AnnulusStateOut(BaseModel):
    id: int
    name: str
    inner_tubing_string_id: int | None
    inner_casing_string_id: int | None
    outer_casing_string_id: int | None
    latest_reading: ReadingOut | None
    maasp_bar: float | None
    limiting_point_name: str | None
    utilisation: float | None = Field(
        description="latest pressure / MAASP; null when either is unknown or the reading is bad"
    )
    level: UtilisationLevel = Field(
        description="the level the latest reading qualifies for on its own (no hysteresis)"
    )


class IntegrityOut(Out):
    id: int
    well_id: int
    created_at: datetime
    overall_status: IntegrityStatus
    primary_status: EnvelopeStatus
    secondary_status: EnvelopeStatus
    probability: int
    consequence: int
    risk_score: int
    risk_category: RiskCategory
    highest_annulus_utilisation: float | None
    sap_detected: bool
    findings: list[dict[str, Any]]
    assessed: bool = Field(description=_ASSESSED)
    assessment_gaps: list[str] = Field(description="why the well is not fully assessed")


class StringSummary(BaseModel):
    id: int
    kind: str = Field(description="casing or tubing")
    name: str
    casing_type: str | None
    outer_diameter_in: float
    top_md: float
    bottom_md: float


class ElementSummary(BaseModel):
    id: int
    name: str
    element_type: ElementType
    envelope_type: EnvelopeType
    status: ElementStatus
    next_test_due: datetime | None


class WellState(BaseModel):
    well: WellRead
    strings: list[StringSummary]
    barrier_elements: list[ElementSummary]
    annuli: list[AnnulusStateOut]
    integrity: IntegrityOut | None
    open_tasks: list[TaskRead]


class FleetWell(BaseModel):
    id: int
    name: str
    field: str
    status: WellStatus
    type: WellType
    country: str | None
    colour: IntegrityStatus | None = Field(description="latest integrity status; null: none yet")
    assessed: bool | None = Field(description=_ASSESSED + "; null: no snapshot yet")
    assessment_gaps: list[str] = Field(description="why the well is not fully assessed")
    commissioning: bool = Field(description=_COMMISSIONING)
    risk_score: int | None
    risk_category: RiskCategory | None
    highest_utilisation: float | None = Field(
        description="max over the well's annuli of latest pressure / current MAASP"
    )
    highest_level: UtilisationLevel = Field(
        description="the worst level over the well's annuli (latest reading, no hysteresis)"
    )
    open_tasks: int
    critical_open_tasks: int
    overdue_open_tasks: int


class Fleet(BaseModel):
    wells: list[FleetWell]


class MeasurementBucket(BaseModel):
    bucket_start: datetime
    min: float | None
    max: float | None
    avg: float | None
    count: int = Field(description="good and uncertain readings with a pressure in the bucket")


class Measurements(BaseModel):
    annulus_id: int
    resolution: str
    points: list[ReadingOut] | None = Field(None, description="resolution=raw")
    buckets: list[MeasurementBucket] | None = Field(None, description="downsampled")
    truncated: bool = Field(False, description="raw: more rows than limit in the range")


class AlertOut(Out):
    id: int
    event_id: UUID
    kind: str
    severity: str
    well_id: int
    annulus_id: int | None
    ts: datetime
    message: str
    payload: dict[str, Any]
    acknowledged_at: datetime | None
    acknowledged_by_id: int | None


# --- deviation survey and derived critical points ---------------------------------------------


class SurveyStationIn(In):
    md_m: Float = Field(ge=0, description="measured depth, m; strictly increasing")
    inclination_deg: Float = Field(ge=0, le=180, description="from vertical, degrees")
    azimuth_deg: Float = Field(ge=0, le=360, description="from north, degrees")


class SurveyIn(In):
    """The whole survey: it replaces the stored one. A first station below MD 0 gets a
    vertical tie-in at MD 0."""

    stations: list[SurveyStationIn] = Field(min_length=1, max_length=10000)


class SurveyStationOut(Out):
    md_m: float
    inclination_deg: float
    azimuth_deg: float
    tvd_m: float = Field(description="by minimum curvature")


class SurveyRead(BaseModel):
    well_id: int
    stations: list[SurveyStationOut] = Field(description="empty: a vertical well (TVD = MD)")


class DerivedPointRead(BaseModel):
    kind: str = Field(description="one per element and depth, e.g. tubing_collapse_at_packer")
    point_type: CriticalPointType
    label: str
    depth_md: float
    tvd_m: float
    pressure_limit_bar: float = Field(description="allowable pressure at depth")
    allowable_surface_bar: float = Field(
        description="safety_factor × limit − annulus gradient × tvd: the MAASP this point allows"
    )
    formula: str
    source: str
    inputs: dict[str, float]
    status: str = Field(
        description="proposed; accepted; changed (differs from the accepted one); "
        "overridden (by a manual point of the same type and depth)"
    )
    critical_point_id: int | None = Field(
        description="the accepted derived point, or the manual point that overrides it"
    )


class DerivedPointsRead(BaseModel):
    annulus_id: int
    points: list[DerivedPointRead]
    missing: dict[str, list[str]] = Field(
        description="points that cannot be derived yet: kind -> the fields to fill in"
    )


class AcceptDerivedIn(In):
    kinds: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(
        None, max_length=100, description="the kinds to accept; omitted: all"
    )


class AcceptDerivedRead(BaseModel):
    annulus_id: int
    accepted: list[CriticalPointRead]
    overridden: list[str] = Field(description="kinds left out for a manual point")
    missing: dict[str, list[str]]

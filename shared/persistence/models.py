"""The WIMS data model: SQLAlchemy 2.0 typed models.

The schema itself is made by the Alembic migrations in ``shared/persistence/migrations``; a test checks
the migrations and these models do not drift apart. Depths are metres, pressures bar,
temperatures degC, diameters inches (as casing is specified), timestamps UTC.
Each table has one writing service, except `task`: auto tasks are the tasks service's, people
work them through the API (docs/architecture.md, "Table ownership").
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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
    Quality,
    RiskCategory,
    Role,
    TaskPriority,
    TaskStatus,
    TestResult,
    TestType,
    TriggerType,
    WellLocation,
    WellStatus,
    WellType,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def pg_enum(enum_cls: type[StrEnum], name: str) -> Enum:
    """A PostgreSQL enum whose labels are the StrEnum values (the wire spelling)."""
    return Enum(
        enum_cls,
        name=name,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


#: The services that own tables. Each table names its owner in ``__owner__``: the one service
#: that writes it (``task`` also takes the API's manual tasks and edits, and the fleet read
#: model is kept by triggers on its owners' writes). Another service reads it only through
#: a named read path (docs/architecture.md, "Table ownership").
OWNERS = ("api", "ingest", "maasp", "integrity", "tasks")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    __owner__: str


def _ts(nullable: bool = False, **kw: Any) -> Any:
    return mapped_column(DateTime(timezone=True), nullable=nullable, **kw)


class TimestampMixin:
    created_at: Mapped[datetime] = _ts(server_default=func.now())
    updated_at: Mapped[datetime] = _ts(server_default=func.now(), onupdate=func.now())


# --- people and machine clients --------------------------------------------------------------


class User(TimestampMixin, Base):
    __tablename__ = "app_user"  # "user" is reserved in PostgreSQL
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(pg_enum(Role, "user_role"))
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Bumped by every change that must revoke the user's tokens (password, role, deactivation,
    # logout); a token carries the version it was issued at (shared/infrastructure/auth.py VERSION_CLAIM).
    token_version: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)


class ApiKey(TimestampMixin, Base):
    """A SCADA client's key. Only a hash is stored; the secret is shown once on creation."""

    __tablename__ = "api_key"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(100), comment="source name stamped on readings")
    key_prefix: Mapped[str] = mapped_column(String(16), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = _ts(nullable=True)
    last_used_at: Mapped[datetime | None] = _ts(nullable=True)


# --- well architecture -----------------------------------------------------------------------


class Well(TimestampMixin, Base):
    __tablename__ = "well"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    field: Mapped[str] = mapped_column(String(100), index=True)
    country: Mapped[str | None] = mapped_column(String(100), index=True)
    type: Mapped[WellType] = mapped_column(pg_enum(WellType, "well_type"))
    status: Mapped[WellStatus] = mapped_column(pg_enum(WellStatus, "well_status"))
    location: Mapped[WellLocation | None] = mapped_column(pg_enum(WellLocation, "well_location"))
    measured_depth: Mapped[float] = mapped_column(Float, comment="total measured depth, m")
    true_vertical_depth: Mapped[float | None] = mapped_column(Float, comment="m")
    # Inputs of the derived critical points (shared/domain/critical_points.py).
    wellhead_rating_bar: Mapped[float | None] = mapped_column(Float, comment="working pressure")
    tree_rating_bar: Mapped[float | None] = mapped_column(Float, comment="working pressure")
    consequence_level: Mapped[int] = mapped_column(SmallInteger, comment="1-5")
    spud_date: Mapped[datetime | None] = _ts(nullable=True)
    completion_date: Mapped[datetime | None] = _ts(nullable=True)
    data_stale_after_s: Mapped[int | None] = mapped_column(
        Integer, comment="no good reading this long is data_stale; None: the global default"
    )
    commissioning: Mapped[bool] = mapped_column(
        Boolean,
        server_default=text("false"),
        comment="being commissioned: the well raises no colour alerts",
    )

    __table_args__ = (
        CheckConstraint("measured_depth > 0", name="measured_depth_positive"),
        CheckConstraint("data_stale_after_s > 0", name="data_stale_after_positive"),
        CheckConstraint("consequence_level BETWEEN 1 AND 5", name="consequence_level_range"),
    )


class CasingString(TimestampMixin, Base):
    __tablename__ = "casing_string"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    casing_type: Mapped[CasingType | None] = mapped_column(pg_enum(CasingType, "casing_type"))
    outer_diameter_in: Mapped[float] = mapped_column(Float)
    inner_diameter_in: Mapped[float] = mapped_column(Float)
    grade: Mapped[str | None] = mapped_column(String(40))
    weight_ppf: Mapped[float | None] = mapped_column(Float, comment="lb/ft")
    top_md: Mapped[float] = mapped_column(Float, comment="m")
    bottom_md: Mapped[float] = mapped_column(Float, comment="shoe, m")
    derating_percent: Mapped[float] = mapped_column(
        Float, server_default=text("0"), default=0.0, comment="wear/corrosion, % of ratings"
    )
    formation_strength_gradient_bar_per_m: Mapped[float | None] = mapped_column(
        Float, comment="at the shoe, from a leak-off or formation-integrity test"
    )
    liner_hanger_rating_bar: Mapped[float | None] = mapped_column(Float, comment="liners only")
    shoe_tvd: Mapped[float | None] = mapped_column(Float, comment="m")
    burst_limit_bar: Mapped[float | None] = mapped_column(Float)
    collapse_limit_bar: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("well_id", "name"),
        CheckConstraint("top_md < bottom_md", name="md_order"),
        CheckConstraint("inner_diameter_in < outer_diameter_in", name="diameter_order"),
    )


class CementInterval(TimestampMixin, Base):
    __tablename__ = "cement_interval"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    casing_id: Mapped[int] = mapped_column(
        ForeignKey("casing_string.id", ondelete="CASCADE"), index=True
    )
    top_md: Mapped[float] = mapped_column(Float, comment="top of cement, m")
    bottom_md: Mapped[float] = mapped_column(Float, comment="m")
    compressive_strength_mpa: Mapped[float | None] = mapped_column(Float)
    quality_flag: Mapped[CementQuality] = mapped_column(
        pg_enum(CementQuality, "cement_quality"), server_default=CementQuality.ok.value
    )
    top_tvd: Mapped[float | None] = mapped_column(Float, comment="m")
    verified_by: Mapped[str | None] = mapped_column(String(100), comment="e.g. CBL, calculated")

    __table_args__ = (CheckConstraint("top_md < bottom_md", name="md_order"),)


class TubingString(TimestampMixin, Base):
    __tablename__ = "tubing_string"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    outer_diameter_in: Mapped[float] = mapped_column(Float)
    inner_diameter_in: Mapped[float] = mapped_column(Float)
    grade: Mapped[str | None] = mapped_column(String(40))
    top_md: Mapped[float] = mapped_column(Float, comment="m")
    bottom_md: Mapped[float] = mapped_column(Float, comment="m")
    packer_depth_md: Mapped[float | None] = mapped_column(Float, comment="m")
    packer_rating_bar: Mapped[float | None] = mapped_column(Float, comment="differential")
    derating_percent: Mapped[float] = mapped_column(
        Float, server_default=text("0"), default=0.0, comment="wear/corrosion, % of ratings"
    )
    fluid_gradient_bar_per_m: Mapped[float | None] = mapped_column(
        Float, comment="least fluid inside (gas); None: empty"
    )
    min_pressure_bar: Mapped[float | None] = mapped_column(Float, comment="least head pressure")
    sssv_depth_md: Mapped[float | None] = mapped_column(Float, comment="m")
    sssv_collapse_limit_bar: Mapped[float | None] = mapped_column(Float)
    burst_limit_bar: Mapped[float | None] = mapped_column(Float)
    collapse_limit_bar: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("well_id", "name"),
        CheckConstraint("top_md < bottom_md", name="md_order"),
        CheckConstraint("inner_diameter_in < outer_diameter_in", name="diameter_order"),
    )


class Annulus(TimestampMixin, Base):
    """The space between two strings. The inner string is a tubing string (A annulus) or a
    casing string (B, C...): exactly one of the two inner ids is set."""

    __tablename__ = "annulus"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(20), comment="A, B, C, D")
    inner_tubing_string_id: Mapped[int | None] = mapped_column(
        ForeignKey("tubing_string.id", ondelete="SET NULL")
    )
    inner_casing_string_id: Mapped[int | None] = mapped_column(
        ForeignKey("casing_string.id", ondelete="SET NULL")
    )
    outer_casing_string_id: Mapped[int | None] = mapped_column(
        ForeignKey("casing_string.id", ondelete="SET NULL")
    )
    fluid_type: Mapped[FluidType] = mapped_column(
        pg_enum(FluidType, "fluid_type"), server_default=FluidType.other.value
    )
    fluid_gradient_bar_per_m: Mapped[float] = mapped_column(Float)
    backup_gradient_bar_per_m: Mapped[float | None] = mapped_column(
        Float, comment="behind the outer casing; None: the next annulus out's fluid"
    )
    safety_factor: Mapped[float] = mapped_column(Float, server_default=text("0.9"))
    warning_threshold: Mapped[float] = mapped_column(Float, server_default=text("0.8"))
    exceeded_threshold: Mapped[float] = mapped_column(Float, server_default=text("1.0"))
    clear_band: Mapped[float] = mapped_column(Float, server_default=text("0.05"))
    operating_limit_bar: Mapped[float | None] = mapped_column(Float, comment="MAWOP/MOP, chosen")
    imposed_pressure: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), comment="operator-imposed (gas lift): never SAP"
    )

    __table_args__ = (
        UniqueConstraint("well_id", "name"),
        CheckConstraint("safety_factor > 0 AND safety_factor <= 1", name="safety_factor_range"),
        CheckConstraint("fluid_gradient_bar_per_m >= 0", name="gradient_non_negative"),
        CheckConstraint(
            "inner_tubing_string_id IS NULL OR inner_casing_string_id IS NULL",
            name="one_inner_string",
        ),
    )


class CriticalPoint(TimestampMixin, Base):
    __tablename__ = "critical_point"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    annulus_id: Mapped[int] = mapped_column(
        ForeignKey("annulus.id", ondelete="CASCADE"), index=True
    )
    label: Mapped[str] = mapped_column(String(100))
    point_type: Mapped[CriticalPointType | None] = mapped_column(
        pg_enum(CriticalPointType, "critical_point_type")
    )
    # The API derives it from tvd_m when not given (a vertical well until a survey exists).
    depth_md: Mapped[float] = mapped_column(Float, comment="m")
    tvd_m: Mapped[float] = mapped_column(Float)
    pressure_limit_bar: Mapped[float] = mapped_column(Float, comment="allowable pressure at depth")
    notes: Mapped[str | None] = mapped_column(Text)
    origin: Mapped[str] = mapped_column(
        String(10), server_default=text("'manual'"), default="manual", comment="manual, derived"
    )
    # A derived point's kind, formula, inputs and source: why it has its limit.
    derivation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    accepted_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        CheckConstraint("tvd_m >= 0 AND depth_md >= 0", name="depth_non_negative"),
        CheckConstraint("pressure_limit_bar > 0", name="limit_positive"),
        CheckConstraint("origin IN ('manual', 'derived')", name="origin_known"),
    )


class SurveyStation(Base):
    """One station of a well's deviation survey (TVD by minimum curvature, docs/domain.md)."""

    __tablename__ = "survey_station"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    md_m: Mapped[float] = mapped_column(Float)
    inclination_deg: Mapped[float] = mapped_column(Float)
    azimuth_deg: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("well_id", "md_m"),
        CheckConstraint("md_m >= 0", name="md_non_negative"),
        CheckConstraint("inclination_deg BETWEEN 0 AND 180", name="inclination_range"),
        CheckConstraint("azimuth_deg BETWEEN 0 AND 360", name="azimuth_range"),
    )


class ScadaTag(TimestampMixin, Base):
    """A historian tag mapped to the annulus it measures."""

    __tablename__ = "scada_tag"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(String(200), unique=True)
    annulus_id: Mapped[int] = mapped_column(
        ForeignKey("annulus.id", ondelete="CASCADE"), index=True
    )


# --- measurements and results ----------------------------------------------------------------


class AnnulusMeasurement(Base):
    """One reading, stored once: (annulus, timestamp, source) is its key, so a replay stores no
    second row. Its id (the reading's event id) is derived from the same three fields.
    (The ingest wire format and the readings topic call the timestamp ``ts``.)

    Partitioned by week of ``timestamp``, with a default partition for readings no week covers,
    and rolled up into the hourly and daily tables below by a trigger (migration 0004;
    partitions and retention: shared/persistence/measurement_storage.py). The key's index serves the
    range and latest-reading queries on its (annulus_id, timestamp) prefix."""

    __tablename__ = "annulus_measurement"

    __owner__ = "ingest"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    annulus_id: Mapped[int] = mapped_column(
        ForeignKey("annulus.id", ondelete="CASCADE"), primary_key=True
    )
    timestamp: Mapped[datetime] = _ts(primary_key=True)
    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    pressure_bar: Mapped[float | None] = mapped_column(Float)
    temperature_c: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[Quality] = mapped_column(pg_enum(Quality, "reading_quality"))
    received_at: Mapped[datetime] = _ts(server_default=func.now())

    __table_args__ = ({"postgresql_partition_by": "RANGE (timestamp)"},)


class _MeasurementRollup:
    """Usable (not bad, with a value) pressure of one annulus over one UTC hour or day, kept
    equal to an aggregation of its raw readings by the insert trigger of migration 0004."""

    annulus_id: Mapped[int] = mapped_column(
        ForeignKey("annulus.id", ondelete="CASCADE"), primary_key=True
    )
    bucket_start: Mapped[datetime] = _ts(primary_key=True)
    min_bar: Mapped[float] = mapped_column(Float)
    max_bar: Mapped[float] = mapped_column(Float)
    sum_bar: Mapped[float] = mapped_column(Float)  # avg = sum_bar / reading_count
    reading_count: Mapped[int] = mapped_column(BigInteger)
    last_ts: Mapped[datetime] = _ts()
    last_bar: Mapped[float] = mapped_column(Float)  # pressure of the newest reading


class AnnulusMeasurementHourly(_MeasurementRollup, Base):
    __tablename__ = "annulus_measurement_hourly"
    __owner__ = "ingest"


class AnnulusMeasurementDaily(_MeasurementRollup, Base):
    __tablename__ = "annulus_measurement_daily"
    __owner__ = "ingest"


class MaaspResult(Base):
    """MAASP history: one row per annulus config version."""

    __tablename__ = "maasp_result"

    __owner__ = "maasp"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    annulus_id: Mapped[int] = mapped_column(ForeignKey("annulus.id", ondelete="CASCADE"))
    config_version: Mapped[int] = mapped_column(BigInteger)
    maasp_bar: Mapped[float | None] = mapped_column(Float, comment="None: no critical points")
    limiting_point_id: Mapped[int | None] = mapped_column(
        ForeignKey("critical_point.id", ondelete="SET NULL")
    )
    limiting_point_name: Mapped[str | None] = mapped_column(String(100))
    computed_at: Mapped[datetime] = _ts()

    __table_args__ = (
        UniqueConstraint("annulus_id", "config_version"),
        Index("ix_maasp_result_annulus_id_computed_at", "annulus_id", "computed_at"),
    )


# --- barriers ----------------------------------------------------------------------------------


class BarrierEnvelope(TimestampMixin, Base):
    __tablename__ = "barrier_envelope"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    type: Mapped[EnvelopeType] = mapped_column(pg_enum(EnvelopeType, "envelope_type"))
    name: Mapped[str] = mapped_column(String(100))  # display name; from type by default
    description: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (UniqueConstraint("well_id", "type"),)


class BarrierElement(TimestampMixin, Base):
    __tablename__ = "barrier_element"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The envelope's well, kept on the element (the specification's well_id); the API sets
    # it from the envelope and refuses a different one.
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    envelope_id: Mapped[int] = mapped_column(
        ForeignKey("barrier_envelope.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    element_type: Mapped[ElementType] = mapped_column(pg_enum(ElementType, "element_type"))
    status: Mapped[ElementStatus] = mapped_column(
        pg_enum(ElementStatus, "element_status"), server_default=ElementStatus.unknown.value
    )
    depth_md: Mapped[float | None] = mapped_column(Float, comment="m")
    test_interval_days: Mapped[int | None] = mapped_column(
        Integer, comment="None: the default for the element type"
    )
    last_tested_at: Mapped[datetime | None] = _ts(nullable=True)
    next_test_due: Mapped[datetime | None] = _ts(nullable=True)
    cement_quality_override: Mapped[bool] = mapped_column(
        Boolean,
        server_default=text("false"),
        default=False,
        comment="a cement element an engineer judged sound despite poor or uncertain cement",
    )


class BarrierTest(TimestampMixin, Base):
    __tablename__ = "barrier_test"
    __owner__ = "api"

    id: Mapped[int] = mapped_column(primary_key=True)
    barrier_element_id: Mapped[int] = mapped_column(
        ForeignKey("barrier_element.id", ondelete="CASCADE"), index=True
    )
    test_type: Mapped[TestType] = mapped_column(pg_enum(TestType, "test_type"))
    test_date: Mapped[datetime] = _ts()
    result: Mapped[TestResult] = mapped_column(pg_enum(TestResult, "test_result"))
    pressure_applied_bar: Mapped[float | None] = mapped_column(Float)
    leak_rate: Mapped[float | None] = mapped_column(Float)
    leak_rate_unit: Mapped[str | None] = mapped_column(String(20), comment="cm3/min, m3/min")
    duration_min: Mapped[float | None] = mapped_column(Float)
    performed_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    comments: Mapped[str | None] = mapped_column(Text)


# --- integrity and risk ------------------------------------------------------------------------


class IntegritySnapshot(Base):
    __tablename__ = "integrity_snapshot"
    __owner__ = "integrity"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = _ts()
    overall_status: Mapped[IntegrityStatus] = mapped_column(
        pg_enum(IntegrityStatus, "integrity_status")
    )
    primary_status: Mapped[EnvelopeStatus] = mapped_column(
        pg_enum(EnvelopeStatus, "envelope_status")
    )
    secondary_status: Mapped[EnvelopeStatus] = mapped_column(
        pg_enum(EnvelopeStatus, "envelope_status")
    )
    probability: Mapped[int] = mapped_column(SmallInteger)
    consequence: Mapped[int] = mapped_column(SmallInteger)
    risk_score: Mapped[int] = mapped_column(SmallInteger, comment="0-100")
    risk_category: Mapped[RiskCategory] = mapped_column(pg_enum(RiskCategory, "risk_category"))
    highest_annulus_utilisation: Mapped[float | None] = mapped_column(Float)
    sap_detected: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'"))
    assessed: Mapped[bool] = mapped_column(
        Boolean, server_default=text("true"), comment="false: data for a full assessment missing"
    )
    assessment_gaps: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'"))

    __table_args__ = (Index("ix_integrity_snapshot_well_id_created_at", "well_id", "created_at"),)


# --- the fleet read model ----------------------------------------------------------------------
# What GET /fleet shows of each well and annulus, kept current by PostgreSQL triggers on the
# writers' tables (annulus_measurement, maasp_result, integrity_snapshot: migration 0008) in
# the writer's own transaction, so the fleet never aggregates the history tables per request
# and no writer can forget it (docs/decisions.md, "The fleet read model").


class FleetAnnulus(Base):
    """Each annulus's latest reading (by ts) and current MAASP (highest config version)."""

    __tablename__ = "fleet_annulus"

    __owner__ = "api"

    annulus_id: Mapped[int] = mapped_column(
        ForeignKey("annulus.id", ondelete="CASCADE"), primary_key=True
    )
    reading_ts: Mapped[datetime | None] = _ts(nullable=True)
    pressure_bar: Mapped[float | None] = mapped_column(Float)
    quality: Mapped[Quality | None] = mapped_column(pg_enum(Quality, "reading_quality"))
    maasp_config_version: Mapped[int | None] = mapped_column(BigInteger)
    maasp_bar: Mapped[float | None] = mapped_column(Float)
    # The rest of what GET /wells/{id}/state shows (migration 0010).
    temperature_c: Mapped[float | None] = mapped_column(Float)
    source: Mapped[str | None] = mapped_column(String(100))
    limiting_point_name: Mapped[str | None] = mapped_column(String(100))


class FleetWell(Base):
    """Each well's latest integrity snapshot (by ts, then id), as the fleet shows it."""

    __tablename__ = "fleet_well"

    __owner__ = "api"

    well_id: Mapped[int] = mapped_column(
        ForeignKey("well.id", ondelete="CASCADE"), primary_key=True
    )
    snapshot_ts: Mapped[datetime] = _ts()
    snapshot_id: Mapped[int] = mapped_column(BigInteger)
    colour: Mapped[IntegrityStatus] = mapped_column(pg_enum(IntegrityStatus, "integrity_status"))
    risk_score: Mapped[int] = mapped_column(SmallInteger)
    risk_category: Mapped[RiskCategory] = mapped_column(pg_enum(RiskCategory, "risk_category"))
    assessed: Mapped[bool] = mapped_column(Boolean)
    assessment_gaps: Mapped[list[str]] = mapped_column(JSONB)


class RiskMatrixCell(Base):
    """One cell of the 5 x 5 matrix. Its key is the pair of levels, so the specification's
    ``id`` is (probability_level, consequence_level)."""

    __tablename__ = "risk_matrix_cell"

    __owner__ = "api"

    probability_level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    consequence_level: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    category: Mapped[RiskCategory] = mapped_column(pg_enum(RiskCategory, "risk_category"))

    __table_args__ = (
        CheckConstraint("probability_level BETWEEN 1 AND 5", name="probability_range"),
        CheckConstraint("consequence_level BETWEEN 1 AND 5", name="consequence_range"),
    )


# --- tasks -------------------------------------------------------------------------------------


class Task(TimestampMixin, Base):
    """Manual and auto-generated tasks share this table. ``target`` names what an auto task is
    about ("annulus:17", "element:5", "well:3"); at most one open auto task per
    (trigger_type, target), enforced by a partial unique index."""

    __tablename__ = "task"

    __owner__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"))
    annulus_id: Mapped[int | None] = mapped_column(ForeignKey("annulus.id", ondelete="SET NULL"))
    barrier_element_id: Mapped[int | None] = mapped_column(
        ForeignKey("barrier_element.id", ondelete="SET NULL")
    )
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default=text("''"))
    trigger_type: Mapped[TriggerType] = mapped_column(pg_enum(TriggerType, "trigger_type"))
    target: Mapped[str | None] = mapped_column(String(100))
    auto_generated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    priority: Mapped[TaskPriority] = mapped_column(pg_enum(TaskPriority, "task_priority"))
    status: Mapped[TaskStatus] = mapped_column(
        pg_enum(TaskStatus, "task_status"), server_default=TaskStatus.open.value
    )
    due_date: Mapped[datetime | None] = _ts(nullable=True)
    assigned_to_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    source_event_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    closed_at: Mapped[datetime | None] = _ts(nullable=True)

    __table_args__ = (
        Index("ix_task_well_id_status", "well_id", "status"),
        Index(
            "uq_task_open_trigger_target",
            "trigger_type",
            "target",
            unique=True,
            postgresql_where=text("auto_generated AND status IN ('open', 'in_progress')"),
        ),
    )


class TaskSourceEvent(Base):
    """Events the tasks worker has applied, by event id (written by the tasks service).

    The open-task index alone cannot tell a replay from a new event once the task is closed:
    this ledger can, so a replayed alert never reopens a closed task. ``task_id`` and
    ``action`` let a replay re-send the TaskEvent that may have been lost in a crash.
    """

    __tablename__ = "task_source_event"

    __owner__ = "tasks"

    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("task.id", ondelete="SET NULL"))
    action: Mapped[str | None] = mapped_column(String(20))
    processed_at: Mapped[datetime] = _ts(server_default=func.now(), index=True)


# --- alerts (history of wims.alerts, written by the api service) -------------------------------


class AlertRecord(Base):
    """Alert history for queries and acknowledgement; one row per alert event id."""

    __tablename__ = "alert"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(20))
    well_id: Mapped[int] = mapped_column(BigInteger, comment="no FK: history outlives a well")
    annulus_id: Mapped[int | None] = mapped_column(BigInteger)
    ts: Mapped[datetime] = _ts()
    message: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)
    acknowledged_at: Mapped[datetime | None] = _ts(nullable=True)
    acknowledged_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )

    __table_args__ = (
        Index("ix_alert_well_id_ts", "well_id", "ts"),
        Index("ix_alert_ts", "ts"),
        # The findings sweep reads each annulus' newest alert of one kind (its last test).
        Index("ix_alert_kind_annulus_id_ts", "kind", "annulus_id", "ts"),
    )


# --- daily findings (written by the findings sweep) ---------------------------------------------


class FindingState(Base):
    """The daily findings raised and not yet cleared, one row per (kind, subject), so a
    finding is raised once and cleared once across sweeps and restarts. ``episode`` names the
    raised episode (what its alert id is derived from)."""

    __tablename__ = "finding_state"

    __owner__ = "tasks"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(String(100), primary_key=True, comment="annulus:17")
    well_id: Mapped[int] = mapped_column(ForeignKey("well.id", ondelete="CASCADE"), index=True)
    episode: Mapped[str] = mapped_column(String(100))
    raised_at: Mapped[datetime] = _ts()


# --- transactional outbox ----------------------------------------------------------------------


class OutboxRecord(Base):
    """Events written in the same transaction as the change they describe; the relay
    publishes them in id order and stamps ``sent_at``."""

    __tablename__ = "outbox"

    __owner__ = "api"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    topic: Mapped[str] = mapped_column(String(100))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = _ts(server_default=func.now())
    sent_at: Mapped[datetime | None] = _ts(nullable=True)

    __table_args__ = (Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),)

"""initial schema: the whole WIMS data model, the outbox and the default risk matrix

Reviewed by hand: enum types are dropped on downgrade (Alembic does not), the open-task
uniqueness is a partial unique index, and the default 5 x 5 risk matrix is seeded
(Dethlefs & Chastain banding by probability x consequence).

Revision ID: 0001
Revises:
Create Date: 2026-11-25 16:52:35.875079
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_TYPES = (
    "user_role",
    "well_type",
    "well_status",
    "well_location",
    "casing_type",
    "critical_point_type",
    "reading_quality",
    "envelope_type",
    "element_type",
    "element_status",
    "envelope_status",
    "test_type",
    "test_result",
    "integrity_status",
    "risk_category",
    "trigger_type",
    "task_priority",
    "task_status",
)


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("hashed_password", sa.String(length=200), nullable=False),
        sa.Column("role", sa.Enum("viewer", "engineer", "admin", name="user_role"), nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("email", name=op.f("uq_app_user_email")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(
        "ix_outbox_unsent",
        "outbox",
        ["id"],
        unique=False,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "risk_matrix_cell",
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("consequence", sa.SmallInteger(), nullable=False),
        sa.Column(
            "category",
            sa.Enum("low", "medium", "significant", "high", name="risk_category"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "consequence BETWEEN 1 AND 5", name=op.f("ck_risk_matrix_cell_consequence_range")
        ),
        sa.CheckConstraint(
            "probability BETWEEN 1 AND 5", name=op.f("ck_risk_matrix_cell_probability_range")
        ),
        sa.PrimaryKeyConstraint("probability", "consequence", name=op.f("pk_risk_matrix_cell")),
    )
    op.create_table(
        "well",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("field", sa.String(length=100), nullable=False),
        sa.Column(
            "well_type",
            sa.Enum(
                "oil_producer",
                "gas_producer",
                "water_injector",
                "gas_injector",
                "observation",
                name="well_type",
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("active", "shut_in", "suspended", "abandoned", name="well_status"),
            nullable=False,
        ),
        sa.Column(
            "location",
            sa.Enum("platform", "subsea", "onshore", name="well_location"),
            nullable=False,
        ),
        sa.Column("measured_depth", sa.Float(), nullable=False, comment="total measured depth, m"),
        sa.Column("true_vertical_depth", sa.Float(), nullable=True, comment="m"),
        sa.Column("consequence_level", sa.SmallInteger(), nullable=False, comment="1-5"),
        sa.Column("spud_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "consequence_level BETWEEN 1 AND 5", name=op.f("ck_well_consequence_level_range")
        ),
        sa.CheckConstraint("measured_depth > 0", name=op.f("ck_well_measured_depth_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_well")),
        sa.UniqueConstraint("name", name=op.f("uq_well_name")),
    )
    op.create_index(op.f("ix_well_field"), "well", ["field"], unique=False)
    op.create_table(
        "alert",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=20), nullable=False),
        sa.Column(
            "well_id", sa.BigInteger(), nullable=False, comment="no FK: history outlives a well"
        ),
        sa.Column("annulus_id", sa.BigInteger(), nullable=True),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"],
            ["app_user.id"],
            name=op.f("fk_alert_acknowledged_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alert")),
        sa.UniqueConstraint("event_id", name=op.f("uq_alert_event_id")),
    )
    op.create_index("ix_alert_ts", "alert", ["ts"], unique=False)
    op.create_index("ix_alert_well_id_ts", "alert", ["well_id", "ts"], unique=False)
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "source",
            sa.String(length=100),
            nullable=False,
            comment="source name stamped on readings",
        ),
        sa.Column("key_prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["app_user.id"],
            name=op.f("fk_api_key_created_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_key")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_key_key_hash")),
    )
    op.create_index(op.f("ix_api_key_key_prefix"), "api_key", ["key_prefix"], unique=False)
    op.create_table(
        "barrier_envelope",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column(
            "envelope_type", sa.Enum("primary", "secondary", name="envelope_type"), nullable=False
        ),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["well_id"],
            ["well.id"],
            name=op.f("fk_barrier_envelope_well_id_well"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_barrier_envelope")),
        sa.UniqueConstraint(
            "well_id", "envelope_type", name=op.f("uq_barrier_envelope_well_id_envelope_type")
        ),
    )
    op.create_index(
        op.f("ix_barrier_envelope_well_id"), "barrier_envelope", ["well_id"], unique=False
    )
    op.create_table(
        "casing_string",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "casing_type",
            sa.Enum(
                "conductor", "surface", "intermediate", "production", "liner", name="casing_type"
            ),
            nullable=False,
        ),
        sa.Column("outer_diameter_in", sa.Float(), nullable=False),
        sa.Column("inner_diameter_in", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=40), nullable=True),
        sa.Column("weight_ppf", sa.Float(), nullable=True, comment="lb/ft"),
        sa.Column("top_md", sa.Float(), nullable=False, comment="m"),
        sa.Column("bottom_md", sa.Float(), nullable=False, comment="shoe, m"),
        sa.Column("shoe_tvd", sa.Float(), nullable=True, comment="m"),
        sa.Column("burst_rating_bar", sa.Float(), nullable=True),
        sa.Column("collapse_rating_bar", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "inner_diameter_in < outer_diameter_in", name=op.f("ck_casing_string_diameter_order")
        ),
        sa.CheckConstraint("top_md < bottom_md", name=op.f("ck_casing_string_md_order")),
        sa.ForeignKeyConstraint(
            ["well_id"], ["well.id"], name=op.f("fk_casing_string_well_id_well"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_casing_string")),
        sa.UniqueConstraint("well_id", "name", name=op.f("uq_casing_string_well_id_name")),
    )
    op.create_index(op.f("ix_casing_string_well_id"), "casing_string", ["well_id"], unique=False)
    op.create_table(
        "integrity_snapshot",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status", sa.Enum("green", "amber", "red", name="integrity_status"), nullable=False
        ),
        sa.Column(
            "primary_envelope_status",
            sa.Enum("intact", "degraded", "failed", name="envelope_status"),
            nullable=False,
        ),
        sa.Column(
            "secondary_envelope_status",
            sa.Enum("intact", "degraded", "failed", name="envelope_status"),
            nullable=False,
        ),
        sa.Column("probability", sa.SmallInteger(), nullable=False),
        sa.Column("consequence", sa.SmallInteger(), nullable=False),
        sa.Column("risk_score", sa.SmallInteger(), nullable=False, comment="0-100"),
        sa.Column(
            "risk_category",
            sa.Enum("low", "medium", "significant", "high", name="risk_category"),
            nullable=False,
        ),
        sa.Column("max_utilisation", sa.Float(), nullable=True),
        sa.Column("sap_detected", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "findings",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["well_id"],
            ["well.id"],
            name=op.f("fk_integrity_snapshot_well_id_well"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_integrity_snapshot")),
        sa.UniqueConstraint("event_id", name=op.f("uq_integrity_snapshot_event_id")),
    )
    op.create_index(
        "ix_integrity_snapshot_well_id_ts", "integrity_snapshot", ["well_id", "ts"], unique=False
    )
    op.create_table(
        "tubing_string",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("outer_diameter_in", sa.Float(), nullable=False),
        sa.Column("inner_diameter_in", sa.Float(), nullable=False),
        sa.Column("grade", sa.String(length=40), nullable=True),
        sa.Column("top_md", sa.Float(), nullable=False, comment="m"),
        sa.Column("bottom_md", sa.Float(), nullable=False, comment="m"),
        sa.Column("packer_depth_md", sa.Float(), nullable=True, comment="m"),
        sa.Column("burst_rating_bar", sa.Float(), nullable=True),
        sa.Column("collapse_rating_bar", sa.Float(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "inner_diameter_in < outer_diameter_in", name=op.f("ck_tubing_string_diameter_order")
        ),
        sa.CheckConstraint("top_md < bottom_md", name=op.f("ck_tubing_string_md_order")),
        sa.ForeignKeyConstraint(
            ["well_id"], ["well.id"], name=op.f("fk_tubing_string_well_id_well"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tubing_string")),
        sa.UniqueConstraint("well_id", "name", name=op.f("uq_tubing_string_well_id_name")),
    )
    op.create_index(op.f("ix_tubing_string_well_id"), "tubing_string", ["well_id"], unique=False)
    op.create_table(
        "annulus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=20), nullable=False, comment="A, B, C, D"),
        sa.Column("inner_tubing_string_id", sa.Integer(), nullable=True),
        sa.Column("inner_casing_string_id", sa.Integer(), nullable=True),
        sa.Column("outer_casing_string_id", sa.Integer(), nullable=True),
        sa.Column("fluid_gradient_bar_per_m", sa.Float(), nullable=False),
        sa.Column("safety_factor", sa.Float(), server_default=sa.text("0.9"), nullable=False),
        sa.Column("warning_threshold", sa.Float(), server_default=sa.text("0.8"), nullable=False),
        sa.Column("exceeded_threshold", sa.Float(), server_default=sa.text("1.0"), nullable=False),
        sa.Column("clear_band", sa.Float(), server_default=sa.text("0.05"), nullable=False),
        sa.Column("operating_limit_bar", sa.Float(), nullable=True, comment="MAWOP/MOP, chosen"),
        sa.Column(
            "imposed_pressure",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="operator-imposed (gas lift): never SAP",
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "fluid_gradient_bar_per_m >= 0", name=op.f("ck_annulus_gradient_non_negative")
        ),
        sa.CheckConstraint(
            "inner_tubing_string_id IS NULL OR inner_casing_string_id IS NULL",
            name=op.f("ck_annulus_one_inner_string"),
        ),
        sa.CheckConstraint(
            "safety_factor > 0 AND safety_factor <= 1", name=op.f("ck_annulus_safety_factor_range")
        ),
        sa.ForeignKeyConstraint(
            ["inner_casing_string_id"],
            ["casing_string.id"],
            name=op.f("fk_annulus_inner_casing_string_id_casing_string"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["inner_tubing_string_id"],
            ["tubing_string.id"],
            name=op.f("fk_annulus_inner_tubing_string_id_tubing_string"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["outer_casing_string_id"],
            ["casing_string.id"],
            name=op.f("fk_annulus_outer_casing_string_id_casing_string"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["well_id"], ["well.id"], name=op.f("fk_annulus_well_id_well"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annulus")),
        sa.UniqueConstraint("well_id", "name", name=op.f("uq_annulus_well_id_name")),
    )
    op.create_index(op.f("ix_annulus_well_id"), "annulus", ["well_id"], unique=False)
    op.create_table(
        "barrier_element",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("envelope_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "element_type",
            sa.Enum(
                "sssv",
                "packer",
                "tubing",
                "tubing_hanger",
                "casing",
                "cement",
                "wellhead",
                "wellhead_seal",
                "tree_valve",
                "annulus_valve",
                "formation",
                name="element_type",
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("ok", "degraded", "failed", "unknown", name="element_status"),
            server_default="unknown",
            nullable=False,
        ),
        sa.Column("depth_md", sa.Float(), nullable=True, comment="m"),
        sa.Column(
            "test_interval_days",
            sa.Integer(),
            nullable=True,
            comment="None: the default for the element type",
        ),
        sa.Column("last_tested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_test_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["envelope_id"],
            ["barrier_envelope.id"],
            name=op.f("fk_barrier_element_envelope_id_barrier_envelope"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_barrier_element")),
    )
    op.create_index(
        op.f("ix_barrier_element_envelope_id"), "barrier_element", ["envelope_id"], unique=False
    )
    op.create_table(
        "cement_interval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("casing_string_id", sa.Integer(), nullable=False),
        sa.Column("top_md", sa.Float(), nullable=False, comment="top of cement, m"),
        sa.Column("bottom_md", sa.Float(), nullable=False, comment="m"),
        sa.Column("top_tvd", sa.Float(), nullable=True, comment="m"),
        sa.Column(
            "verified_by", sa.String(length=100), nullable=True, comment="e.g. CBL, calculated"
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("top_md < bottom_md", name=op.f("ck_cement_interval_md_order")),
        sa.ForeignKeyConstraint(
            ["casing_string_id"],
            ["casing_string.id"],
            name=op.f("fk_cement_interval_casing_string_id_casing_string"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["well_id"],
            ["well.id"],
            name=op.f("fk_cement_interval_well_id_well"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cement_interval")),
    )
    op.create_index(
        op.f("ix_cement_interval_casing_string_id"),
        "cement_interval",
        ["casing_string_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_cement_interval_well_id"), "cement_interval", ["well_id"], unique=False
    )
    op.create_table(
        "annulus_measurement",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("annulus_id", sa.Integer(), nullable=False),
        sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("pressure_bar", sa.Float(), nullable=True),
        sa.Column("temperature_c", sa.Float(), nullable=True),
        sa.Column(
            "quality", sa.Enum("good", "uncertain", "bad", name="reading_quality"), nullable=False
        ),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_annulus_measurement_annulus_id_annulus"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_annulus_measurement")),
        sa.UniqueConstraint(
            "annulus_id", "ts", "source", name=op.f("uq_annulus_measurement_annulus_id_ts_source")
        ),
    )
    op.create_index(
        "ix_annulus_measurement_annulus_id_ts",
        "annulus_measurement",
        ["annulus_id", "ts"],
        unique=False,
    )
    op.create_table(
        "barrier_test",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("element_id", sa.Integer(), nullable=False),
        sa.Column(
            "test_type",
            sa.Enum("pressure", "inflow", "leak_rate", "functional", name="test_type"),
            nullable=False,
        ),
        sa.Column("performed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.Enum("pass", "fail", name="test_result"), nullable=False),
        sa.Column("test_pressure_bar", sa.Float(), nullable=True),
        sa.Column("leak_rate", sa.Float(), nullable=True),
        sa.Column("leak_rate_unit", sa.String(length=20), nullable=True, comment="cm3/min, m3/min"),
        sa.Column("duration_min", sa.Float(), nullable=True),
        sa.Column("performed_by_id", sa.Integer(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["element_id"],
            ["barrier_element.id"],
            name=op.f("fk_barrier_test_element_id_barrier_element"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["performed_by_id"],
            ["app_user.id"],
            name=op.f("fk_barrier_test_performed_by_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_barrier_test")),
    )
    op.create_index(
        op.f("ix_barrier_test_element_id"), "barrier_test", ["element_id"], unique=False
    )
    op.create_table(
        "critical_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("annulus_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "point_type",
            sa.Enum(
                "shoe",
                "top_of_cement",
                "weak_formation",
                "outer_casing_burst",
                "inner_string_collapse",
                "packer",
                "liner_hanger",
                "wellhead",
                "tree",
                name="critical_point_type",
            ),
            nullable=False,
        ),
        sa.Column("depth_md", sa.Float(), nullable=False, comment="m"),
        sa.Column("tvd_m", sa.Float(), nullable=False),
        sa.Column(
            "pressure_limit_bar", sa.Float(), nullable=False, comment="allowable pressure at depth"
        ),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("pressure_limit_bar > 0", name=op.f("ck_critical_point_limit_positive")),
        sa.CheckConstraint(
            "tvd_m >= 0 AND depth_md >= 0", name=op.f("ck_critical_point_depth_non_negative")
        ),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_critical_point_annulus_id_annulus"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_critical_point")),
    )
    op.create_index(
        op.f("ix_critical_point_annulus_id"), "critical_point", ["annulus_id"], unique=False
    )
    op.create_table(
        "scada_tag",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=200), nullable=False),
        sa.Column("annulus_id", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_scada_tag_annulus_id_annulus"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scada_tag")),
        sa.UniqueConstraint("tag", name=op.f("uq_scada_tag_tag")),
    )
    op.create_index(op.f("ix_scada_tag_annulus_id"), "scada_tag", ["annulus_id"], unique=False)
    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("annulus_id", sa.Integer(), nullable=True),
        sa.Column("barrier_element_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "trigger_type",
            sa.Enum(
                "manual",
                "maasp_exceed",
                "maasp_warning",
                "sap_detected",
                "diagnostic_test_due",
                "failed_test",
                "integrity_red",
                "test_due",
                name="trigger_type",
            ),
            nullable=False,
        ),
        sa.Column("target", sa.String(length=100), nullable=True),
        sa.Column("auto_generated", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "priority",
            sa.Enum("low", "normal", "high", "critical", name="task_priority"),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum("open", "in_progress", "done", "cancelled", name="task_status"),
            server_default="open",
            nullable=False,
        ),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_to_id", sa.Integer(), nullable=True),
        sa.Column("source_event_id", sa.UUID(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_task_annulus_id_annulus"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to_id"],
            ["app_user.id"],
            name=op.f("fk_task_assigned_to_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["barrier_element_id"],
            ["barrier_element.id"],
            name=op.f("fk_task_barrier_element_id_barrier_element"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["well_id"], ["well.id"], name=op.f("fk_task_well_id_well"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
    )
    op.create_index("ix_task_well_id_status", "task", ["well_id", "status"], unique=False)
    op.create_index(
        "uq_task_open_trigger_target",
        "task",
        ["trigger_type", "target"],
        unique=True,
        postgresql_where=sa.text("auto_generated AND status IN ('open', 'in_progress')"),
    )
    op.create_table(
        "task_source_event",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=20), nullable=True),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_task_source_event_task_id_task"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_task_source_event")),
    )
    op.create_index(
        op.f("ix_task_source_event_processed_at"),
        "task_source_event",
        ["processed_at"],
        unique=False,
    )
    op.create_table(
        "maasp_result",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("annulus_id", sa.Integer(), nullable=False),
        sa.Column("config_version", sa.BigInteger(), nullable=False),
        sa.Column("maasp_bar", sa.Float(), nullable=True, comment="None: no critical points"),
        sa.Column("limiting_point_id", sa.Integer(), nullable=True),
        sa.Column("limiting_point_name", sa.String(length=100), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["annulus_id"],
            ["annulus.id"],
            name=op.f("fk_maasp_result_annulus_id_annulus"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["limiting_point_id"],
            ["critical_point.id"],
            name=op.f("fk_maasp_result_limiting_point_id_critical_point"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_maasp_result")),
        sa.UniqueConstraint(
            "annulus_id", "config_version", name=op.f("uq_maasp_result_annulus_id_config_version")
        ),
    )
    op.create_index(
        "ix_maasp_result_annulus_id_computed_at",
        "maasp_result",
        ["annulus_id", "computed_at"],
        unique=False,
    )

    # Default risk matrix: category by p x c (1-4 low, 5-10 medium, 12-16 significant,
    # 17-25 high). Admins edit it cell by cell through the API.
    cells = []
    for p in range(1, 6):
        for c in range(1, 6):
            score = p * c
            category = (
                "low"
                if score <= 4
                else "medium"
                if score <= 10
                else "significant"
                if score <= 16
                else "high"
            )
            cells.append({"probability": p, "consequence": c, "category": category})
    risk_matrix_cell = sa.table(
        "risk_matrix_cell",
        sa.column("probability", sa.SmallInteger),
        sa.column("consequence", sa.SmallInteger),
        sa.column("category", sa.String),
    )
    op.execute(
        risk_matrix_cell.insert().values(
            [
                {
                    **cell,
                    "category": sa.cast(
                        sa.literal(cell["category"]), postgresql.ENUM(name="risk_category")
                    ),
                }
                for cell in cells
            ]
        )
    )


def downgrade() -> None:
    op.drop_index("ix_maasp_result_annulus_id_computed_at", table_name="maasp_result")
    op.drop_table("maasp_result")
    op.drop_index(op.f("ix_task_source_event_processed_at"), table_name="task_source_event")
    op.drop_table("task_source_event")
    op.drop_index(
        "uq_task_open_trigger_target",
        table_name="task",
        postgresql_where=sa.text("auto_generated AND status IN ('open', 'in_progress')"),
    )
    op.drop_index("ix_task_well_id_status", table_name="task")
    op.drop_table("task")
    op.drop_index(op.f("ix_scada_tag_annulus_id"), table_name="scada_tag")
    op.drop_table("scada_tag")
    op.drop_index(op.f("ix_critical_point_annulus_id"), table_name="critical_point")
    op.drop_table("critical_point")
    op.drop_index(op.f("ix_barrier_test_element_id"), table_name="barrier_test")
    op.drop_table("barrier_test")
    op.drop_index("ix_annulus_measurement_annulus_id_ts", table_name="annulus_measurement")
    op.drop_table("annulus_measurement")
    op.drop_index(op.f("ix_cement_interval_well_id"), table_name="cement_interval")
    op.drop_index(op.f("ix_cement_interval_casing_string_id"), table_name="cement_interval")
    op.drop_table("cement_interval")
    op.drop_index(op.f("ix_barrier_element_envelope_id"), table_name="barrier_element")
    op.drop_table("barrier_element")
    op.drop_index(op.f("ix_annulus_well_id"), table_name="annulus")
    op.drop_table("annulus")
    op.drop_index(op.f("ix_tubing_string_well_id"), table_name="tubing_string")
    op.drop_table("tubing_string")
    op.drop_index("ix_integrity_snapshot_well_id_ts", table_name="integrity_snapshot")
    op.drop_table("integrity_snapshot")
    op.drop_index(op.f("ix_casing_string_well_id"), table_name="casing_string")
    op.drop_table("casing_string")
    op.drop_index(op.f("ix_barrier_envelope_well_id"), table_name="barrier_envelope")
    op.drop_table("barrier_envelope")
    op.drop_index(op.f("ix_api_key_key_prefix"), table_name="api_key")
    op.drop_table("api_key")
    op.drop_index("ix_alert_well_id_ts", table_name="alert")
    op.drop_index("ix_alert_ts", table_name="alert")
    op.drop_table("alert")
    op.drop_index(op.f("ix_well_field"), table_name="well")
    op.drop_table("well")
    op.drop_table("risk_matrix_cell")
    op.drop_index(
        "ix_outbox_unsent", table_name="outbox", postgresql_where=sa.text("sent_at IS NULL")
    )
    op.drop_table("outbox")
    op.drop_table("app_user")
    for enum_name in ENUM_TYPES:
        op.execute(f"DROP TYPE IF EXISTS {enum_name}")

"""The specification's data model: its names, its missing fields and its value sets

Reviewed by hand. Renames in place (ALTER ... RENAME keeps every row and value), so no data
is copied. Constraints and indexes named after a renamed column are renamed with it, as the
naming convention in shared/persistence/models.py would name them.

Value mappings (docs/data-model.md "Upgrading from 0001/0002"):
- risk_category low/medium/significant/high -> low/medium/high/extreme (the same four bands
  in the same order: significant becomes high, high becomes extreme), in the matrix and in
  every integrity snapshot. Downgrade maps back one to one.
- test_type leak_rate -> leak-rate and well_status shut_in -> shut-in (the specification's
  spellings).
- well_type gains producer/injector/testing; test_result gains inconclusive. PostgreSQL
  cannot drop an enum label, so downgrade rebuilds those types and maps the new values to
  their nearest old ones (producer -> oil_producer, injector -> water_injector, testing ->
  observation, inconclusive -> fail, the conservative reading); trigger_type gains
  inconclusive_test (down: test_due, the other retest-an-element task).
- New columns: well.country and well.completion_date (NULL), cement_interval.quality_flag
  ('OK': WIMS treated all cement as sound before) and compressive_strength_mpa (NULL),
  annulus.fluid_type ('other': the stored gradient was given explicitly),
  barrier_element.well_id (its envelope's well), barrier_element.cement_quality_override
  (false).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, old column, new column)
COLUMN_RENAMES: tuple[tuple[str, str, str], ...] = (
    ("app_user", "hashed_password", "password_hash"),
    ("well", "well_type", "type"),
    ("casing_string", "burst_rating_bar", "burst_limit_bar"),
    ("casing_string", "collapse_rating_bar", "collapse_limit_bar"),
    ("tubing_string", "burst_rating_bar", "burst_limit_bar"),
    ("tubing_string", "collapse_rating_bar", "collapse_limit_bar"),
    ("cement_interval", "casing_string_id", "casing_id"),
    ("critical_point", "name", "label"),
    ("annulus_measurement", "ts", "timestamp"),
    ("barrier_envelope", "envelope_type", "type"),
    ("barrier_test", "element_id", "barrier_element_id"),
    ("barrier_test", "performed_at", "test_date"),
    ("barrier_test", "test_pressure_bar", "pressure_applied_bar"),
    ("barrier_test", "notes", "comments"),
    ("integrity_snapshot", "ts", "created_at"),
    ("integrity_snapshot", "status", "overall_status"),
    ("integrity_snapshot", "primary_envelope_status", "primary_status"),
    ("integrity_snapshot", "secondary_envelope_status", "secondary_status"),
    ("integrity_snapshot", "max_utilisation", "highest_annulus_utilisation"),
    ("risk_matrix_cell", "probability", "probability_level"),
    ("risk_matrix_cell", "consequence", "consequence_level"),
    ("task", "due_at", "due_date"),
)

# (old name, new name): indexes, then constraints (on their table)
INDEX_RENAMES: tuple[tuple[str, str], ...] = (
    ("ix_cement_interval_casing_string_id", "ix_cement_interval_casing_id"),
    ("ix_annulus_measurement_annulus_id_ts", "ix_annulus_measurement_annulus_id_timestamp"),
    ("ix_barrier_test_element_id", "ix_barrier_test_barrier_element_id"),
    ("ix_integrity_snapshot_well_id_ts", "ix_integrity_snapshot_well_id_created_at"),
)
CONSTRAINT_RENAMES: tuple[tuple[str, str, str], ...] = (
    (
        "cement_interval",
        "fk_cement_interval_casing_string_id_casing_string",
        "fk_cement_interval_casing_id_casing_string",
    ),
    (
        "annulus_measurement",
        "uq_annulus_measurement_annulus_id_ts_source",
        "uq_annulus_measurement_annulus_id_timestamp_source",
    ),
    (
        "barrier_envelope",
        "uq_barrier_envelope_well_id_envelope_type",
        "uq_barrier_envelope_well_id_type",
    ),
    (
        "barrier_test",
        "fk_barrier_test_element_id_barrier_element",
        "fk_barrier_test_barrier_element_id_barrier_element",
    ),
)

RISK_UP = {"low": "low", "medium": "medium", "significant": "high", "high": "extreme"}
RISK_COLUMNS = (("risk_matrix_cell", "category"), ("integrity_snapshot", "risk_category"))
OLD_WELL_TYPES = ("oil_producer", "gas_producer", "water_injector", "gas_injector", "observation")
OLD_TRIGGER_TYPES = (
    "manual",
    "maasp_exceed",
    "maasp_warning",
    "sap_detected",
    "diagnostic_test_due",
    "failed_test",
    "integrity_red",
    "test_due",
)
TRIGGER_DOWN = {"inconclusive_test": "test_due"}
WELL_TYPE_DOWN = {
    "producer": "oil_producer",
    "injector": "water_injector",
    "testing": "observation",
}


def _retype(
    enum_name: str, labels: Sequence[str], columns: Sequence[tuple[str, str]], mapping: dict
) -> None:
    """Rebuild an enum type with new labels, mapping each row's value (PostgreSQL can add
    and rename labels in place but not drop them)."""
    op.execute(f"ALTER TYPE {enum_name} RENAME TO {enum_name}_old")
    quoted = ", ".join(f"'{label}'" for label in labels)
    op.execute(f"CREATE TYPE {enum_name} AS ENUM ({quoted})")
    cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in mapping.items())
    for table, column in columns:
        op.execute(
            f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE {enum_name} USING '
            f'(CASE "{column}"::text {cases} ELSE "{column}"::text END)::{enum_name}'
        )
    op.execute(f"DROP TYPE {enum_name}_old")


def _rename_all(reverse: bool) -> None:
    for table, old, new in COLUMN_RENAMES:
        a, b = (new, old) if reverse else (old, new)
        op.alter_column(table, a, new_column_name=b)
    for old, new in INDEX_RENAMES:
        a, b = (new, old) if reverse else (old, new)
        op.execute(f"ALTER INDEX {a} RENAME TO {b}")
    for table, old, new in CONSTRAINT_RENAMES:
        a, b = (new, old) if reverse else (old, new)
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT {a} TO {b}")


def upgrade() -> None:
    _rename_all(reverse=False)

    # Value sets.
    _retype("risk_category", ("low", "medium", "high", "extreme"), RISK_COLUMNS, RISK_UP)
    op.execute("ALTER TYPE test_type RENAME VALUE 'leak_rate' TO 'leak-rate'")
    op.execute("ALTER TYPE well_status RENAME VALUE 'shut_in' TO 'shut-in'")
    op.execute("ALTER TYPE test_result ADD VALUE IF NOT EXISTS 'inconclusive'")
    op.execute("ALTER TYPE trigger_type ADD VALUE IF NOT EXISTS 'inconclusive_test'")
    for label in ("producer", "injector", "testing"):
        op.execute(f"ALTER TYPE well_type ADD VALUE IF NOT EXISTS '{label}'")

    # Nothing the specification does not ask for is required.
    op.alter_column("well", "location", nullable=True)
    op.alter_column("casing_string", "casing_type", nullable=True)
    op.alter_column("critical_point", "point_type", nullable=True)

    # Missing fields.
    op.add_column("well", sa.Column("country", sa.String(length=100), nullable=True))
    op.add_column("well", sa.Column("completion_date", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_well_country"), "well", ["country"], unique=False)

    cement_quality = sa.Enum("OK", "uncertain", "poor", name="cement_quality")
    cement_quality.create(op.get_bind())
    op.add_column(
        "cement_interval", sa.Column("compressive_strength_mpa", sa.Float(), nullable=True)
    )
    op.add_column(
        "cement_interval",
        sa.Column("quality_flag", cement_quality, server_default="OK", nullable=False),
    )

    fluid_type = sa.Enum("gas", "brine", "mud", "other", name="fluid_type")
    fluid_type.create(op.get_bind())
    op.add_column(
        "annulus", sa.Column("fluid_type", fluid_type, server_default="other", nullable=False)
    )

    op.add_column(
        "barrier_element",
        sa.Column(
            "cement_quality_override",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="a cement element an engineer judged sound despite poor or uncertain cement",
        ),
    )
    op.add_column("barrier_element", sa.Column("well_id", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE barrier_element e SET well_id = v.well_id FROM barrier_envelope v"
        " WHERE v.id = e.envelope_id"
    )
    op.alter_column("barrier_element", "well_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_barrier_element_well_id_well"),
        "barrier_element",
        "well",
        ["well_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_index(
        op.f("ix_barrier_element_well_id"), "barrier_element", ["well_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_barrier_element_well_id"), table_name="barrier_element")
    op.drop_constraint(
        op.f("fk_barrier_element_well_id_well"), "barrier_element", type_="foreignkey"
    )
    op.drop_column("barrier_element", "well_id")
    op.drop_column("barrier_element", "cement_quality_override")
    op.drop_column("annulus", "fluid_type")
    op.execute("DROP TYPE fluid_type")
    op.drop_column("cement_interval", "quality_flag")
    op.drop_column("cement_interval", "compressive_strength_mpa")
    op.execute("DROP TYPE cement_quality")
    op.drop_index(op.f("ix_well_country"), table_name="well")
    op.drop_column("well", "completion_date")
    op.drop_column("well", "country")

    # Rows made optional by 0003 and left empty get the old schema's required values: the
    # point's type is unknown (weak_formation is the generic limit), the casing's type
    # production, the well's location platform (the monthly duty, the looser one is not
    # chosen silently: these are placeholders an engineer should review after a downgrade).
    op.execute("UPDATE critical_point SET point_type = 'weak_formation' WHERE point_type IS NULL")
    op.execute("UPDATE casing_string SET casing_type = 'production' WHERE casing_type IS NULL")
    op.execute("UPDATE well SET location = 'platform' WHERE location IS NULL")
    op.alter_column("critical_point", "point_type", nullable=False)
    op.alter_column("casing_string", "casing_type", nullable=False)
    op.alter_column("well", "location", nullable=False)

    _retype("well_type", OLD_WELL_TYPES, (("well", "type"),), WELL_TYPE_DOWN)
    _retype(
        "test_result", ("pass", "fail"), (("barrier_test", "result"),), {"inconclusive": "fail"}
    )
    op.execute("ALTER TYPE test_type RENAME VALUE 'leak-rate' TO 'leak_rate'")
    op.execute("ALTER TYPE well_status RENAME VALUE 'shut-in' TO 'shut_in'")
    _retype("trigger_type", OLD_TRIGGER_TYPES, (("task", "trigger_type"),), TRIGGER_DOWN)
    risk_down = {new: old for old, new in RISK_UP.items()}
    _retype("risk_category", ("low", "medium", "significant", "high"), RISK_COLUMNS, risk_down)

    _rename_all(reverse=True)

"""Daily findings: a well's own staleness time, the findings' raised state, new trigger types

Reviewed by hand: well.data_stale_after_s is a nullable integer (existing wells keep the
global default); finding_state is new and empty (the first sweep raises what is true then);
trigger_type gains data_stale, maasp_missing and annulus_communication; alert gains an
index on (kind, annulus_id, ts) for the sweep's look-up of each annulus' last test. Downgrade drops the
column and the table; PostgreSQL cannot drop an enum label, so the three labels stay (unused
by the older code, harmless).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_TRIGGERS = ("data_stale", "maasp_missing", "annulus_communication")


def upgrade() -> None:
    op.add_column(
        "well",
        sa.Column(
            "data_stale_after_s",
            sa.Integer(),
            nullable=True,
            comment="no good reading this long is data_stale; None: the global default",
        ),
    )
    op.create_check_constraint(
        op.f("ck_well_data_stale_after_positive"), "well", "data_stale_after_s > 0"
    )
    op.create_table(
        "finding_state",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject", sa.String(length=100), nullable=False, comment="annulus:17"),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("episode", sa.String(length=100), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["well_id"],
            ["well.id"],
            name=op.f("fk_finding_state_well_id_well"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kind", "subject", name=op.f("pk_finding_state")),
    )
    op.create_index(op.f("ix_finding_state_well_id"), "finding_state", ["well_id"], unique=False)
    op.create_index(
        op.f("ix_alert_kind_annulus_id_ts"), "alert", ["kind", "annulus_id", "ts"], unique=False
    )
    for label in NEW_TRIGGERS:
        op.execute(f"ALTER TYPE trigger_type ADD VALUE IF NOT EXISTS '{label}'")


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_kind_annulus_id_ts"), table_name="alert")
    op.drop_index(op.f("ix_finding_state_well_id"), table_name="finding_state")
    op.drop_table("finding_state")
    op.drop_constraint(op.f("ck_well_data_stale_after_positive"), "well", type_="check")
    op.drop_column("well", "data_stale_after_s")

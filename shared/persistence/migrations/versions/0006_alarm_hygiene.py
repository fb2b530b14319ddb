"""well.commissioning and integrity_snapshot.assessed/assessment_gaps: alarm hygiene

Reviewed by hand: three NOT NULL columns with server defaults, so existing rows read as
before this revision: no well is being commissioned, and every stored snapshot counts as a
full assessment (what WIMS claimed when it wrote it). Downgrade drops the columns.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 06:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "well",
        sa.Column(
            "commissioning",
            sa.Boolean(),
            server_default=sa.text("false"),
            nullable=False,
            comment="being commissioned: the well raises no colour alerts",
        ),
    )
    op.add_column(
        "integrity_snapshot",
        sa.Column(
            "assessed",
            sa.Boolean(),
            server_default=sa.text("true"),
            nullable=False,
            comment="false: data for a full assessment missing",
        ),
    )
    op.add_column(
        "integrity_snapshot",
        sa.Column(
            "assessment_gaps",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_column("integrity_snapshot", "assessment_gaps")
    op.drop_column("integrity_snapshot", "assessed")
    op.drop_column("well", "commissioning")

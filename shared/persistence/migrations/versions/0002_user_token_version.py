"""app_user.token_version: revoke a user's tokens on password, role or activation change

Reviewed by hand: a NOT NULL integer with a server default of 0, so existing rows get 0 and
tokens issued before this revision (which carry no version claim, read as 0) stay valid
until their user changes. Downgrade drops the column (revocation falls back to deactivation
only).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 03:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "app_user",
        sa.Column("token_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("app_user", "token_version")

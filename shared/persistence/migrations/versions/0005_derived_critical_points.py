"""Deviation survey, inputs of the derived critical points, and derived points themselves

Reviewed by hand. Adds:
- ``survey_station``: a well's deviation survey (MD, inclination, azimuth), TVD by minimum
  curvature;
- the inputs the ISO/TS 16530-2 point list needs and the model lacked: wellhead and tree
  ratings (well), wear/corrosion derating, formation strength gradient at the shoe and
  liner hanger rating (casing string), packer rating, derating, least fluid gradient and
  head pressure, SSSV depth and collapse rating (tubing string), back-up fluid gradient
  (annulus);
- ``critical_point.origin`` ('manual' for every existing row, or 'derived'),
  ``derivation`` (kind, formula, inputs, source) and ``accepted_by_id``.
All columns are nullable or have a server default, so existing rows stay valid; downgrade
drops them (derived points go with their origin: they are deleted first).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 06:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_DERATING = dict(
    server_default=sa.text("0"), nullable=False, comment="wear/corrosion, % of ratings"
)


def upgrade() -> None:
    op.create_table(
        "survey_station",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("well_id", sa.Integer(), nullable=False),
        sa.Column("md_m", sa.Float(), nullable=False),
        sa.Column("inclination_deg", sa.Float(), nullable=False),
        sa.Column("azimuth_deg", sa.Float(), nullable=False),
        sa.CheckConstraint("md_m >= 0", name=op.f("ck_survey_station_md_non_negative")),
        sa.CheckConstraint(
            "inclination_deg BETWEEN 0 AND 180", name=op.f("ck_survey_station_inclination_range")
        ),
        sa.CheckConstraint(
            "azimuth_deg BETWEEN 0 AND 360", name=op.f("ck_survey_station_azimuth_range")
        ),
        sa.ForeignKeyConstraint(
            ["well_id"],
            ["well.id"],
            name=op.f("fk_survey_station_well_id_well"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_station")),
        sa.UniqueConstraint("well_id", "md_m", name=op.f("uq_survey_station_well_id_md_m")),
    )
    op.create_index(op.f("ix_survey_station_well_id"), "survey_station", ["well_id"], unique=False)
    op.add_column("well", sa.Column("wellhead_rating_bar", sa.Float(), comment="working pressure"))
    op.add_column("well", sa.Column("tree_rating_bar", sa.Float(), comment="working pressure"))
    op.add_column("casing_string", sa.Column("derating_percent", sa.Float(), **_DERATING))
    op.add_column(
        "casing_string",
        sa.Column(
            "formation_strength_gradient_bar_per_m",
            sa.Float(),
            comment="at the shoe, from a leak-off or formation-integrity test",
        ),
    )
    op.add_column(
        "casing_string", sa.Column("liner_hanger_rating_bar", sa.Float(), comment="liners only")
    )
    op.add_column(
        "tubing_string", sa.Column("packer_rating_bar", sa.Float(), comment="differential")
    )
    op.add_column("tubing_string", sa.Column("derating_percent", sa.Float(), **_DERATING))
    op.add_column(
        "tubing_string",
        sa.Column(
            "fluid_gradient_bar_per_m", sa.Float(), comment="least fluid inside (gas); None: empty"
        ),
    )
    op.add_column(
        "tubing_string", sa.Column("min_pressure_bar", sa.Float(), comment="least head pressure")
    )
    op.add_column("tubing_string", sa.Column("sssv_depth_md", sa.Float(), comment="m"))
    op.add_column("tubing_string", sa.Column("sssv_collapse_limit_bar", sa.Float()))
    op.add_column(
        "annulus",
        sa.Column(
            "backup_gradient_bar_per_m",
            sa.Float(),
            comment="behind the outer casing; None: the next annulus out's fluid",
        ),
    )
    op.add_column(
        "critical_point",
        sa.Column(
            "origin",
            sa.String(length=10),
            server_default=sa.text("'manual'"),
            nullable=False,
            comment="manual, derived",
        ),
    )
    op.add_column(
        "critical_point",
        sa.Column("derivation", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("critical_point", sa.Column("accepted_by_id", sa.Integer(), nullable=True))
    op.create_foreign_key(
        op.f("fk_critical_point_accepted_by_id_app_user"),
        "critical_point",
        "app_user",
        ["accepted_by_id"],
        ["id"],
        ondelete="SET NULL",
    )
    op.create_check_constraint(
        op.f("ck_critical_point_origin_known"), "critical_point", "origin IN ('manual', 'derived')"
    )


def downgrade() -> None:
    op.execute("DELETE FROM critical_point WHERE origin = 'derived'")
    op.drop_constraint(op.f("ck_critical_point_origin_known"), "critical_point", type_="check")
    op.drop_constraint(
        op.f("fk_critical_point_accepted_by_id_app_user"), "critical_point", type_="foreignkey"
    )
    for column in ("accepted_by_id", "derivation", "origin"):
        op.drop_column("critical_point", column)
    op.drop_column("annulus", "backup_gradient_bar_per_m")
    for column in (
        "sssv_collapse_limit_bar",
        "sssv_depth_md",
        "min_pressure_bar",
        "fluid_gradient_bar_per_m",
        "derating_percent",
        "packer_rating_bar",
    ):
        op.drop_column("tubing_string", column)
    for column in (
        "liner_hanger_rating_bar",
        "formation_strength_gradient_bar_per_m",
        "derating_percent",
    ):
        op.drop_column("casing_string", column)
    op.drop_column("well", "tree_rating_bar")
    op.drop_column("well", "wellhead_rating_bar")
    op.drop_index(op.f("ix_survey_station_well_id"), table_name="survey_station")
    op.drop_table("survey_station")

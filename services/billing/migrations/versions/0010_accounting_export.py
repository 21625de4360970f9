"""the accountant's export: listing categories kept from listing events, each commune's M57
imputations, and the record of every export

Revision ID: 0010
Revises: 0009

"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "listing_categories",
        sa.Column("listing_id", sa.String(36), primary_key=True),
        sa.Column("owner_commune", sa.String(5), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "imputations",
        sa.Column("commune", sa.String(5), primary_key=True),
        sa.Column("category", sa.String(40), primary_key=True),
        sa.Column("side", sa.String(6), primary_key=True),
        sa.Column("chapter", sa.String(3), nullable=False),
        sa.Column("account", sa.String(8), nullable=False),
        sa.Column("budget", sa.String(60), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(36), nullable=True),
    )
    op.create_table(
        "accounting_exports",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("commune", sa.String(5), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("filename", sa.String(120), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("exported_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("exported_by", sa.String(36), nullable=True),
    )
    op.create_index(
        "ix_accounting_exports_commune_period", "accounting_exports", ["commune", "period"]
    )


def downgrade() -> None:
    op.drop_index("ix_accounting_exports_commune_period", "accounting_exports")
    op.drop_table("accounting_exports")
    op.drop_table("imputations")
    op.drop_table("listing_categories")

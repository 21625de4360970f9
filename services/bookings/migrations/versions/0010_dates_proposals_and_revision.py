"""new dates proposed to the borrower when they cost it more, and the revision of a
booking's dates (its calendar invitation's SEQUENCE)

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
    op.add_column(
        "bookings",
        sa.Column("dates_revision", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_table(
        "dates_proposals",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("booking_id", sa.String(36), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", UtcDateTime(timezone=True), nullable=False),
        sa.Column("quote", sa.JSON(), nullable=False),
        sa.Column("proposed_by", sa.String(36), nullable=False),
        sa.Column("proposed_by_commune", sa.String(5), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("proposed_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("answered_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("answered_by", sa.String(36), nullable=True),
        sa.Column("answered_by_commune", sa.String(5), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
    )
    op.create_index(
        "ix_dates_proposals_booking_status", "dates_proposals", ["booking_id", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_dates_proposals_booking_status", table_name="dates_proposals")
    op.drop_table("dates_proposals")
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("dates_revision")

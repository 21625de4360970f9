"""emergency episodes, and the booking requests they make urgent

Revision ID: 0005
Revises: 0004

The bookings service owns episodes (it applies them to requests). An urgent request keeps
its declared need, its distance to the lender and, once its allocation window is decided,
whether it was granted, its place in the published order and the explanation sent.
"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "emergencies",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("territory", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", UtcDateTime(timezone=True), nullable=True),
        sa.Column("declared_by", sa.String(36), nullable=False),
        sa.Column("declared_by_commune", sa.String(5), nullable=False),
        sa.Column("declared_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_table(
        "urgent_requests",
        sa.Column("booking_id", sa.String(36), sa.ForeignKey("bookings.id"), primary_key=True),
        sa.Column("emergency_id", sa.String(36), sa.ForeignKey("emergencies.id"), nullable=False),
        sa.Column("listing_id", sa.String(36), nullable=False),
        sa.Column("need", sa.String(24), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=True),
        sa.Column("requested_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("decided_at", UtcDateTime(timezone=True), nullable=True),
        sa.Column("granted", sa.Boolean(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=False),
    )
    op.create_index("ix_urgent_requests_emergency_id", "urgent_requests", ["emergency_id"])
    op.create_index(
        "ix_urgent_requests_undecided", "urgent_requests", ["decided_at", "listing_id"]
    )


def downgrade() -> None:
    op.drop_table("urgent_requests")
    op.drop_table("emergencies")

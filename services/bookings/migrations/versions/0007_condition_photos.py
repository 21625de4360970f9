"""photos of a loan's condition at hand-over and return

Revision ID: 0007
Revises: 0006

"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "condition_photos",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("booking_id", sa.String(36), sa.ForeignKey("bookings.id"), nullable=False),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("thumbnail_key", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(36), nullable=False),
        sa.Column("added_by_commune", sa.String(5), nullable=False),
        sa.Column("added_at", UtcDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("booking_id", "stage", "digest", name="uq_condition_photos_digest"),
    )
    op.create_index("ix_condition_photos_booking_id", "condition_photos", ["booking_id"])


def downgrade() -> None:
    op.drop_index("ix_condition_photos_booking_id", table_name="condition_photos")
    op.drop_table("condition_photos")

"""listings name a contact and a pick-up address and instructions, and show photos

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
    op.add_column("listings", sa.Column("contact", sa.JSON(), nullable=True))
    op.add_column(
        "listings", sa.Column("pickup_address", sa.Text(), nullable=False, server_default="")
    )
    op.add_column(
        "listings",
        sa.Column("pickup_instructions", sa.Text(), nullable=False, server_default=""),
    )
    op.create_table(
        "listing_photos",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("listing_id", sa.String(36), sa.ForeignKey("listings.id"), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("thumbnail_key", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(20), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(36), nullable=False),
        sa.Column("added_at", UtcDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("listing_id", "digest", name="uq_listing_photos_digest"),
    )
    op.create_index("ix_listing_photos_listing_id", "listing_photos", ["listing_id"])


def downgrade() -> None:
    op.drop_index("ix_listing_photos_listing_id", table_name="listing_photos")
    op.drop_table("listing_photos")
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("pickup_instructions")
        batch.drop_column("pickup_address")
        batch.drop_column("contact")

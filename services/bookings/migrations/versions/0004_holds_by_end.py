"""the holds of a listing are found by when they end, not by when they start

Revision ID: 0004
Revises: 0003

A request looks for the bookings holding its listing that end after it starts and start
before it ends. Ordered by start, the index made that read every past booking of the
listing (all start before a new request ends); ordered by end, it reads those that end
after the request starts: the ones that matter, however long the history.
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_listing_status_period")
        batch_op.create_index(
            "ix_bookings_listing_status_end", ["listing_id", "status", "end", "start"]
        )


def downgrade() -> None:
    with op.batch_alter_table("bookings", schema=None) as batch_op:
        batch_op.drop_index("ix_bookings_listing_status_end")
        batch_op.create_index(
            "ix_bookings_listing_status_period", ["listing_id", "status", "start", "end"]
        )

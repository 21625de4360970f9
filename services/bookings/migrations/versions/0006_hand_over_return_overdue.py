"""bookings keep when they expire undecided, their actual hand-over and return, and whether
their overdue was announced

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("decide_by", "checked_out_at", "returned_at", "overdue_sent_at")


def upgrade() -> None:
    for name in COLUMNS:
        op.add_column("bookings", sa.Column(name, UtcDateTime(timezone=True), nullable=True))
    # requests made before: they expire at their start, as they did when made
    op.execute(
        """UPDATE bookings SET decide_by = "start" WHERE status IN ('requested', 'waiting')"""
    )
    op.drop_index("ix_bookings_status_start", table_name="bookings")
    op.create_index("ix_bookings_status_decide_by", "bookings", ["status", "decide_by"])


def downgrade() -> None:
    op.drop_index("ix_bookings_status_decide_by", table_name="bookings")
    op.create_index("ix_bookings_status_start", "bookings", ["status", "start"])
    with op.batch_alter_table("bookings") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)

"""timesheets keep why work was exceptional and why they were rejected; requests expire

Revision ID: 0003
Revises: 0002

A timesheet on a weekend or a public holiday carries the reason of that exceptional work; a
rejected one, the borrower's reason, who and when (kept once corrected). The expiry timer
finds the requests left undecided by status and age.
"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("timesheets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("exceptional_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rejection_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("rejected_by", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("rejected_at", infra.types.UtcDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("engagements", schema=None) as batch_op:
        batch_op.create_index("ix_engagements_status_created", ["status", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("engagements", schema=None) as batch_op:
        batch_op.drop_index("ix_engagements_status_created")
    with op.batch_alter_table("timesheets", schema=None) as batch_op:
        batch_op.drop_column("rejected_at")
        batch_op.drop_column("rejected_by")
        batch_op.drop_column("rejection_reason")
        batch_op.drop_column("exceptional_reason")

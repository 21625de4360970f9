"""a booking's state and period kept, for the reminder the day before its hand-over

Revision ID: 0004
Revises: 0003

"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("start", infra.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("end", infra.types.UtcDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("requested_by", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_subjects_status_start", ["status", "start"])


def downgrade() -> None:
    with op.batch_alter_table("subjects", schema=None) as batch_op:
        batch_op.drop_index("ix_subjects_status_start")
        batch_op.drop_column("requested_by")
        batch_op.drop_column("end")
        batch_op.drop_column("start")
        batch_op.drop_column("status")

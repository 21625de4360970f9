"""users can be disabled; failed logins are counted

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("disabled_at", infra.types.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "login_failures",
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", infra.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key"),
    )


def downgrade() -> None:
    op.drop_table("login_failures")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("disabled_at")

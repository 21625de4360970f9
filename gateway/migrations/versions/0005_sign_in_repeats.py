"""users: which pending sign-in a code last completed, and when (a double click on the code's
form signs that same browser in again instead of refusing the code as used)

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_sign_in_proof", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("last_sign_in_at", infra.types.UtcDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("last_sign_in_at")
        batch_op.drop_column("last_sign_in_proof")

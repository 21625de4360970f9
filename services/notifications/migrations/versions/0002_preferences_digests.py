"""preferences per person and kind; mails that wait for the daily digest

Revision ID: 0002
Revises: 0001

"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preferences",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("digest_hour", sa.Integer(), nullable=False),
        sa.Column("changed_at", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind"),
    )
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("digest", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("mails", schema=None) as batch_op:
        batch_op.drop_column("digest")
    op.drop_table("preferences")

"""conversations: the bookings and engagements known (their two communes), their messages,
and each commune's read receipt

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
    op.create_table(
        "subjects",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("lender_commune", sa.String(length=5), nullable=False),
        sa.Column("borrower_commune", sa.String(length=5), nullable=False),
        sa.Column("as_of", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id"),
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("author_id", sa.String(length=36), nullable=False),
        sa.Column("author_commune", sa.String(length=5), nullable=False),
        sa.Column("author_name", sa.String(length=200), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("posted_at", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_subject_posted", ["subject_id", "posted_at"])
    op.create_table(
        "read_receipts",
        sa.Column("subject_id", sa.String(length=36), nullable=False),
        sa.Column("commune", sa.String(length=5), nullable=False),
        sa.Column("read_up_to", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("subject_id", "commune"),
    )


def downgrade() -> None:
    op.drop_table("read_receipts")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_subject_posted")
    op.drop_table("messages")
    op.drop_table("subjects")

"""engagements record the official's consent; a copy of the agreements between communes

Revision ID: 0004
Revises: 0003

Accepting an engagement records the lent official's consent (when given, how, who recorded
it). The agreements table is the consultants' copy of the agreements owned by bookings,
kept from the agreement.* events: which one in force covers an engagement's staff.
"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("engagements", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_given_on", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("consent_note", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("consent_recorded_by", sa.String(length=36), nullable=True))
        batch_op.add_column(
            sa.Column("consent_recorded_at", infra.types.UtcDateTime(timezone=True), nullable=True)
        )
    op.create_table(
        "agreements",
        sa.Column("agreement_id", sa.String(length=64), nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("parties", sa.JSON(), nullable=False),
        sa.Column("covers_staff", sa.Boolean(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("was_in_force", sa.Boolean(), nullable=False),
        sa.Column("as_of", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("agreement_id"),
    )


def downgrade() -> None:
    op.drop_table("agreements")
    with op.batch_alter_table("engagements", schema=None) as batch_op:
        batch_op.drop_column("consent_recorded_at")
        batch_op.drop_column("consent_recorded_by")
        batch_op.drop_column("consent_note")
        batch_op.drop_column("consent_given_on")

"""listings may be handed over the day before, and charge a late fee per day

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "listings",
        sa.Column("early_pickup", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column(
        "listings",
        sa.Column("late_fee_per_day_cents", sa.Integer(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("listings") as batch:
        batch.drop_column("late_fee_per_day_cents")
        batch.drop_column("early_pickup")

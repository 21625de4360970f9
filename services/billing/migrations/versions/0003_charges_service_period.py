"""each charge carries the period of the service it charges (a loan's hand-over to return)

Revision ID: 0003
Revises: 0002

"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charges", sa.Column("service_start", sa.Date(), nullable=True))
    op.add_column("charges", sa.Column("service_end", sa.Date(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charges") as batch:
        batch.drop_column("service_end")
        batch.drop_column("service_start")

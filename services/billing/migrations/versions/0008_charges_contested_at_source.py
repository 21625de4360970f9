"""a charge keeps the customer's reserve stated at its source (a damage contested at the
return): the invoice that lists it opens a dispute on its line

Revision ID: 0008
Revises: 0007

"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charges", sa.Column("contest", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("charges") as batch:
        batch.drop_column("contest")

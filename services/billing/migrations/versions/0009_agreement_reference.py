"""charges and invoices keep the agreement between the two communes (BT-12); a charge keeps
the listing it lends, whose category chooses its M57 imputation

Revision ID: 0009
Revises: 0008

"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("charges", sa.Column("agreement_reference", sa.String(50), nullable=True))
    op.add_column("charges", sa.Column("listing_id", sa.String(36), nullable=True))
    op.add_column("invoices", sa.Column("agreement_reference", sa.String(50), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("agreement_reference")
    with op.batch_alter_table("charges") as batch:
        batch.drop_column("listing_id")
        batch.drop_column("agreement_reference")

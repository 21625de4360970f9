"""a billing profile says whether charges under different engagement numbers go on separate
invoices (the default) or on one (a buyer that requires no engagement number)

Revision ID: 0007
Revises: 0006

"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "billing_profiles",
        sa.Column(
            "one_invoice_per_reference", sa.Boolean(), nullable=False, server_default=sa.true()
        ),
    )


def downgrade() -> None:
    with op.batch_alter_table("billing_profiles") as batch:
        batch.drop_column("one_invoice_per_reference")

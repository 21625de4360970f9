"""payments are reversed, never deleted; an overpayment is recorded as such; the customer's
payment order (mandat) on the invoice it pays

Revision ID: 0004
Revises: 0003

"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(
            sa.Column("overpayment", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("reversed_at", infra.types.UtcDateTime(), nullable=True))
        batch.add_column(sa.Column("reversed_by", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("reversal_reason", sa.Text(), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("payment_order_number", sa.String(length=50), nullable=True))
        batch.add_column(sa.Column("payment_order_date", sa.Date(), nullable=True))
        batch.add_column(
            sa.Column("payment_order_recorded_at", infra.types.UtcDateTime(), nullable=True)
        )
        batch.add_column(
            sa.Column("payment_order_recorded_by", sa.String(length=36), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        for column in (
            "payment_order_recorded_by",
            "payment_order_recorded_at",
            "payment_order_date",
            "payment_order_number",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("payments") as batch:
        for column in ("reversal_reason", "reversed_by", "reversed_at", "overpayment"):
            batch.drop_column(column)

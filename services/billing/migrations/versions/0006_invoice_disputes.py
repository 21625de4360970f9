"""a customer contests an invoice line; the supplier answers with a credit note or a
reasoned rejection

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "invoice_disputes",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("invoice_id", sa.String(length=36), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("opened_at", infra.types.UtcDateTime(), nullable=False),
        sa.Column("opened_by", sa.String(length=36), nullable=True),
        sa.Column("resolved_at", infra.types.UtcDateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(length=36), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
        sa.Column("credit_note_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
    )
    op.create_index("ix_invoice_disputes_invoice_id", "invoice_disputes", ["invoice_id"])


def downgrade() -> None:
    op.drop_index("ix_invoice_disputes_invoice_id", "invoice_disputes")
    op.drop_table("invoice_disputes")

"""a netting is a proposal every party accepts; its transfers become obligations tracked
until paid

Revision ID: 0005
Revises: 0004

"""

import sqlalchemy as sa
from alembic import op

import infra.types

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "netting_proposals",
        sa.Column("id", sa.String(length=36), primary_key=True),
        sa.Column("period", sa.String(length=7), nullable=True),
        sa.Column("up_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column("positions", sa.JSON(), nullable=False),
        sa.Column("transfers", sa.JSON(), nullable=False),
        sa.Column("invoices", sa.Integer(), nullable=False),
        sa.Column("compensated_cents", sa.BigInteger(), nullable=False),
        sa.Column("proposed_at", infra.types.UtcDateTime(), nullable=False),
        sa.Column("proposed_by", sa.String(length=36), nullable=True),
        sa.Column("proposed_by_commune", sa.String(length=5), nullable=False),
        sa.Column("closed_at", infra.types.UtcDateTime(), nullable=True),
        sa.Column("closing_reason", sa.Text(), nullable=True),
        sa.Column("settlement_id", sa.String(length=36), nullable=True),
    )
    op.create_table(
        "netting_parties",
        sa.Column("proposal_id", sa.String(length=36), primary_key=True),
        sa.Column("commune", sa.String(length=5), primary_key=True),
        sa.Column("decision", sa.String(length=10), nullable=False),
        sa.Column("decided_at", infra.types.UtcDateTime(), nullable=True),
        sa.Column("decided_by", sa.String(length=36), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["proposal_id"], ["netting_proposals.id"]),
    )
    op.create_index("ix_netting_parties_commune", "netting_parties", ["commune"])
    op.create_table(
        "netting_invoices",
        sa.Column("proposal_id", sa.String(length=36), primary_key=True),
        sa.Column("invoice_id", sa.String(length=36), primary_key=True),
        sa.Column("open_cents", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_netting_invoices_invoice_id", "netting_invoices", ["invoice_id"])
    with op.batch_alter_table("settlements") as batch:
        batch.add_column(sa.Column("proposal_id", sa.String(length=36), nullable=True))
    with op.batch_alter_table("settlement_transfers") as batch:
        batch.add_column(sa.Column("due_date", sa.Date(), nullable=True))
        batch.add_column(sa.Column("paid_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("paid_reference", sa.String(length=140), nullable=True))
        batch.add_column(sa.Column("paid_recorded_by", sa.String(length=36), nullable=True))
        batch.add_column(sa.Column("statement_line_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("settlement_transfers") as batch:
        for column in (
            "statement_line_id",
            "paid_recorded_by",
            "paid_reference",
            "paid_on",
            "due_date",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("settlements") as batch:
        batch.drop_column("proposal_id")
    op.drop_index("ix_netting_invoices_invoice_id", "netting_invoices")
    op.drop_table("netting_invoices")
    op.drop_index("ix_netting_parties_commune", "netting_parties")
    op.drop_table("netting_parties")
    op.drop_table("netting_proposals")

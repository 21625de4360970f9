"""agreements between communes, their parties' signatures, council decisions, the lenders'
agreement policy, and the agreement covering each booking

Revision ID: 0008
Revises: 0007

Agreements live with bookings, the owner of the loans they cover (docs/architecture.md).
"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agreements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("reference", sa.String(40), nullable=False, unique=True),
        sa.Column("initiator_commune", sa.String(5), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("covers_staff", sa.Boolean(), nullable=False),
        sa.Column("tariff", sa.String(32), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("insurance", sa.Text(), nullable=False),
        sa.Column("disputes", sa.Text(), nullable=False),
        sa.Column("one_off_booking_id", sa.String(36), nullable=True),
        sa.Column("signed_scan", sa.LargeBinary(), nullable=True),
        sa.Column("has_signed_scan", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(36), nullable=False),
        sa.Column("created_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", UtcDateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_agreements_status", "agreements", ["status"])
    op.create_index("ix_agreements_initiator_year", "agreements", ["initiator_commune", "year"])
    op.create_table(
        "agreement_parties",
        sa.Column(
            "agreement_id", sa.String(36), sa.ForeignKey("agreements.id"), primary_key=True
        ),
        sa.Column("commune", sa.String(5), primary_key=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(36), nullable=True),
        sa.Column("signatory", sa.String(200), nullable=True),
        sa.Column("signed_on", sa.Date(), nullable=True),
        sa.Column("signed_by", sa.String(36), nullable=True),
    )
    op.create_index("ix_agreement_parties_commune", "agreement_parties", ["commune"])
    op.create_table(
        "council_decisions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("commune", sa.String(5), nullable=False),
        sa.Column("number", sa.String(50), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("agreement_ids", sa.JSON(), nullable=False),
        sa.Column("approves_tariffs", sa.Boolean(), nullable=False),
        sa.Column("authorises_mayor", sa.Boolean(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("has_pdf", sa.Boolean(), nullable=False),
        sa.Column("recorded_by", sa.String(36), nullable=False),
        sa.Column("recorded_at", UtcDateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("commune", "number", name="uq_council_decisions_number"),
    )
    op.create_index("ix_council_decisions_commune", "council_decisions", ["commune"])
    op.create_table(
        "agreement_policies",
        sa.Column("commune", sa.String(5), primary_key=True),
        sa.Column("requires_agreement", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(36), nullable=False),
        sa.Column("updated_at", UtcDateTime(timezone=True), nullable=False),
    )
    op.add_column("bookings", sa.Column("agreement_reference", sa.String(40), nullable=True))
    op.add_column(
        "bookings",
        sa.Column("agreement_held", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    with op.batch_alter_table("bookings") as batch:
        batch.drop_column("agreement_held")
        batch.drop_column("agreement_reference")
    op.drop_table("agreement_policies")
    op.drop_table("council_decisions")
    op.drop_table("agreement_parties")
    op.drop_table("agreements")

"""Catalogue changes counted in a few rows: the matching index's check before each match
reads them instead of summing every consultant's revision

Revision ID: 0006
Revises: 0005

"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SHARDS = 16  # models.CATALOGUE_SHARDS when written


def upgrade() -> None:
    table = op.create_table(
        "catalogue_changes",
        sa.Column("shard", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("changes", sa.BigInteger(), nullable=False),
    )
    # the consultants already there count as changes, so that the sum starts where the old
    # check (count and revisions) stood
    op.bulk_insert(table, [{"shard": n, "changes": 0} for n in range(SHARDS)])
    op.execute(
        "UPDATE catalogue_changes SET changes = "
        "(SELECT count(*) + coalesce(sum(revision), 0) FROM consultants) WHERE shard = 0"
    )


def downgrade() -> None:
    op.drop_table("catalogue_changes")

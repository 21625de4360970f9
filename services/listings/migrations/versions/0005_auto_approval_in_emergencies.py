"""a listing may be approved automatically during emergencies, and listings keep episodes

Revision ID: 0005
Revises: 0004

`auto_approve_in_emergencies`: a manager's term (false for every listing so far) letting the
allocation of urgent requests approve the ones it grants. `emergencies`: listings' copy of
the episodes the bookings service declares, so that search can put what is free now first
for a searcher in an episode's territory.
"""

import sqlalchemy as sa
from alembic import op

from infra.types import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "auto_approve_in_emergencies",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
    op.create_table(
        "emergencies",
        sa.Column("emergency_id", sa.String(36), primary_key=True),
        sa.Column("snapshot", sa.JSON(), nullable=False),
        sa.Column("start", UtcDateTime(timezone=True), nullable=False),
        sa.Column("end", UtcDateTime(timezone=True), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("emergencies")
    with op.batch_alter_table("listings", schema=None) as batch_op:
        batch_op.drop_column("auto_approve_in_emergencies")

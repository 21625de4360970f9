"""second factor: users' TOTP secret and last step, recovery codes, communes' rules

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
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("totp_secret", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("totp_enrolled_at", infra.types.UtcDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("totp_last_step", sa.Integer(), nullable=True))
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("selector", sa.String(length=8), nullable=False),
        sa.Column("code_hash", sa.String(length=200), nullable=False),
        sa.Column("used_at", infra.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("user_id", "selector", name="uq_recovery_user_selector"),
    )
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_codes_user_id"), ["user_id"], unique=False)
    op.create_table(
        "commune_policies",
        sa.Column("commune", sa.String(length=5), nullable=False),
        sa.Column("finance_second_factor", sa.Boolean(), nullable=False),
        sa.Column("changed_at", infra.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("commune"),
    )
    # operators now need a second factor, which none has yet: their open web sessions end
    # (their API tokens expire within the hour), and their next sign-in starts enrolment
    op.execute(
        "DELETE FROM web_sessions WHERE user_id IN "
        "(SELECT id FROM users WHERE roles LIKE '%operator%')"
    )


def downgrade() -> None:
    op.drop_table("commune_policies")
    with op.batch_alter_table("recovery_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_codes_user_id"))
    op.drop_table("recovery_codes")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("totp_last_step")
        batch_op.drop_column("totp_enrolled_at")
        batch_op.drop_column("totp_secret")

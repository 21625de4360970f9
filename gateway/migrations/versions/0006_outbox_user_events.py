"""the gateway's outbox: users are announced (user.created/updated/disabled); every user
already there is announced once, so that a service that learns users from these events
knows those created before

Revision ID: 0006
Revises: 0005

"""

from alembic import op

from infra.migrations import add_messaging_tables, drop_messaging_tables

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_messaging_tables()
    from gateway.user_events import announce_existing_users

    announce_existing_users(op.get_bind())


def downgrade() -> None:
    drop_messaging_tables()

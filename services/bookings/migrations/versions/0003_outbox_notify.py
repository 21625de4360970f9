"""the relay is notified of each commit with outbox rows (PostgreSQL LISTEN/NOTIFY)

Revision ID: 0003
Revises: 0002

"""

from infra.migrations import add_outbox_notify, drop_outbox_notify

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    add_outbox_notify()


def downgrade() -> None:
    drop_outbox_notify()

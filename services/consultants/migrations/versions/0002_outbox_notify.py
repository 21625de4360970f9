"""the relay is notified of each commit with outbox rows (PostgreSQL LISTEN/NOTIFY)

Revision ID: 0002
Revises: 0001

"""

# the same step in every service's history, written once in infra.migrations
from infra.migrations import add_outbox_notify as upgrade  # noqa: F401
from infra.migrations import drop_outbox_notify as downgrade  # noqa: F401

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


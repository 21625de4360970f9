"""RPC requests applied once: each request id recorded with its effect, and its reply

Revision ID: 0009
Revises: 0008

"""

# the same step in every service's history, written once in infra.migrations
from infra.migrations import add_rpc_requests as upgrade  # noqa: F401
from infra.migrations import drop_rpc_requests as downgrade  # noqa: F401

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

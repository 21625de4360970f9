"""nearest-neighbour index for search by distance (PostgreSQL)

Revision ID: 0003
Revises: 0002

"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# must be the very expression services/listings/repository.py orders by
EXPRESSION = "point(longitude * 0.69, latitude)"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_listings_knn ON listings USING gist (({EXPRESSION}))")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_listings_knn")

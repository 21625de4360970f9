"""the listings at one point by id, for search's ties of distance

Revision ID: 0009
Revises: 0008

"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a page's last distance is often a commune's point shared by thousands of listings:
    # repository.nearest_page_statement reads the few it needs from here, by id
    op.create_index("ix_listings_point_id", "listings", ["latitude", "longitude", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # a latitude goes with one longitude (a commune's point): without this the planner
        # multiplies their selectivities, expects a few rows at a point where thousands lie
        # and sorts them all instead of reading the index in order
        op.execute(
            "CREATE STATISTICS st_listings_point (dependencies, mcv) "
            "ON latitude, longitude FROM listings"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP STATISTICS st_listings_point")
    op.drop_index("ix_listings_point_id", table_name="listings")

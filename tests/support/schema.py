"""Whether a migrated database is what the code's tables say."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine


def differences(url: str, *metadatas) -> list:
    """What Alembic's autogenerate would still add or drop between the database at `url` and
    the tables of `metadatas` (empty: the migrations build exactly the models)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, list(metadatas))
    engine.dispose()
    return found

"""Alembic environment of the listings database."""

from infra.migrations import run_migrations
from services.listings.models import metadata

run_migrations(metadata)

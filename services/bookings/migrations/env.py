"""Alembic environment of the bookings database."""

from infra.migrations import run_migrations
from services.bookings.models import metadata

run_migrations(metadata)

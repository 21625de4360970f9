"""Alembic environment of the notifications database."""

from infra.migrations import run_migrations
from services.notifications.models import metadata

run_migrations(metadata)

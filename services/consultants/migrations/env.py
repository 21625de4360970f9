"""Alembic environment of the consultants database."""

from infra.migrations import run_migrations
from services.consultants.models import metadata

run_migrations(metadata)

"""Alembic environment of the gateway database."""

from gateway.models import metadata
from infra.migrations import run_migrations

run_migrations(metadata)

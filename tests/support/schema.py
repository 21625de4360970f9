"""Migrated databases for the tests, and whether a migrated database is what the code's
tables say."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from infra.migrations import upgrade

_templates: dict[str, Path] = {}  # component → a SQLite file migrated to head


def migrated(component: str, url: str) -> None:
    """The component's schema at head in the fresh database at `url`, as `upgrade` makes it.
    A new SQLite file is a copy of one migrated once per component and process: the
    migrations' DDL, a file sync at a time, cost a few tenths of a second a test. PostgreSQL
    is migrated (a copy of a database is no quicker), and so is a file already there."""
    path = Path(url.removeprefix("sqlite:///"))
    if not url.startswith("sqlite:///") or path.exists():
        upgrade(component, url)
        return
    if component not in _templates:
        workdir = tempfile.mkdtemp(prefix=f"mutualis-schema-{component}-")
        atexit.register(shutil.rmtree, workdir, ignore_errors=True)
        template = Path(workdir) / f"{component}.sqlite3"
        upgrade(component, f"sqlite:///{template}")
        _templates[component] = template
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_templates[component], path)


def differences(url: str, *metadatas) -> list:
    """What Alembic's autogenerate would still add or drop between the database at `url` and
    the tables of `metadatas` (empty: the migrations build exactly the models)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, list(metadatas))
    engine.dispose()
    return found

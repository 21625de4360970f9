"""Migrated databases for the tests, and whether a migrated database is what the code's
tables say."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import uuid
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import NullPool, create_engine, text

from infra.database import _engines
from infra.migrations import upgrade
from tests.support.stack import PostgresDatabase

_templates: dict[str, Path] = {}  # component → a SQLite file migrated to head
_pg_templates: dict[str, PostgresDatabase] = {}  # component → a database migrated to head


def migrated(component: str, url: str) -> None:
    """The component's schema at head in the fresh database at `url`, as `upgrade` makes it.
    A new SQLite file is a copy of one migrated once per component and process: the
    migrations' DDL, a file sync at a time, cost a few tenths of a second a test. An empty
    PostgreSQL database is made again as a copy of one migrated once per component and
    process (`CREATE DATABASE … TEMPLATE`, a third of a second where the migrations take a
    second or more). A file or a database with tables already is migrated."""
    if url.startswith("postgresql") and not has_tables(url):
        copied_from_template(component, url)
        return
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


def has_tables(url: str) -> bool:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        found = conn.scalar(
            text("SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname = 'public')")
        )
    engine.dispose()
    return found


def copied_from_template(component: str, url: str) -> None:
    """The empty database at `url` made again as a copy of the component's template, which
    is migrated the first time (and dropped when the process exits)."""
    if component not in _pg_templates:
        template = PostgresDatabase(f"mutualis_schema_{component}_{uuid.uuid4().hex[:6]}")
        atexit.register(template.drop)
        upgrade(component, template.url)
        idle = _engines.pop(template.url, None)  # a template is copied only with no connection
        if idle is not None:
            idle.dispose()
        _pg_templates[component] = template
    engine = _engines.pop(url, None)  # its connections end with the database
    if engine is not None:
        engine.dispose()
    PostgresDatabase(url.rsplit("/", 1)[1], template=_pg_templates[component].name)


def differences(url: str, *metadatas) -> list:
    """What Alembic's autogenerate would still add or drop between the database at `url` and
    the tables of `metadatas` (empty: the migrations build exactly the models)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        found = compare_metadata(context, list(metadatas))
    engine.dispose()
    return found

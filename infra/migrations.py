"""Alembic, one history per component: `upgrade("listings", url)`; tests migrate this way too."""

from __future__ import annotations

from pathlib import Path

from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, pool

from infra.messaging_tables import OUTBOX_NOTIFY, OUTBOX_NOTIFY_DROP, requests_metadata
from infra.messaging_tables import metadata as messaging_metadata
from infra.settings import PROJECT_ROOT


def migrations_dir(component: str) -> Path:
    if component == "gateway":
        return PROJECT_ROOT / "gateway" / "migrations"
    return PROJECT_ROOT / "services" / component / "migrations"


def alembic_config(component: str, url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(component)))
    config.attributes["url"] = url
    return config


def upgrade(component: str, url: str, revision: str = "head") -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(component, url), revision)


def run_migrations(target_metadata: MetaData, with_messaging: bool = True) -> None:
    """Body of each component's migrations/env.py (online mode only)."""
    url = context.config.attributes["url"]
    engine = create_engine(url, poolclass=pool.NullPool)
    targets = [target_metadata, messaging_metadata] if with_messaging else [target_metadata]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=targets,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


def add_outbox_notify() -> None:
    """In a migration: PostgreSQL notifies the relay of each commit with outbox rows."""
    if op.get_bind().dialect.name == "postgresql":
        for statement in OUTBOX_NOTIFY:
            op.execute(statement)


def drop_outbox_notify() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for statement in OUTBOX_NOTIFY_DROP:
            op.execute(statement)


def add_messaging_tables() -> None:
    """In a migration: the outbox and processed_events tables (infra.messaging_tables), and
    the relay's notice of commits, for a component that had none."""
    messaging_metadata.create_all(op.get_bind())
    add_outbox_notify()


def drop_messaging_tables() -> None:
    drop_outbox_notify()
    messaging_metadata.drop_all(op.get_bind())


def add_rpc_requests() -> None:
    """In a migration: the table of RPC requests applied once (infra.exactly_once)."""
    requests_metadata.create_all(op.get_bind())


def drop_rpc_requests() -> None:
    requests_metadata.drop_all(op.get_bind())

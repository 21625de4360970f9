"""Users announced to the other services through the gateway's outbox (contracts.users):
the event of each change commits with the change, and the gateway relay publishes it."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select
from sqlalchemy.engine import Engine

from contracts.caller import Role
from contracts.users import UserCreated, UserDisabled, UserSnapshot
from gateway.models import User
from infra.database import DatabaseAccess, outbox_row
from infra.messaging_tables import outbox

PRODUCER = "gateway"


def snapshot_of(user) -> UserSnapshot:
    """What other services may know of a user (never the password hash nor the TOTP)."""
    return UserSnapshot(
        user_id=user.id,
        email=user.email,
        name=user.name,
        commune=user.commune,
        roles=[Role(r) for r in user.roles.split(",") if r],
        disabled=user.disabled_at is not None,
    )


def users_database(engine: Engine) -> DatabaseAccess:
    """Transactions on the gateway database whose `tx.emit` writes the gateway's outbox."""
    return DatabaseAccess(engine, producer=PRODUCER, correlation_id=None, consumer="gateway.users")


def announce_existing_users(connection: Connection) -> int:
    """In the migration that gives the gateway its outbox: one user.created (user.disabled for
    a disabled one) per user already there, so that nobody created before is unknown."""
    users = connection.execute(select(User.__table__)).all()
    rows = [
        outbox_row(
            (UserDisabled if user.disabled_at is not None else UserCreated).new(
                snapshot_of(user), producer=PRODUCER, correlation_id="migration"
            )
        )
        for user in users
    ]
    if rows:
        connection.execute(insert(outbox), rows)
    return len(rows)

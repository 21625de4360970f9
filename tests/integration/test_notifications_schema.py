"""The notifications database and the gateway's new outbox, migrated, are what the code's
tables say (nothing autogenerate would still add or drop); and users created before the
gateway had an outbox are announced once by that migration."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, insert, select

from contracts import clock
from contracts.events import parse_event
from gateway.models import User
from gateway.models import metadata as gateway_metadata
from infra.messaging_tables import metadata as messaging_metadata
from infra.messaging_tables import outbox, requests_metadata
from infra.migrations import upgrade
from services.notifications.models import metadata as notifications_metadata
from tests.support.schema import differences


def test_the_notifications_schema_is_the_models(database_url):
    upgrade("notifications", database_url)
    assert (
        differences(database_url, notifications_metadata, messaging_metadata, requests_metadata)
        == []
    )


def test_the_gateway_outbox_announces_the_users_already_there(database_url):
    upgrade("gateway", database_url, "0004")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        for n, disabled in ((1, None), (2, clock.now())):
            conn.execute(
                insert(User.__table__).values(
                    id=f"u-{n}",
                    email=f"u{n}@example.fr",
                    name=f"Personne {n}",
                    password_hash="x",
                    commune="42095",
                    roles="agent,manager",
                    created_at=clock.now(),
                    disabled_at=disabled,
                )
            )
    upgrade("gateway", database_url)
    with engine.connect() as conn:
        events = [
            parse_event(json.loads(row.body)) for row in conn.execute(select(outbox).order_by("id"))
        ]
    engine.dispose()
    assert [(e.type, e.payload.user_id, e.payload.disabled) for e in events] == [
        ("user.created", "u-1", False),
        ("user.disabled", "u-2", True),
    ]
    assert events[0].payload.roles == ["agent", "manager"] and events[0].producer == "gateway"
    assert differences(database_url, gateway_metadata, messaging_metadata) == []

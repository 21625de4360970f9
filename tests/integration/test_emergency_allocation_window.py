"""An allocation window decided on a migrated bookings database, on both backends: three
urgent requests for a listing's two units, the timer run by two workers at once (two
replicas), each request decided once, by need, and told why."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import eventlet
from nameko.testing.services import worker_factory
from sqlalchemy import func, select, update

from contracts.bookings import BookingRequest
from contracts.caller import Caller, Role
from contracts.emergencies import EmergencyDeclaration, Territory
from contracts.listings import ListingSnapshot
from infra.database import DatabaseAccess, make_engine
from infra.messaging_tables import outbox
from services.bookings import emergency_repository, repository
from services.bookings.dependencies import EPISODES
from services.bookings.models import BookingRow, TransitionRow
from services.bookings.service import Ask, Service, decide_requests
from tests.support.schema import migrated

OPERATOR = Caller(user_id="op", commune="42218", roles=frozenset({Role.OPERATOR}))
NOW = datetime.now(UTC)


def plough() -> ListingSnapshot:
    return ListingSnapshot(
        listing_id="plough",
        owner_commune="42044",
        status="published",
        revision=1,
        title="Chasse-neige",
        category="deneigement",
        kind="vehicle",
        pricing_unit="hour",
        rate_cents=5000,
        quantity=2,
        lead_time_days=2,  # waived for urgent requests
        late_cancellation_fee_cents=5000,  # inside 2 days of its start
        cancellation_notice_days=2,
        auto_approve_in_emergencies=True,
    )


def urgent_ask(commune: str, need: str) -> Ask:
    start = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=2)
    request = BookingRequest(
        listing_id="plough", start=start, end=start + timedelta(hours=3), need=need
    )
    who = Caller(user_id=f"u-{commune}", commune=commune, roles=frozenset({Role.AGENT}))
    return Ask(who, request, datetime.now(UTC), correlation_id=None)


def in_an_episode(database_url: str):
    """A migrated bookings database knowing the plough, during an episode over the Loire."""
    migrated("bookings", database_url)
    engine = make_engine(database_url)
    db = DatabaseAccess(engine, "bookings", None, "bookings.test")
    with db.transaction() as tx:
        repository.keep_listing_copies(tx.session, [plough()])
        declared = EmergencyDeclaration(
            name="Épisode neigeux Loire",
            territory=Territory(departments=["42"]),
            categories=["deneigement"],
            start=NOW - timedelta(minutes=5),
            end=NOW + timedelta(days=1),
        )
        emergency_repository.add_emergency(tx.session, OPERATOR, declared, NOW)
    EPISODES.forget()
    return engine, db


def test_a_window_is_decided_once_by_need_even_by_two_replicas(database_url):
    engine, db = in_an_episode(database_url)

    outcomes = decide_requests(
        db,
        [
            urgent_ask("42218", "comfort"),
            urgent_ask("42095", "safety_of_people"),
            urgent_ask("42189", "main_roads"),
        ],
    )
    assert [o["status"] for o in outcomes] == ["requested"] * 3  # none raced, none refused
    assert all(o["urgency"]["need"] for o in outcomes)

    settings = SimpleNamespace(allocation_window_seconds=0.5)
    eventlet.sleep(0.6)  # the window closes
    replicas = [
        worker_factory(Service, db=db, config={"SERVICE_SETTINGS": settings}) for _ in range(2)
    ]
    pile = eventlet.GreenPile(2)
    for replica in replicas:
        pile.spawn(replica.allocate_urgent_requests)
    list(pile)

    with engine.connect() as conn:
        status = dict(conn.execute(select(BookingRow.borrower_commune, BookingRow.status)).all())
        transitions = conn.scalar(select(func.count()).select_from(TransitionRow))
        events = sorted(conn.scalars(select(outbox.c.routing_key)))
    assert status == {"42095": "approved", "42189": "approved", "42218": "rejected"}
    assert transitions == 6  # requested, then one decision each: not two
    assert events == ["booking.approved"] * 2 + ["booking.rejected"] + ["booking.requested"] * 3
    with db.reading() as session:
        told = emergency_repository.urgencies_of(session, [o["id"] for o in outcomes])
    assert told[outcomes[0]["id"]].explanation.startswith("refusée : les 2 ")
    assert told[outcomes[1]["id"]].position == 1
    EPISODES.forget()
    engine.dispose()


def test_an_urgent_request_waits_for_its_window_not_expired_and_withdrawn_for_free(database_url):
    """Made near the end of its first hour, an urgent request could pass its `decide_by`
    before its window closes: the expiry timer leaves it to the allocation. Withdrawn before
    the allocation, it held nothing: no cancellation fee, even inside the notice window."""
    engine, db = in_an_episode(database_url)
    (waiting, withdrawn) = decide_requests(
        db, [urgent_ask("42218", "main_roads"), urgent_ask("42095", "comfort")]
    )
    with engine.begin() as conn:  # its first hour is over
        conn.execute(
            update(BookingRow)
            .where(BookingRow.id == waiting["id"])
            .values(decide_by=NOW - timedelta(minutes=1))
        )
    settings = SimpleNamespace(allocation_window_seconds=600.0)
    service = worker_factory(Service, db=db, config={"SERVICE_SETTINGS": settings})
    service.expire_undecided()
    borrower = {"user_id": "u-42095", "commune": "42095", "roles": ["agent"]}
    cancelled = service.cancel(borrower, withdrawn["id"], {"reason": "le chasse-neige est réparé"})

    with engine.connect() as conn:
        status = dict(conn.execute(select(BookingRow.id, BookingRow.status)).all())
    assert status[waiting["id"]] == "requested"  # left to its allocation window
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellation_fee_cents"] == 0
    EPISODES.forget()
    engine.dispose()

"""The consultants service in real nameko containers, on both databases: two engagements of
one consultant recording the same date at the same moment are decided one after the other
(the consultant's row is locked), so the person's day never exceeds one; undecided requests
expire once, however many replicas run the timer and however often they restart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import eventlet
import pytest
from nameko.standalone.rpc import ServiceRpcProxy
from sqlalchemy import text

from contracts.caller import Caller, Role
from contracts.consultants import ConsultantTerms, EngagementRequest, EngagementStatus
from contracts.errors import ServiceError
from infra.database import DatabaseAccess, make_engine
from services.consultants.service import Service, move_engagement, publish_consultant, request_days
from services.consultants.settings import Settings
from tests.support import free_port, paris_today, wait_until
from tests.support.schema import migrated

FIRMINY, SAINT_ETIENNE, SAINT_CHAMOND = "42095", "42218", "42207"
LENDER = Caller(user_id="lender", commune=FIRMINY, roles=frozenset({Role.MANAGER}))


def borrower(commune: str) -> Caller:
    return Caller(user_id=f"agent-{commune}", commune=commune, roles=frozenset({Role.AGENT}))


def last_sunday() -> date:
    today = paris_today()
    return today - timedelta(days=(today.weekday() + 1) % 7 or 7)


def seed(database_url: str, engagements: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """A Firminy urbanist and their engagements, (borrower commune, status) each, over the
    last fortnight; created as the service would, a fortnight and more ago."""
    migrated("consultants", database_url)
    engine = make_engine(database_url)
    db = DatabaseAccess(engine, "consultants", None, "test")
    terms = ConsultantTerms(
        name="Claire Besson",
        title="Urbaniste",
        skills=["plu"],
        day_rate_cents=65000,
        max_days_per_month=20,
    )
    ids = []
    with db.transaction() as tx:
        consultant = publish_consultant(tx, LENDER, terms, [])
        for commune, status in engagements:
            start = last_sunday() - timedelta(days=7)
            asked = EngagementRequest(
                consultant_id=consultant.id,
                start=start,
                end=start + timedelta(days=14),
                days=5,
                mission="Révision du PLU",
            )
            row = request_days(tx, consultant, borrower(commune), asked)
            row.created_at = datetime.now(UTC) - timedelta(days=16)
            if status != "requested":
                move_engagement(tx, row, EngagementStatus(status), LENDER)
            ids.append(row.id)
    engine.dispose()
    return consultant.id, ids


@pytest.fixture
def start_service(vhost, container_factory):
    def start(database_url: str, **settings):
        config = Settings(database_url=database_url, amqp_uri=vhost.amqp_uri, **settings)
        container = container_factory(
            Service,
            config.nameko_config() | {"WEB_SERVER_ADDRESS": f"127.0.0.1:{free_port()}"},
        )
        container.start()
        return container

    return start


def rows(database_url: str, sql: str, **params) -> list:
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def test_two_engagements_racing_for_one_sunday_never_make_more_than_one_day(
    database_url, start_service
):
    consultant_id, engagements = seed(
        database_url, [(SAINT_ETIENNE, "accepted"), (SAINT_CHAMOND, "accepted")] * 2
    )
    container = start_service(database_url)
    sunday = last_sunday()
    entry = {
        "date": sunday.isoformat(),
        "days": "0.5",
        "exceptional_work": True,
        "exceptional_reason": "Crue du Furan : plan de sauvegarde",
    }
    lender = LENDER.model_dump(mode="json")

    def record(engagement_id: str, days: str):
        try:
            with ServiceRpcProxy("consultants", container.config) as consultants:
                return consultants.record_timesheet(lender, engagement_id, entry | {"days": days})
        except ServiceError as exc:
            return exc

    # four engagements of one person, half a day each, twice, all at once: two pass
    asks = [(e, "0.5") for e in engagements] * 2
    answers = list(eventlet.GreenPool(len(asks)).starmap(record, asks))

    passed = [a for a in answers if isinstance(a, dict)]
    refused = [a for a in answers if not isinstance(a, dict)]
    assert len(passed) == 2 and len(refused) == 6
    for exc in refused:
        assert exc.code == "invalid_input"
        (error,) = exc.errors
        assert error["type"] == "one_day_per_date" and error["days_left"] in ("0.5", "0")
        assert "dimanche" in error["message"]
    stored = rows(
        database_url,
        "SELECT sum(t.half_days), count(*) FROM timesheets t JOIN engagements e "
        "ON e.id = t.engagement_id WHERE e.consultant_id = :id AND t.work_date = :day",
        id=consultant_id,
        day=sunday,
    )
    assert tuple(stored[0]) == (2, 2)  # one day, in half days

    # a whole day more on that Sunday: refused, however it is asked
    again = record(engagements[0], "1")
    assert isinstance(again, ServiceError) and again.errors[0]["days_left"] == "0"
    assert Decimal(passed[0]["timesheets"][0]["days"]) == Decimal("0.5")


def test_undecided_requests_expire_once_across_replicas_and_restarts(database_url, start_service):
    _, engagements = seed(
        database_url,
        [(SAINT_ETIENNE, "requested")] * 8 + [(SAINT_CHAMOND, "accepted")],
    )
    fast = {"engagement_expiry_days": 15, "expiry_interval_seconds": 0.05}
    replicas = [start_service(database_url, **fast) for _ in range(2)]

    def expired() -> int:
        return rows(database_url, "SELECT count(*) FROM engagements WHERE status = 'expired'")[0][0]

    wait_until(lambda: expired() == 8, timeout=20)
    eventlet.sleep(0.5)  # the timers keep running: nothing is expired twice
    for replica in replicas:
        replica.stop()
    start_service(database_url, **fast)  # a restart
    eventlet.sleep(0.5)

    transitions = rows(
        database_url,
        "SELECT count(*), min(note) FROM engagement_transitions WHERE status = 'expired'",
    )[0]
    events = rows(
        database_url, "SELECT count(*) FROM outbox WHERE routing_key = 'engagement.expired'"
    )[0][0]
    assert (transitions[0], events) == (8, 8)
    assert transitions[1] == "not decided within 15 days"
    accepted = rows(
        database_url, "SELECT status FROM engagements WHERE id = :id", id=engagements[-1]
    )
    assert accepted[0][0] == "accepted"


def test_a_recent_request_does_not_expire(database_url, start_service):
    _, (engagement,) = seed(database_url, [(SAINT_ETIENNE, "requested")])
    start_service(database_url, engagement_expiry_days=30, expiry_interval_seconds=0.05)
    eventlet.sleep(0.5)
    status = rows(database_url, "SELECT status FROM engagements WHERE id = :id", id=engagement)
    assert status[0][0] == "requested"

"""The consultants service in a real nameko container, with real RabbitMQ, on both
databases: it keeps the agreements between communes from bookings' agreement.* events (each
applied once, an older one arriving late changing nothing), shows the one in force covering
an engagement's whole period, and approved days carry the reference of the agreement that
covered their date (BT-12); days recorded are announced for the borrower to approve."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from nameko.standalone.rpc import ServiceRpcProxy

from contracts.agreements import (
    AgreementEnded,
    AgreementInForce,
    AgreementProposed,
    AgreementSnapshot,
    PartyAct,
)
from infra.messaging_tables import metadata as messaging_metadata
from infra.messaging_tables import requests_metadata
from infra.migrations import upgrade
from services.consultants.domain import is_working_day
from services.consultants.models import metadata as consultants_metadata
from tests.integration.messaging import publish_event
from tests.integration.test_timesheet_concurrency import (
    FIRMINY,
    LENDER,
    SAINT_CHAMOND,
    SAINT_ETIENNE,
    borrower,
    rows,
    seed,
    start_service,  # noqa: F401 - the fixture
)
from tests.support import wait_until
from tests.support.schema import differences

CONSUMER = "consultants.keep_agreements"


def snapshot(agreement_id: str, status: str, *parties: str, starts_on: date, **more):
    return AgreementSnapshot(
        agreement_id=agreement_id,
        reference=f"CONV-{agreement_id}",
        title="Convention de mise à disposition de personnel",
        status=status,
        parties=[PartyAct(commune=c) for c in parties],
        covers_staff=True,
        starts_on=starts_on,
        **more,
    )


def at(event, moment: datetime):
    """The event as if it happened at `moment` (events may arrive out of order)."""
    return event.model_copy(update={"occurred_at": moment})


def applied(database_url: str) -> int:
    return rows(
        database_url, "SELECT count(*) FROM processed_events WHERE consumer = :c", c=CONSUMER
    )[0][0]


def worked(day: date) -> dict:
    exceptional = {"exceptional_work": True, "exceptional_reason": "Crue du Furan"}
    return {"date": day.isoformat(), "days": "1"} | ({} if is_working_day(day) else exceptional)


def test_agreements_are_kept_once_and_cover_engagements_by_their_dates(
    database_url,
    start_service,  # noqa: F811 - the fixture imported above
    vhost,
):
    _, (engagement_id,) = seed(database_url, [(SAINT_ETIENNE, "accepted")])
    (start,) = rows(database_url, "SELECT start FROM engagements")[0]
    start = date.fromisoformat(str(start))
    container = start_service(database_url)
    uri = vhost.amqp_uri
    t0 = datetime.now(UTC) - timedelta(hours=2)

    # agreement A: in force from a month before the engagement, ended two days into it
    a_in_force = at(
        AgreementInForce.new(
            snapshot("a", "in_force", FIRMINY, SAINT_ETIENNE, starts_on=start - timedelta(30)),
            producer="bookings",
        ),
        t0,
    )
    a_ended = at(
        AgreementEnded.new(
            snapshot(
                "a",
                "ended",
                FIRMINY,
                SAINT_ETIENNE,
                starts_on=start - timedelta(30),
                ends_on=start + timedelta(days=2),
            ),
            producer="bookings",
        ),
        t0 + timedelta(hours=1),
    )
    # the end first, then the (older) coming into force twice: applied once, ended it stays
    for event in (a_ended, a_in_force, a_in_force):
        publish_event(uri, event)
    # an agreement of other communes, and one only proposed: neither covers
    other = AgreementInForce.new(
        snapshot("b", "in_force", FIRMINY, SAINT_CHAMOND, starts_on=start - timedelta(30)),
        producer="bookings",
    )
    proposed = AgreementProposed.new(
        snapshot("c", "proposed", FIRMINY, SAINT_ETIENNE, starts_on=start - timedelta(30)),
        producer="bookings",
    )
    publish_event(uri, other)
    publish_event(uri, proposed)
    wait_until(lambda: applied(database_url) == 4, timeout=20)

    stored = rows(
        database_url, "SELECT agreement_id, status, was_in_force FROM agreements ORDER BY 1"
    )
    assert [(r[0], r[1], bool(r[2])) for r in stored] == [
        ("a", "ended", True),
        ("b", "in_force", True),
        ("c", "proposed", False),
    ]

    lender = LENDER.model_dump(mode="json")
    asker = borrower(SAINT_ETIENNE).model_dump(mode="json")
    with ServiceRpcProxy("consultants", container.config) as consultants:
        # A ended two days in: it does not cover the whole engagement
        assert consultants.get_engagement(lender, engagement_id)["agreement"] is None

        # but it covered the engagement's second day: those days carry its reference
        day = start + timedelta(days=1)
        sheet = consultants.record_timesheet(lender, engagement_id, worked(day))["timesheets"][0]
        consultants.approve_timesheet(asker, engagement_id, sheet["id"])

        # agreement D, in force from before the engagement with no end: it covers it all
        publish_event(
            uri,
            AgreementInForce.new(
                snapshot("d", "in_force", SAINT_ETIENNE, FIRMINY, starts_on=start - timedelta(9)),
                producer="bookings",
            ),
        )
        wait_until(lambda: applied(database_url) == 5, timeout=20)
        seen = consultants.get_engagement(asker, engagement_id)["agreement"]
        assert (seen["reference"], seen["starts_on"], seen["ends_on"]) == (
            "CONV-d",
            (start - timedelta(9)).isoformat(),
            None,
        )
        later = start + timedelta(days=3)  # after A's end: D's
        sheet = consultants.record_timesheet(lender, engagement_id, worked(later))
        recorded_id = next(t["id"] for t in sheet["timesheets"] if t["date"] == later.isoformat())
        consultants.approve_timesheet(asker, engagement_id, recorded_id)

    approvals = rows(
        database_url,
        "SELECT body FROM outbox WHERE routing_key = 'engagement.timesheet_approved' ORDER BY id",
    )
    references = [json.loads(r[0])["payload"]["agreement_reference"] for r in approvals]
    assert references == ["CONV-a", "CONV-d"]
    recordings = rows(
        database_url,
        "SELECT body FROM outbox WHERE routing_key = 'engagement.timesheet_recorded' ORDER BY id",
    )
    told = [json.loads(r[0])["payload"] for r in recordings]
    assert [(p["work_date"], p["borrower_commune"]) for p in told] == [
        (day.isoformat(), SAINT_ETIENNE),
        (later.isoformat(), SAINT_ETIENNE),
    ]


def test_the_consultants_schema_is_the_models(database_url):
    """Migrated to 0004 (consent, agreements), the database is what the models say."""
    upgrade("consultants", database_url)
    assert (
        differences(database_url, consultants_metadata, messaging_metadata, requests_metadata) == []
    )

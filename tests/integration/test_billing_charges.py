"""Each source line is charged exactly once by a real `mutualis serve billing` process,
whatever happens: duplicate deliveries and re-emitted events, kill -9 in the middle of
handling, events published before billing ever started, billing down while events pile up."""

from __future__ import annotations

import signal
import uuid
from datetime import date
from decimal import Decimal

import pytest
from kombu import Connection
from sqlalchemy import func, select

from contracts.bookings import (
    BookingCancelled,
    BookingReturned,
    BookingStatus,
)
from contracts.consultants import EngagementTimesheetApproved, TimesheetApproval
from contracts.topology import BOOKINGS_TO_BILLING, CONSULTANTS_TO_BILLING
from infra.database import make_engine
from infra.messaging_tables import outbox, processed_events
from infra.migrations import upgrade
from infra.topology import declare_all
from services.billing.models import ChargeRow
from tests.integration.messaging import publish_all, publish_event, queue_depth
from tests.support import wait_until
from tests.support.billing import BillingProcess, returned


@pytest.fixture
def billing_url(pg_database):
    upgrade("billing", pg_database.url)
    return pg_database.url


@pytest.fixture
def start_billing(billing_url, vhost, tmp_path):
    started: list[BillingProcess] = []

    def start() -> BillingProcess:
        process = BillingProcess(billing_url, vhost.amqp_uri, tmp_path / "billing.log")
        started.append(process)
        return process.wait_ready()

    yield start
    for process in started:
        if process.proc.poll() is None:
            process.kill()


def cancelled_late() -> BookingCancelled:
    snapshot = returned().payload.model_copy(
        update={
            "status": BookingStatus.CANCELLED,
            "cancellation_fee_cents": 10000,
            "damages": [],
        }
    )
    return BookingCancelled.new(snapshot, producer="bookings", correlation_id="test")


def timesheet() -> EngagementTimesheetApproved:
    return EngagementTimesheetApproved.new(
        TimesheetApproval(
            engagement_id=str(uuid.uuid4()),
            timesheet_id=str(uuid.uuid4()),
            consultant_id="c-1",
            consultant_name="Claire Martin",
            lender_commune="42095",
            borrower_commune="42218",
            work_date=date.today(),
            days=Decimal("0.5"),
            day_rate_cents=45000,
            amount_cents=22500,
        ),
        producer="consultants",
        correlation_id="test",
    )


def charges(url: str) -> tuple[int, int]:
    """(charges stored, distinct source lines among them)."""
    with make_engine(url).connect() as conn:
        return conn.execute(
            select(func.count(), func.count(ChargeRow.source_reference.distinct()))
        ).one()


def recorded_events(url: str) -> int:
    with make_engine(url).connect() as conn:
        return conn.scalar(
            select(func.count())
            .select_from(outbox)
            .where(outbox.c.routing_key == "charge.recorded")
        )


def applied(url: str) -> int:
    with make_engine(url).connect() as conn:
        return conn.scalar(select(func.count()).select_from(processed_events))


def settled(url: str, amqp_uri: str, expected: int) -> bool:
    """Every expected charge is there and the queues are drained."""
    return (
        charges(url)[0] == expected
        and queue_depth(amqp_uri, BOOKINGS_TO_BILLING.queue) == 0
        and queue_depth(amqp_uri, CONSULTANTS_TO_BILLING.queue) == 0
    )


def declare_queues(amqp_uri: str) -> None:
    """What every relay does when it starts, before it publishes anything."""
    with Connection(amqp_uri) as conn:
        declare_all(conn)


def test_duplicates_and_a_re_emitted_event_are_charged_once(start_billing, billing_url, vhost):
    billing = start_billing()
    event = returned()
    re_emitted = BookingReturned.new(event.payload, producer="bookings")  # same booking, new id
    for message in (event, event, re_emitted, event):
        publish_event(vhost.amqp_uri, message)

    wait_until(lambda: billing.duplicates_skipped() >= 2, timeout=15)
    wait_until(lambda: settled(billing_url, vhost.amqp_uri, 2), timeout=15)
    assert charges(billing_url) == (2, 2)
    assert recorded_events(billing_url) == 2
    assert applied(billing_url) == 2  # the event and its re-emission, each applied once


@pytest.mark.parametrize("billing_url", ["sqlite", "postgresql"], indirect=True)
def test_killed_with_kill_9_mid_handling_billing_charges_every_line_once(
    start_billing, billing_url, vhost
):
    declare_queues(vhost.amqp_uri)
    publish_all(vhost.amqp_uri, [returned() for _ in range(600)])
    billing = start_billing()
    wait_until(lambda: charges(billing_url)[0] >= 40, timeout=30, interval=0.005)
    billing.kill()  # kill -9: in-flight handlers die, unacknowledged messages come back
    stored_at_kill = charges(billing_url)[0]
    assert stored_at_kill < 1200, "billing finished before it could be killed"
    assert queue_depth(vhost.amqp_uri, BOOKINGS_TO_BILLING.queue) > 0

    start_billing()
    wait_until(lambda: settled(billing_url, vhost.amqp_uri, 1200), timeout=90)
    assert charges(billing_url) == (1200, 1200)
    assert recorded_events(billing_url) == 1200
    assert applied(billing_url) == 600
    assert queue_depth(vhost.amqp_uri, BOOKINGS_TO_BILLING.dead_letter_queue) == 0


def test_events_published_before_billing_ever_started_are_all_charged(
    start_billing, billing_url, vhost
):
    declare_queues(vhost.amqp_uri)
    for event in [returned() for _ in range(10)] + [cancelled_late(), timesheet(), timesheet()]:
        publish_event(vhost.amqp_uri, event)
    assert queue_depth(vhost.amqp_uri, BOOKINGS_TO_BILLING.queue) == 11
    assert queue_depth(vhost.amqp_uri, CONSULTANTS_TO_BILLING.queue) == 2

    start_billing()
    wait_until(lambda: settled(billing_url, vhost.amqp_uri, 23), timeout=20)
    with make_engine(billing_url).connect() as conn:
        kinds = dict(
            conn.execute(select(ChargeRow.kind, func.count()).group_by(ChargeRow.kind)).all()
        )
    assert kinds == {"rental": 10, "damage": 10, "cancellation_fee": 1, "consulting": 2}


def test_events_piling_up_while_billing_is_down_are_charged_once_it_is_back(
    start_billing, billing_url, vhost
):
    billing = start_billing()
    before = [returned() for _ in range(10)]
    for event in before:
        publish_event(vhost.amqp_uri, event)
    wait_until(lambda: settled(billing_url, vhost.amqp_uri, 20), timeout=15)
    billing.kill(signal.SIGTERM)

    during = [returned() for _ in range(15)] + [timesheet()]
    for event in during + before[:3]:  # and some old ones redelivered by an upstream relay
        publish_event(vhost.amqp_uri, event)
    assert queue_depth(vhost.amqp_uri, BOOKINGS_TO_BILLING.queue) == 18
    assert charges(billing_url)[0] == 20

    start_billing()
    wait_until(lambda: settled(billing_url, vhost.amqp_uri, 51), timeout=20)
    assert charges(billing_url) == (51, 51)
    assert recorded_events(billing_url) == 51

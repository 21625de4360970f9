"""Time as communes live it, through the gateway: a day listing booked for today and an hour
listing from the current hour, refusals naming the first allowed moment and storing nothing,
hand-over no earlier than the first day (or the day before with early pick-up), no
cancelling once handed over, a loan overdue flagged and announced once, and its late return
charged per day with its service period."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from kombu import Connection, Exchange, Queue
from sqlalchemy import func, select

from services.bookings.models import BookingRow
from tests.e2e.test_bookings_rules import (
    BORROWER,
    LENDER,
    act,
    api,
    book,
    booked,
    move,
    publish,
    seen,
)
from tests.support import PARIS, assert_problem, at, day, paris_today, wait_until


def stored_bookings(stack, listing: dict) -> int:
    with stack.database("bookings").connect() as conn:
        return conn.scalar(
            select(func.count())
            .select_from(BookingRow)
            .where(BookingRow.listing_id == listing["id"])
        )


def refused_rule(answer) -> dict:
    """The one rule a 422 names, as problem+json."""
    (error,) = assert_problem(answer, 422)["errors"]
    return error


def test_a_day_listing_is_booked_for_today_and_an_hour_listing_from_the_current_hour(stack):
    plough = publish(stack, category="deneigement", rate_cents=42000)
    today = booked(stack, BORROWER, plough, day(0), day(1))
    assert today["status"] == "requested"
    assert today["quote"]["units"] == 1 and today["quote"]["rental_cents"] == 42000

    yesterday = refused_rule(book(stack, BORROWER, plough, day(-1), day(1)))
    assert (yesterday["field"], yesterday["type"]) == ("start", "in_the_past")
    assert yesterday["first_allowed"] == day(0)

    noticed = publish(stack, lead_time_days=2)
    early = refused_rule(book(stack, BORROWER, noticed, day(1), day(3)))
    assert (early["type"], early["first_allowed"]) == ("lead_time", day(2))
    assert stored_bookings(stack, plough) == 1 and stored_bookings(stack, noticed) == 0

    room = publish(stack, pricing_unit="hour", category="salles", kind="space", rate_cents=4000)
    hour = datetime.now(PARIS).replace(minute=0, second=0, microsecond=0)
    this_hour = booked(
        stack, BORROWER, room, hour.isoformat(), (hour + timedelta(hours=1)).isoformat()
    )
    assert this_hour["status"] == "requested"
    assert this_hour["quote"]["units"] == 1 and this_hour["quote"]["rental_cents"] == 4000
    past = refused_rule(
        book(stack, BORROWER, room, (hour - timedelta(hours=1)).isoformat(), hour.isoformat())
    )
    assert past["type"] == "in_the_past"
    assert datetime.fromisoformat(past["first_allowed"]) == hour
    assert stored_bookings(stack, room) == 1


def test_a_booking_is_handed_over_from_its_first_day_never_earlier(stack):
    plough = publish(stack)
    tomorrow = booked(stack, BORROWER, plough, day(1), day(2))
    assert act(stack, tomorrow, "approve").status_code == 200
    too_early = refused_rule(act(stack, tomorrow, "check-out"))
    assert (too_early["type"], too_early["first_allowed"]) == ("hand_over_too_early", day(1))
    kept = seen(stack, tomorrow)
    assert kept["status"] == "approved" and kept["checked_out_at"] is None
    assert len(kept["history"]) == 2  # the refusal wrote nothing

    early_pickup = publish(stack, early_pickup=True)
    picked_up = booked(stack, BORROWER, early_pickup, day(1), day(2))
    act(stack, picked_up, "approve")
    assert act(stack, picked_up, "check-out").json()["status"] == "checked_out"
    day_after = booked(stack, BORROWER, early_pickup, day(2), day(3))
    act(stack, day_after, "approve")
    assert refused_rule(act(stack, day_after, "check-out"))["first_allowed"] == day(1)


def overdue_events(stack):
    """booking.overdue events as they leave, from a queue declared before the test acts."""
    queue = Queue(
        f"test-overdue-{uuid.uuid4().hex[:8]}",
        exchange=Exchange("bookings.events", type="topic", durable=True),
        routing_key="booking.overdue",
        auto_delete=False,
    )
    with Connection(stack.vhost.amqp_uri) as conn:
        queue(conn.channel()).declare()
    received: list[dict] = []

    def of(booking_id: str) -> list[dict]:
        with Connection(stack.vhost.amqp_uri) as conn:
            bound = queue(conn.channel())
            while (message := bound.get(no_ack=True)) is not None:
                received.append(json.loads(message.body))
        return [e for e in received if e["payload"]["booking_id"] == booking_id]

    return of


def test_a_loan_not_returned_is_overdue_once_and_its_late_return_is_charged(stack):
    overdue = overdue_events(stack)
    plough = publish(stack, late_fee_per_day_cents=5000)
    loan = booked(stack, BORROWER, plough, day(0), day(1))
    assert loan["quote"]["late_fee_per_day_cents"] == 5000
    act(stack, loan, "approve")
    assert act(stack, loan, "check-out").status_code == 200
    cancel = assert_problem(act(stack, loan, "cancel"), 409)
    assert cancel["rule"] == "cancel_after_check_out"

    # time passes: the loan was of yesterday, and is not back
    move(stack, loan, start=at(-1), end=at(0))
    assert seen(stack, loan)["overdue"] is True
    assert seen(stack, loan, BORROWER)["overdue"] is True  # both communes see it
    wait_until(lambda: overdue(loan["id"]), timeout=15)
    time.sleep(3)  # the timer runs every second: it announces nothing more
    assert len(overdue(loan["id"])) == 1

    back = act(stack, loan, "return")
    assert back.status_code == 200, back.text
    assert back.json()["overdue"] is False
    finance = stack.session("finance", LENDER)

    def late_fee():
        charges = finance.get(api(stack, "charges"), params={"limit": 200}).json()["items"]
        return next(
            (c for c in charges if c["source_reference"] == f"booking:{loan['id']}:late_fee"),
            None,
        )

    charge = wait_until(late_fee, timeout=15)
    assert (charge["kind"], charge["amount_cents"], charge["unit"]) == ("late_fee", 5000, "DAY")
    # the late days: the loan's last day was yesterday, so from today to the return, today
    assert charge["service_start"] == paris_today().isoformat()
    assert charge["service_end"] == paris_today().isoformat()
    assert datetime.fromisoformat(back.json()["returned_at"]) <= datetime.now(UTC)

"""Booking rules as a commune meets them through the gateway: refusals naming the field,
conflicts naming the taken period, who decides, every transition in the history, late
cancellation fees, expiry, the waitlist, series, the iCalendar feed, what listings show of
bookings, and who sees a booking at all."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, time, timedelta

import pytest
from icalendar import Calendar
from sqlalchemy import update

from services.bookings.models import BookingRow
from tests.support import PARIS, assert_problem, at, day, instant, listen, paris_today, wait_until

LENDER = "42044"  # Le Chambon-Feugerolles lends
BORROWER, OTHER, THIRD, FOURTH = "42218", "42095", "42207", "42189"

# -- clients and helpers ----------------------------------------------------------------

_days = itertools.count(30)


def api(stack, path: str) -> str:
    return f"{stack.url}/api/v1/{path}"


def fresh_days(span: int = 4) -> int:
    """A first day (from today) of `span` days no other test of this run books."""
    first = next(_days)
    for _ in range(span):
        next(_days)
    return first


def publish(stack, **terms) -> dict:
    """A fresh listing of the lender, known to the bookings service."""
    draft = {
        "title": f"Nacelle x{uuid.uuid4().hex[:8]}",
        "category": "voirie",
        "kind": "vehicle",
        "pricing_unit": "day",
        "rate_cents": 20000,
        "deposit_cents": 50000,
    } | terms
    answer = stack.session("manager", LENDER).post(api(stack, "listings"), json=draft)
    assert answer.status_code == 201, answer.text
    listing = answer.json()
    stack.known_to_bookings(listing)
    return listing


def book(stack, insee: str, listing: dict, start, end, role: str = "agent", **extra):
    return stack.session(role, insee).post(
        api(stack, "bookings"),
        json={"listing_id": listing["id"], "start": start, "end": end} | extra,
    )


def booked(stack, insee: str, listing: dict, start, end, **extra) -> dict:
    answer = book(stack, insee, listing, start, end, **extra)
    assert answer.status_code == 201, answer.text
    return answer.json()


def seen(stack, booking: dict, insee: str = LENDER) -> dict:
    answer = stack.session("manager", insee).get(api(stack, f"bookings/{booking['id']}"))
    assert answer.status_code == 200, answer.text
    return answer.json()


BODIES = {
    "approve": None,
    "reject": {"reason": "Engin réservé aux astreintes"},
    "cancel": {"reason": "Plus besoin"},
    "check-out": {"condition": "Plein fait, pneus neufs"},
    "return": {"condition": "Bon état", "damages": []},
}


def act(stack, booking: dict, action: str, by: tuple[str, str] | None = None, body=None):
    """`action` by the lender's manager, or for a cancellation the borrower's agent."""
    role, insee = by or (
        ("agent", booking["borrower_commune"]) if action == "cancel" else ("manager", LENDER)
    )
    return stack.session(role, insee).post(
        api(stack, f"bookings/{booking['id']}/{action}"), json=body or BODIES[action]
    )


PATH_TO = {
    "requested": [],
    "approved": ["approve"],
    "checked_out": ["approve", "check-out"],
    "returned": ["approve", "check-out", "return"],
    "rejected": ["reject"],
    "cancelled": ["cancel"],
}


def drive(stack, booking: dict, status: str) -> None:
    for action in PATH_TO[status]:
        if action == "check-out":
            answer = check_out_on_its_first_day(stack, booking)
        else:
            answer = act(stack, booking, action)
        assert answer.status_code == 200, answer.text
    assert seen(stack, booking)["status"] == status


def check_out_on_its_first_day(stack, booking: dict):
    """A booking is handed over from its first day: time moves there (the booking starts
    today for its hand-over), then the booking goes back to its days."""
    start = instant(booking["start"])
    move(stack, booking, start=at(0))
    try:
        return act(stack, booking, "check-out")
    finally:
        move(stack, booking, start=start)


@pytest.fixture(scope="module")
def plough(stack):
    """One item, no special rules: tests share it, each on days of its own."""
    return publish(stack, title=f"Chasse-neige x{uuid.uuid4().hex[:8]}", category="deneigement")


@pytest.fixture(scope="module")
def strict(stack):
    """Two items that go out 2 to 5 days, booked 3 days ahead, without a driver."""
    return publish(stack, quantity=2, min_duration=2, max_duration=5, lead_time_days=3)


@pytest.fixture
def cancelled_events(stack):
    """booking.cancelled events as they leave, from a queue declared before the test acts."""
    arrived = listen(stack.vhost.amqp_uri, "bookings.events", "booking.cancelled")
    received: list[dict] = []

    def of(booking_id: str) -> dict | None:
        received.extend(arrived())
        return next((e for e in received if e["payload"]["booking_id"] == booking_id), None)

    return of


# -- rules: 422 naming the field ----------------------------------------------------------


@pytest.mark.parametrize(
    ("insee", "start", "end", "extra", "broken"),
    [
        pytest.param(BORROWER, 10, 11, {}, {("end", "min_duration")}, id="too short"),
        pytest.param(BORROWER, 10, 16, {}, {("end", "max_duration")}, id="too long"),
        pytest.param(BORROWER, 1, 3, {}, {("start", "lead_time")}, id="too soon"),
        pytest.param(BORROWER, -4, -2, {}, {("start", "in_the_past")}, id="in the past"),
        pytest.param(
            BORROWER, 10, 12, {"quantity": 3}, {("quantity", "quantity")}, id="more than it has"
        ),
        pytest.param(
            BORROWER,
            10,
            12,
            {"with_operator": True},
            {("with_operator", "no_operator")},
            id="no operator offered",
        ),
        pytest.param(LENDER, 10, 12, {}, {("listing_id", "own_listing")}, id="own commune"),
        pytest.param(
            BORROWER,
            1,
            2,
            {"quantity": 3},
            {("start", "lead_time"), ("end", "min_duration"), ("quantity", "quantity")},
            id="every broken rule at once",
        ),
    ],
)
def test_a_request_breaking_the_listings_rules_is_refused_naming_each_field(
    stack, strict, insee, start, end, extra, broken
):
    role = "manager" if insee == LENDER else "agent"
    answer = book(stack, insee, strict, day(start), day(end), role=role, **extra)
    problem = assert_problem(answer, 422)
    assert {(e["field"], e["type"]) for e in problem["errors"]} == broken
    assert all(e["message"] for e in problem["errors"])
    lent = stack.session("manager", LENDER).get(
        api(stack, "bookings"), params={"listing_id": strict["id"]}
    )
    assert lent.json()["items"] == []  # nothing was booked


def test_a_withdrawn_listing_takes_no_new_bookings_but_keeps_those_it_had(stack):
    listing = publish(stack)
    kept = booked(stack, BORROWER, listing, day(10), day(12))
    lender = stack.session("manager", LENDER)
    assert lender.delete(api(stack, f"listings/{listing['id']}")).status_code == 200

    def refused_as_withdrawn():  # quantity 2 of 1 can never be booked while we wait
        errors = book(stack, OTHER, listing, day(20), day(21), quantity=2).json()["errors"]
        return any(e["type"] == "listing_withdrawn" for e in errors)

    wait_until(refused_as_withdrawn, timeout=10)
    problem = assert_problem(book(stack, OTHER, listing, day(20), day(21)), 422)
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        ("listing_id", "listing_withdrawn")
    ]
    assert act(stack, kept, "approve").json()["status"] == "approved"


# -- conflicts: 409 naming the taken period ----------------------------------------------


@pytest.mark.parametrize(
    ("holder_status", "holds"),
    [
        ("requested", True),
        ("approved", True),
        ("checked_out", True),
        ("rejected", False),
        ("cancelled", False),
        ("returned", False),
    ],
)
def test_only_an_active_booking_holds_its_slot(stack, plough, holder_status, holds):
    d = fresh_days()
    holder = booked(stack, BORROWER, plough, day(d), day(d + 3))
    drive(stack, holder, holder_status)

    answer = book(stack, OTHER, plough, day(d + 2), day(d + 4))
    if holds:
        problem = assert_problem(answer, 409)
        period = problem["conflicting_period"]
        assert (instant(period["start"]), instant(period["end"])) == (at(d), at(d + 3))
        assert "already booked" in problem["detail"]
    else:
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "requested"


def test_a_blackout_answers_409_with_the_closed_period(stack):
    listing = publish(stack)
    closed = {"start": at(20).isoformat(), "end": at(22).isoformat()}
    answer = stack.session("manager", LENDER).post(
        api(stack, f"listings/{listing['id']}/blackouts"),
        json=closed | {"reason": "Révision annuelle"},
    )
    assert answer.status_code == 201, answer.text
    stack.known_to_bookings(answer.json())

    problem = assert_problem(book(stack, BORROWER, listing, day(21), day(23)), 409)
    period = problem["conflicting_period"]
    assert (instant(period["start"]), instant(period["end"])) == (at(20), at(22))
    assert "Révision annuelle" in problem["detail"]
    assert book(stack, BORROWER, listing, day(19), day(20)).status_code == 201
    assert book(stack, BORROWER, listing, day(22), day(23)).status_code == 201


def test_overlapping_bookings_never_hold_more_units_than_the_listing_has(stack):
    listing = publish(stack, quantity=2)
    steps = [  # (who, first day, last day + 1, units, answer)
        (BORROWER, 10, 13, 1, 201),
        (OTHER, 12, 14, 1, 201),  # both units held on day 12
        (THIRD, 11, 13, 1, 409),  # a third unit on day 12
        (THIRD, 13, 15, 1, 201),  # day 13: two units again, no more
        (FOURTH, 10, 12, 1, 201),  # days 10-11: two units
        (FOURTH, 14, 16, 2, 409),  # day 14 has one unit left
        (FOURTH, 15, 16, 2, 201),  # day 15 has both
    ]
    for who, first, end, units, expected in steps:
        answer = book(stack, who, listing, day(first), day(end), quantity=units)
        assert answer.status_code == expected, (who, first, end, units, answer.text)


# -- who decides, and the history of every transition ------------------------------------


@pytest.mark.parametrize(
    ("role", "insee", "expected"),
    [
        ("agent", BORROWER, 403),
        ("manager", BORROWER, 403),
        ("agent", LENDER, 403),
        ("manager", LENDER, 200),
    ],
)
def test_only_the_lenders_manager_approves(stack, plough, role, insee, expected):
    d = fresh_days()
    booking = booked(stack, BORROWER, plough, day(d), day(d + 1))
    answer = act(stack, booking, "approve", by=(role, insee))
    assert answer.status_code == expected, answer.text
    assert seen(stack, booking)["status"] == ("approved" if expected == 200 else "requested")


def test_a_rejection_needs_a_reason_and_the_history_keeps_who_when_why(stack, plough):
    before = datetime.now(UTC) - timedelta(seconds=5)
    borrower, lender = stack.session("agent", BORROWER), stack.session("manager", LENDER)
    d = fresh_days()
    booking = booked(stack, BORROWER, plough, day(d), day(d + 2), purpose="Fête du quartier")
    path = api(stack, f"bookings/{booking['id']}")

    for body in ({}, {"reason": ""}, {"reason": "no"}):
        problem = assert_problem(lender.post(f"{path}/reject", json=body), 422)
        assert [e["field"] for e in problem["errors"]] == ["reason"]
    assert lender.post(f"{path}/reject", json={"reason": "Lame en réparation"}).status_code == 200

    history = borrower.get(path).json()["history"]
    who = [(t["status"], t["by_user"], t["by_commune"], t["note"]) for t in history]  # who, and why
    assert who == [
        ("requested", borrower.get(api(stack, "me")).json()["id"], BORROWER, "Fête du quartier"),
        ("rejected", lender.get(api(stack, "me")).json()["id"], LENDER, "Lame en réparation"),
    ]
    moments = [instant(t["at"]) for t in history]  # and when
    assert before < moments[0] <= moments[1] < datetime.now(UTC) + timedelta(seconds=5)
    # a decided request cannot be decided again
    assert lender.post(f"{path}/approve").status_code == 409


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("requested", "check-out"),
        ("requested", "return"),
        ("approved", "approve"),
        ("approved", "reject"),
        ("rejected", "approve"),
        ("rejected", "cancel"),
        ("cancelled", "approve"),
        ("cancelled", "cancel"),
        ("checked_out", "cancel"),
        ("checked_out", "approve"),
        ("returned", "check-out"),
        ("returned", "return"),
    ],
)
def test_an_invalid_transition_answers_409_and_changes_nothing(stack, plough, status, action):
    d = fresh_days()
    booking = booked(stack, BORROWER, plough, day(d), day(d + 1))
    drive(stack, booking, status)
    problem = assert_problem(act(stack, booking, action), 409)
    assert problem["current_status"] == status
    after = seen(stack, booking)
    assert after["status"] == status
    assert len(after["history"]) == len(PATH_TO[status]) + 1


# -- cancellation and its fee -------------------------------------------------------------


@pytest.mark.parametrize(
    ("days_ahead", "status", "by", "fee"),
    [
        pytest.param(3, "requested", ("agent", BORROWER), 5000, id="borrower, inside the notice"),
        pytest.param(3, "approved", ("manager", BORROWER), 5000, id="approved, inside the notice"),
        pytest.param(9, "approved", ("agent", BORROWER), 0, id="borrower, before the notice"),
        pytest.param(3, "approved", ("agent", LENDER), 0, id="the lender cancels"),
        pytest.param(4, "waiting", ("agent", BORROWER), 0, id="a waitlisted request"),
    ],
)
def test_a_late_cancellation_by_the_borrower_records_the_fee_and_its_event_carries_it(
    stack, cancelled_events, days_ahead, status, by, fee
):
    listing = publish(stack, cancellation_notice_days=7, late_cancellation_fee_cents=5000)
    if status == "waiting":
        booked(stack, OTHER, listing, day(days_ahead), day(days_ahead + 1))
    booking = booked(
        stack, BORROWER, listing, day(days_ahead), day(days_ahead + 1), wait_if_taken=True
    )
    if status != "waiting":
        drive(stack, booking, status)
    assert booking["status"] == ("waiting" if status == "waiting" else "requested")

    reason = f"Changement de programme {uuid.uuid4().hex[:4]}"
    answer = act(stack, booking, "cancel", by=by, body={"reason": reason})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "cancelled"
    assert answer.json()["cancellation_fee_cents"] == fee
    last = seen(stack, booking, BORROWER)["history"][-1]
    assert (last["status"], last["by_commune"], last["note"]) == ("cancelled", by[1], reason)

    event = wait_until(lambda: cancelled_events(booking["id"]), timeout=10)
    assert event["payload"]["status"] == "cancelled"
    assert event["payload"]["cancellation_fee_cents"] == fee
    assert event["payload"]["reason"] == reason


# -- time: undecided requests expire ------------------------------------------------------


def move(stack, booking: dict, **period: datetime) -> None:
    """Time passes: the booking's period is moved, in its own database, to `period`."""
    with stack.database("bookings").begin() as conn:
        conn.execute(update(BookingRow).where(BookingRow.id == booking["id"]).values(**period))


def test_an_undecided_request_expires_once_it_can_no_longer_start_and_frees_its_slot(stack):
    listing = publish(stack)
    undecided = booked(stack, BORROWER, listing, day(5), day(6))
    waiting = booked(stack, OTHER, listing, day(5), day(6), wait_if_taken=True)
    assert waiting["status"] == "waiting"
    decided = booked(stack, THIRD, listing, day(20), day(21))
    drive(stack, decided, "approved")

    now = datetime.now(UTC)
    # its first day ended a minute ago: it can no longer start
    move(stack, undecided, start=now - timedelta(days=1), decide_by=now - timedelta(minutes=1))
    move(stack, decided, start=now - timedelta(hours=2), end=now - timedelta(hours=1))

    expired = wait_until(
        lambda: (b := seen(stack, undecided))["status"] == "expired" and b, timeout=10
    )
    last = expired["history"][-1]
    assert (last["status"], last["by_user"], last["by_commune"]) == ("expired", None, None)
    assert last["note"] == "not decided while it could still start"

    promoted = seen(stack, waiting)
    assert promoted["status"] == "requested"
    assert "freed" in promoted["history"][-1]["note"]
    assert seen(stack, decided)["status"] == "approved"  # only undecided requests expire


# -- the waitlist -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "by"),
    [
        pytest.param("reject", ("manager", LENDER), id="rejected"),
        pytest.param("cancel", ("agent", BORROWER), id="cancelled by the borrower"),
        pytest.param("cancel", ("manager", LENDER), id="cancelled by the lender"),
    ],
)
def test_a_freed_slot_goes_to_the_first_waiting_request(stack, plough, action, by):
    d = fresh_days()
    holder = booked(stack, BORROWER, plough, day(d), day(d + 2))
    assert book(stack, OTHER, plough, day(d), day(d + 1)).status_code == 409
    first = booked(stack, OTHER, plough, day(d), day(d + 1), wait_if_taken=True)
    second = booked(stack, THIRD, plough, day(d), day(d + 2), wait_if_taken=True)
    assert (first["status"], second["status"]) == ("waiting", "waiting")
    assert seen(stack, first)["history"][0]["note"].startswith("waitlisted: ")
    assert act(stack, first, "approve").status_code == 409  # nothing to decide yet

    assert act(stack, holder, action, by=by).status_code == 200
    now_first = seen(stack, first)
    assert now_first["status"] == "requested"
    note = now_first["history"][-1]
    assert (note["status"], note["by_user"]) == ("requested", None)
    assert "freed" in note["note"]
    assert seen(stack, second)["status"] == "waiting"  # day d is taken by the first again

    assert act(stack, first, "cancel").status_code == 200
    assert seen(stack, second)["status"] == "requested"


# -- series -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recurrence", "taken", "wait", "statuses", "conflicts"),
    [
        pytest.param(
            {"frequency": "weekly", "count": 4},
            [2],
            False,
            ["requested", "requested", None, "requested"],
            [2],
            id="weekly, one week taken",
        ),
        pytest.param(
            {"frequency": "daily", "until": 4},
            [],
            False,
            ["requested"] * 5,
            [],
            id="daily until a date",
        ),
        pytest.param(
            {"frequency": "weekly", "count": 3},
            [1],
            True,
            ["requested", "waiting", "requested"],
            [],
            id="a taken week waits",
        ),
        pytest.param(
            {"frequency": "weekly", "count": 3},
            [0, 1, 2],
            False,
            [None, None, None],
            [0, 1, 2],
            id="every week taken",
        ),
    ],
)
def test_a_series_books_each_occurrence_and_lists_those_that_conflicted(
    stack, plough, recurrence, taken, wait, statuses, conflicts
):
    step = 7 if recurrence["frequency"] == "weekly" else 1
    d = fresh_days(step * len(statuses))
    occurrence = [d + k * step for k in range(len(statuses))]
    for k in taken:
        booked(stack, FOURTH, plough, day(occurrence[k]), day(occurrence[k] + 1))
    if "until" in recurrence:
        recurrence = recurrence | {"until": day(d + recurrence["until"])}

    answer = book(
        stack, BORROWER, plough, day(d), day(d + 1), recurrence=recurrence, wait_if_taken=wait
    )
    expected_conflicts = [(at(occurrence[k]), at(occurrence[k] + 1)) for k in conflicts]
    if all(s is None for s in statuses):
        problem = assert_problem(answer, 409)
        got = [(instant(c["start"]), instant(c["end"])) for c in problem["conflicts"]]
        assert got == expected_conflicts
        return
    assert answer.status_code == 201, answer.text
    body = answer.json()
    made = [(k, s) for k, s in enumerate(statuses) if s is not None]
    assert [(instant(b["start"]), b["status"]) for b in body["created"]] == [
        (at(occurrence[k]), s) for k, s in made
    ]
    assert len({b["series_id"] for b in body["created"]}) == 1
    assert body["series_id"] is not None
    got = [(instant(c["start"]), instant(c["end"])) for c in body["conflicts"]]
    assert got == expected_conflicts
    assert all("already booked" in c["detail"] for c in body["conflicts"])


def test_a_series_whose_occurrences_overlap_keeps_only_those_that_fit(stack, plough):
    """Two-day loans every day: each occurrence overlaps the next, so on a quantity-1
    listing one in two is kept; the others conflict with the series' own occurrences."""
    d = fresh_days(5)
    body = booked(
        stack,
        BORROWER,
        plough,
        day(d),
        day(d + 2),
        recurrence={"frequency": "daily", "count": 4},
    )
    assert [instant(b["start"]) for b in body["created"]] == [at(d), at(d + 2)]
    assert [instant(c["start"]) for c in body["conflicts"]] == [at(d + 1), at(d + 3)]
    assert all("1 of 1 already booked" in c["detail"] for c in body["conflicts"])


def test_a_weekly_series_keeps_its_paris_time_across_a_clock_change(stack):
    listing = publish(stack, pricing_unit="hour", rate_cents=4000, category="salles")
    change = paris_today() + timedelta(days=10)
    while (
        datetime.combine(change, time(12), PARIS).utcoffset()
        == datetime.combine(change + timedelta(days=1), time(12), PARIS).utcoffset()
    ):
        change += timedelta(days=1)
    first = datetime.combine(change - timedelta(days=8), time(10), PARIS)

    body = booked(
        stack,
        BORROWER,
        listing,
        first.isoformat(),
        (first + timedelta(hours=2)).isoformat(),
        recurrence={"frequency": "weekly", "count": 3},
    )
    starts = [instant(b["start"]).astimezone(PARIS) for b in body["created"]]
    assert [s.date() for s in starts] == [first.date() + timedelta(weeks=k) for k in range(3)]
    assert [s.time() for s in starts] == [time(10)] * 3  # 10:00 in Paris, summer or winter
    assert len({s.utcoffset() for s in starts}) == 2
    assert [b["quote"]["units"] for b in body["created"]] == [2, 2, 2]


# -- the iCalendar feed -------------------------------------------------------------------


def test_the_calendar_feed_is_valid_icalendar_of_the_communes_own_bookings(stack, plough):
    d = fresh_days(6)
    approved = booked(stack, FOURTH, plough, day(d), day(d + 2), purpose="Salon du livre")
    drive(stack, approved, "approved")
    requested = booked(stack, FOURTH, plough, day(d + 3), day(d + 4))
    rejected = booked(stack, FOURTH, plough, day(d + 5), day(d + 6))
    drive(stack, rejected, "rejected")

    def feed(role: str, insee: str) -> dict:
        answer = stack.session(role, insee).get(api(stack, "bookings.ics"))
        assert answer.status_code == 200, answer.text
        assert answer.headers["Content-Type"].startswith("text/calendar")
        raw = answer.content
        assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF line ends
        assert all(len(line) <= 75 for line in raw.split(b"\r\n"))  # folded lines
        calendar = Calendar.from_ical(raw)
        assert calendar.name == "VCALENDAR"
        assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
        events = calendar.walk("VEVENT")
        for event in events:
            for required in ("UID", "DTSTAMP", "DTSTART", "DTEND", "SUMMARY"):
                assert required in event, required
        return {str(e["UID"]).removesuffix("@mutualis"): e for e in events}

    mine = feed("agent", FOURTH)
    event = mine[approved["id"]]
    assert (event.decoded("DTSTART"), event.decoded("DTEND")) == (at(d), at(d + 2))
    assert str(event["STATUS"]) == "CONFIRMED"
    assert str(event["SUMMARY"]) == f"Emprunt : {plough['title']}"
    assert "Salon du livre" in str(event["DESCRIPTION"])
    assert str(mine[requested["id"]]["STATUS"]) == "TENTATIVE"
    assert rejected["id"] not in mine

    lent = feed("manager", LENDER)
    assert str(lent[approved["id"]]["SUMMARY"]) == f"Prêt : {plough['title']}"
    assert approved["id"] not in feed("agent", THIRD)


def test_the_calendar_feed_holds_every_booking_however_many(stack):
    room = publish(stack, pricing_unit="hour", rate_cents=3000, category="salles", kind="space")
    daily = {"frequency": "daily", "count": 52}
    made = []
    for hour in (8, 9, 10, 11):  # 4 × 52 one-hour meetings from the day after tomorrow
        start = at(2, hour)
        end = start + timedelta(hours=1)
        series = booked(stack, FOURTH, room, start.isoformat(), end.isoformat(), recurrence=daily)
        made += [b["id"] for b in series["created"]]
    later = at(70, 14)
    last = booked(stack, FOURTH, room, later.isoformat(), (later + timedelta(hours=2)).isoformat())

    answer = stack.session("agent", FOURTH).get(api(stack, "bookings.ics"))
    assert answer.status_code == 200, answer.text
    uids = {str(e["UID"]) for e in Calendar.from_ical(answer.content).walk("VEVENT")}
    assert {f"{i}@mutualis" for i in [*made, last["id"]]} <= uids


# -- what listings show of bookings -------------------------------------------------------


def busy(stack, listing: dict, first: int, last: int) -> list[tuple[datetime, datetime]]:
    answer = stack.session("agent", BORROWER).get(
        api(stack, f"listings/{listing['id']}/availability"),
        params={"from": day(first), "to": day(last)},
    )
    assert answer.status_code == 200, answer.text
    return [(instant(p["start"]), instant(p["end"])) for p in answer.json()["busy"]]


def found(stack, listing: dict, first: int, last: int) -> bool:
    answer = stack.session("agent", BORROWER).get(
        api(stack, "listings"),
        params={
            "q": listing["title"].split()[-1],
            "available_from": day(first),
            "available_to": day(last),
        },
    )
    assert answer.status_code == 200, answer.text
    return listing["id"] in [item["id"] for item in answer.json()["items"]]


def test_availability_and_search_follow_bookings_and_blackouts(stack):
    listing = publish(stack)
    assert busy(stack, listing, 59, 64) == [] and found(stack, listing, 60, 61)

    booking = booked(stack, BORROWER, listing, day(60), day(62))
    wait_until(lambda: busy(stack, listing, 59, 64) == [(at(60), at(62))], timeout=10)
    assert not found(stack, listing, 60, 61)
    assert not found(stack, listing, 61, 63)
    assert found(stack, listing, 62, 63)

    closed = {"start": at(63).isoformat(), "end": at(64).isoformat()}
    answer = stack.session("manager", LENDER).post(
        api(stack, f"listings/{listing['id']}/blackouts"), json=closed
    )
    assert answer.status_code == 201, answer.text
    assert busy(stack, listing, 59, 64) == [
        (at(60), at(62)),
        (at(63), at(64)),
    ]
    assert not found(stack, listing, 63, 63)
    assert found(stack, listing, 62, 62)

    assert act(stack, booking, "cancel").status_code == 200
    wait_until(lambda: busy(stack, listing, 59, 64) == [(at(63), at(64))], timeout=10)
    assert found(stack, listing, 60, 61)


def test_a_listing_with_several_units_is_busy_only_where_all_are_booked(stack):
    listing = publish(stack, quantity=2)
    booked(stack, BORROWER, listing, day(40), day(43))
    booked(stack, OTHER, listing, day(42), day(45))
    wait_until(lambda: busy(stack, listing, 38, 46) == [(at(42), at(43))], timeout=10)
    assert found(stack, listing, 40, 41)
    assert found(stack, listing, 43, 44)
    assert not found(stack, listing, 42, 42)


# -- who sees a booking -------------------------------------------------------------------


@pytest.fixture(scope="module")
def someone_elses(stack, plough):
    d = fresh_days()
    return booked(stack, BORROWER, plough, day(d), day(d + 1))


@pytest.mark.parametrize(
    ("method", "action", "role"),
    [
        ("GET", "", "agent"),
        ("GET", "", "manager"),
        ("POST", "approve", "manager"),
        ("POST", "reject", "manager"),
        ("POST", "cancel", "agent"),
        ("POST", "check-out", "manager"),
        ("POST", "return", "manager"),
    ],
)
def test_to_any_other_commune_a_booking_does_not_exist(stack, someone_elses, method, action, role):
    stranger = stack.session(role, THIRD)
    path = api(stack, f"bookings/{someone_elses['id']}" + (f"/{action}" if action else ""))
    answer = stranger.request(method, path, json=BODIES.get(action))
    assert_problem(answer, 404)
    assert seen(stack, someone_elses)["status"] == "requested"


@pytest.mark.parametrize(
    ("method", "action", "role"),
    [("GET", "", "agent"), ("POST", "approve", "manager"), ("POST", "cancel", "agent")],
)
@pytest.mark.parametrize("booking_id", ["%00", "not-a-booking", "a%00b"])
def test_an_id_that_cannot_be_a_booking_answers_404(stack, method, action, role, booking_id):
    someone = stack.session(role, LENDER)
    path = api(stack, f"bookings/{booking_id}" + (f"/{action}" if action else ""))
    assert_problem(someone.request(method, path, json=BODIES.get(action)), 404)


@pytest.mark.parametrize(
    ("role", "insee", "params", "listed"),
    [
        ("agent", BORROWER, {}, True),
        ("agent", BORROWER, {"as": "borrower", "status": "requested"}, True),
        ("agent", BORROWER, {"as": "lender"}, False),
        ("agent", BORROWER, {"as": "borrower", "status": "approved"}, False),
        ("manager", LENDER, {"as": "lender"}, True),
        ("manager", LENDER, {"as": "borrower"}, False),
        ("manager", THIRD, {}, False),
    ],
)
def test_a_booking_is_listed_for_its_two_communes_only(
    stack, someone_elses, plough, role, insee, params, listed
):
    answer = stack.session(role, insee).get(
        api(stack, "bookings"), params={"listing_id": plough["id"], "limit": 200} | params
    )
    assert answer.status_code == 200, answer.text
    assert (someone_elses["id"] in [b["id"] for b in answer.json()["items"]]) is listed

"""Billing's money at its edges: half-cent rounding, VAT, quantities of several units,
statements' first and last days, aging, credit notes, payment allocation to the cent and
netting conservation; as properties where one holds, as boundary examples otherwise."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.fr import tva

from contracts.billing import InvoiceStatus, VatRegime
from contracts.bookings import BookingSnapshot, Quote
from contracts.caller import Caller, Role
from contracts.errors import InvalidInput, NotFound
from contracts.french import plural
from services.billing import domain

cents = st.integers(min_value=-(10**9), max_value=10**9)
positive_cents = st.integers(min_value=1, max_value=10**9)
days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


# -- rounding and amounts ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "rounded"),
    [
        ("0.5", 1),
        ("1.5", 2),
        ("2.5", 3),  # half-even would give 2
        ("2.4999", 2),
        ("2.5001", 3),
        ("-2.5", -3),  # half away from zero
        ("-0.4", 0),
        ("7", 7),
    ],
)
def test_cents_are_rounded_half_up(amount, rounded):
    assert domain.round_cents(Decimal(amount)) == rounded


@settings(deadline=None)
@given(st.integers(min_value=-(10**6), max_value=10**6))
def test_a_half_cent_always_rounds_away_from_zero(whole):
    half = Decimal(whole) + (Decimal("0.5") if whole >= 0 else Decimal("-0.5"))
    assert domain.round_cents(half) == whole + (1 if whole >= 0 else -1)


@pytest.mark.parametrize(
    ("cents", "shown"),
    [(12345, "123.45"), (5, "0.05"), (100, "1.00"), (0, "0.00"), (-1, "-0.01")],
)
def test_euros_show_two_decimals(cents, shown):
    amount = domain.euros(cents)
    assert str(amount) == shown
    assert amount * 100 == cents


@pytest.mark.parametrize(
    ("quantity", "plain"), [("2.000", "2"), ("2.500", "2.5"), ("10", "10"), ("0.5", "0.5")]
)
def test_quantities_are_shown_without_trailing_zeros_or_exponent(quantity, plain):
    assert str(domain.plain_quantity(Decimal(quantity))) == plain


# -- VAT and totals ---------------------------------------------------------------------


def test_vat_of_each_regime():
    assert domain.vat_of(VatRegime.STANDARD) == ("S", Decimal("20.00"))
    assert domain.vat_of(VatRegime.NOT_SUBJECT) == ("O", None)


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=99_999_999))
def test_the_french_vat_key_is_the_one_the_tax_office_checks(body):
    siren = luhn.calc_check_digit(f"{body:08d}")
    siren = f"{body:08d}{siren}"
    number = domain.french_vat_number(siren)
    assert number.startswith("FR") and number.endswith(siren) and len(number) == 13
    assert tva.is_valid(number), number


def test_a_french_vat_key_below_ten_keeps_its_leading_zero():
    # 12 + 3 × 62 = 198 ≡ 4 (mod 97): a SIREN ≡ 62 (mod 97) has the key 04
    siren = next(
        s for s in (f"{n:09d}" for n in range(100_000_000, 100_100_000)) if int(s) % 97 == 62
    )
    assert domain.french_vat_number(siren) == f"FR04{siren}"


@pytest.mark.parametrize(
    ("taxable", "rate", "tax"),
    [
        (5, "10", 1),  # 0.5 cent: half up
        (25, "10", 3),  # 2.5 cents: half up, not half even
        (15, "10", 2),
        (4, "10", 0),
        (1, "20.00", 0),  # 0.2
        (3, "20.00", 1),  # 0.6
        (100, "5.5", 6),  # 5.5 cents
    ],
)
def test_vat_is_rounded_half_up_to_the_cent(taxable, rate, tax):
    totals = domain.totals_of([(taxable, "S", Decimal(rate))])
    assert (totals.net_cents, totals.vat_cents, totals.total_cents) == (taxable, tax, taxable + tax)
    (group,) = totals.breakdown
    assert (group.taxable_cents, group.tax_cents, group.rate) == (taxable, tax, Decimal(rate))
    assert group.exemption_reason is None and group.exemption_reason_code is None


vat_lines = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=10**7),
        st.sampled_from([("S", Decimal("20.00")), ("S", Decimal("10")), ("O", None)]),
    ),
    max_size=12,
)


@settings(deadline=None)
@given(vat_lines)
def test_totals_add_up_per_group_and_overall(lines):
    totals = domain.totals_of((amount, category, rate) for amount, (category, rate) in lines)
    groups: dict = defaultdict(int)
    for amount, key in lines:
        groups[key] += amount
    assert totals.net_cents == sum(amount for amount, _ in lines)
    assert totals.total_cents == totals.net_cents + totals.vat_cents
    assert totals.vat_cents == sum(b.tax_cents for b in totals.breakdown)
    assert {(b.category, b.rate): b.taxable_cents for b in totals.breakdown} == groups
    for b in totals.breakdown:
        if b.rate is None:
            assert b.tax_cents == 0
            assert b.exemption_reason == domain.NOT_SUBJECT_REASON
            assert b.exemption_reason_code == domain.NOT_SUBJECT_REASON_CODE
        else:
            assert b.tax_cents == domain.round_cents(Decimal(b.taxable_cents) * b.rate / 100)
    order = [(b.category, b.rate or 0) for b in totals.breakdown]
    assert order == sorted(order)


def test_the_groups_come_in_category_then_rate_order():
    totals = domain.totals_of(
        [(100, "S", Decimal("20.00")), (100, "O", None), (100, "S", Decimal("10"))]
    )
    assert [(b.category, b.rate) for b in totals.breakdown] == [
        ("O", None),
        ("S", Decimal("10")),
        ("S", Decimal("20.00")),
    ]


# -- balance and status -----------------------------------------------------------------


@settings(deadline=None)
@given(cents, cents, cents, cents)
def test_the_balance_is_what_was_invoiced_less_what_came_back(total, credited, paid, settled):
    assert domain.balance_of(total, credited, paid, settled) == total - credited - paid - settled


@pytest.mark.parametrize(
    ("total", "credited", "paid", "settled", "status"),
    [
        (1000, 1000, 0, 0, InvoiceStatus.CANCELLED),
        (1000, 999, 0, 0, InvoiceStatus.ISSUED),
        (1000, 999, 1, 0, InvoiceStatus.PAID),
        (1000, 0, 1000, 0, InvoiceStatus.PAID),
        (1000, 0, 999, 0, InvoiceStatus.PARTIALLY_PAID),
        (1000, 0, 0, 1000, InvoiceStatus.SETTLED),
        (1000, 0, 999, 1, InvoiceStatus.SETTLED),
        (1000, 0, 0, 1, InvoiceStatus.PARTIALLY_PAID),
        (1000, 0, 1, 0, InvoiceStatus.PARTIALLY_PAID),
        (1000, 0, 1001, 0, InvoiceStatus.PAID),  # 1 cent overpaid
        (1000, 0, 0, 0, InvoiceStatus.ISSUED),
    ],
)
def test_status_at_each_edge(total, credited, paid, settled, status):
    assert domain.status_of(total, credited, paid, settled) == status


def test_due_date_and_period():
    assert domain.due_date_for(date(2026, 1, 31)) == date(2026, 3, 2)
    assert domain.due_date_for(date(2026, 12, 15)) == date(2027, 1, 14)
    assert domain.period_of(date(2026, 1, 1)) == "2026-01"
    assert domain.period_of(date(2026, 12, 31)) == "2026-12"


# -- quantities of several units --------------------------------------------------------


def booked(units: int, quantity: int, unit: str = "day", rate: int = 42000, operator: int = 0):
    start = datetime(2026, 1, 11, 23, tzinfo=UTC)
    end = start + (timedelta(days=units) if unit == "day" else timedelta(hours=units))
    return BookingSnapshot(
        booking_id="b-9",
        listing_id="l-9",
        listing_title="Barrières",
        status="returned",
        lender_commune="42044",
        borrower_commune="42218",
        start=start,
        end=end,
        quantity=quantity,
        with_operator=operator > 0,
        quote=Quote(
            units=units,
            pricing_unit=unit,
            unit_rate_cents=rate,
            quantity=quantity,
            rental_cents=units * rate * quantity,
            operator_cents=units * operator * quantity,
            amount_cents=units * (rate + operator) * quantity,
            deposit_cents=0,
        ),
        order_reference=None,
        damages=[],
    )


@settings(max_examples=min(60, settings.default.max_examples), deadline=None)
@given(
    st.integers(min_value=1, max_value=30),
    st.integers(min_value=1, max_value=12),
    st.sampled_from(["day", "hour"]),
    st.integers(min_value=1, max_value=100_000),
    st.integers(min_value=0, max_value=50_000),
)
def test_a_charge_is_units_times_rate_times_quantity(units, quantity, unit, rate, operator):
    drafts = domain.charges_for_return(
        booked(units, quantity, unit, rate, operator), datetime.now(UTC)
    )
    rental = drafts[0]
    assert rental.amount_cents == units * rate * quantity
    assert rental.quantity == units * quantity
    assert rental.unit_price_cents == rate
    assert rental.unit == domain.UNIT_CODES[unit]
    if operator:
        assert drafts[1].amount_cents == units * operator * quantity
        assert drafts[1].quantity * drafts[1].unit_price_cents == drafts[1].amount_cents
    for draft in drafts:
        assert draft.quantity * draft.unit_price_cents == draft.amount_cents


def test_three_units_for_two_days_are_charged_six_day_units():
    (rental,) = domain.charges_for_return(booked(2, 3), datetime(2026, 2, 1, tzinfo=UTC))
    assert (rental.quantity, rental.unit, rental.unit_price_cents) == (6, "DAY", 42000)
    assert rental.amount_cents == 252000
    assert "× 3" in rental.description
    (single,) = domain.charges_for_return(booked(2, 1), datetime(2026, 2, 1, tzinfo=UTC))
    assert "×" not in single.description


def test_a_charge_for_one_unit_keeps_its_unit():
    assert domain._priced(500, 1, "DAY") == (Decimal(1), "DAY", 500)


def test_every_field_of_a_returned_booking_charge():
    snapshot = booked(2, 1, operator=1).model_copy(
        update={"order_reference": "EJ-7", "listing_title": "Nacelle"}
    )
    rental, operator = domain.charges_for_return(snapshot, datetime(2026, 1, 31, 23, tzinfo=UTC))
    assert rental.description == "Location « Nacelle », du 12/01/2026 au 13/01/2026"
    assert (
        operator.description
        == "Conducteur ou opérateur pour « Nacelle », du 12/01/2026 au 13/01/2026"
    )
    for charge in (rental, operator):
        assert (charge.supplier, charge.customer) == ("42044", "42218")
        assert charge.charge_date == date(2026, 2, 1)  # Paris
        assert charge.order_reference == "EJ-7"
    assert (operator.amount_cents, operator.quantity, operator.unit) == (2, 2, "DAY")


def test_a_rental_of_one_cent_is_charged_and_one_of_nothing_is_not():
    free = booked(2, 1, rate=0, operator=100)
    assert [d.kind for d in domain.charges_for_return(free, datetime.now(UTC))] == ["operator"]
    cent = booked(1, 1, rate=1)
    assert [d.amount_cents for d in domain.charges_for_return(cent, datetime.now(UTC))] == [1]


def test_an_unknown_pricing_unit_is_charged_in_pieces():
    snapshot = booked(2, 1)
    snapshot = snapshot.model_copy(
        update={"quote": snapshot.quote.model_copy(update={"pricing_unit": "week"})}
    )
    (rental,) = domain.charges_for_return(snapshot, datetime.now(UTC))
    assert rental.unit == domain.PIECE


def test_every_field_of_a_timesheet_charge():
    from contracts.consultants import TimesheetApproval

    def approved(amount: int, mission: str = "") -> list:
        approval = TimesheetApproval(
            engagement_id="e-1",
            timesheet_id="t-1",
            consultant_id="c-1",
            consultant_name="Claire Martin",
            lender_commune="42095",
            borrower_commune="42218",
            work_date=date(2026, 1, 20),
            days=Decimal("0.5"),
            day_rate_cents=2,
            amount_cents=amount,
            mission=mission,
            order_reference="EJ-9",
        )
        return domain.charges_for_timesheet(approval, datetime(2026, 1, 31, 23, tzinfo=UTC))

    assert approved(0) == []
    (charge,) = approved(1)
    assert charge.description == "Mise à disposition de Claire Martin (0,5 jour, le 20/01/2026)"
    assert (charge.charge_date, charge.order_reference) == (date(2026, 2, 1), "EJ-9")
    assert charge.kind == "consulting"
    (charge,) = approved(1, "Révision du PLU")
    assert charge.description == (
        "Mise à disposition de Claire Martin — Révision du PLU (0,5 jour, le 20/01/2026)"
    )


def test_of_two_names_as_long_the_first_listed_is_the_payer():
    names = {"11111": "Ay", "22222": "Bz"}
    credit = domain.ReceivedCredit(1, "AY BZ", None, "")
    assert domain.counterparty_of(credit, {}, names) == "11111"


def test_the_first_valid_siret_is_from_establishment_number_ten_on():
    for siren in ("217100999", "732829320", "200046977"):  # the first: NIC 00010 is valid
        first = next(n for n in range(10, 100) if luhn.is_valid(f"{siren}{n:05d}"))
        assert domain.siret_for(siren) == f"{siren}{first:05d}"
        second = next(n for n in range(20, 110) if luhn.is_valid(f"{siren}{n:05d}"))
        assert domain.siret_for(siren, 2) == f"{siren}{second:05d}"


def test_a_total_that_does_not_divide_keeps_its_units_at_a_rounded_unit_price():
    assert domain._priced(1000, 3, "DAY") == (Decimal(3), "DAY", 333)
    assert domain._priced(999, 3, "DAY") == (Decimal(3), "DAY", 333)
    assert domain._priced(500, 0, "DAY") == (Decimal(1), domain.PIECE, 500)


def test_the_booked_period_names_its_last_day_not_the_next_midnight():
    one_day = domain.charges_for_return(booked(1, 1), datetime(2026, 2, 1, tzinfo=UTC))[0]
    assert one_day.description.endswith("le 12/01/2026")
    two_days = domain.charges_for_return(booked(2, 1), datetime(2026, 2, 1, tzinfo=UTC))[0]
    assert two_days.description.endswith("du 12/01/2026 au 13/01/2026")
    hours = domain.charges_for_return(booked(3, 1, "hour"), datetime(2026, 2, 1, tzinfo=UTC))[0]
    assert hours.description.endswith("le 12/01/2026 de 00:00 à 03:00")


def test_a_free_cancellation_charges_nothing_and_a_fee_is_one_piece():
    snapshot = booked(2, 1).model_copy(update={"cancellation_fee_cents": 0})
    assert domain.charges_for_cancellation(snapshot, datetime(2026, 1, 5, tzinfo=UTC)) == []
    snapshot = booked(2, 1).model_copy(
        update={"cancellation_fee_cents": 1, "order_reference": "EJ"}
    )
    (fee,) = domain.charges_for_cancellation(snapshot, datetime(2026, 1, 4, 23, tzinfo=UTC))
    assert fee.description == (
        "Frais d'annulation tardive de « Barrières », du 12/01/2026 au 13/01/2026"
    )
    assert (fee.supplier, fee.customer, fee.order_reference) == ("42044", "42218", "EJ")
    assert fee.charge_date == date(2026, 1, 5)
    assert (fee.amount_cents, fee.unit_price_cents, fee.quantity, fee.unit) == (
        1,
        1,
        Decimal(1),
        domain.PIECE,
    )


# -- credit notes -----------------------------------------------------------------------


def creditable(line: int, amount: int, credited: int = 0, rate: str | None = None):
    category = "S" if rate else "O"
    return domain.CreditableLine(
        line, f"line {line}", amount, credited, category, Decimal(rate) if rate else None
    )


def test_a_line_named_twice_is_credited_at_most_what_it_carries():
    lines = [creditable(1, 1000)]
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([(1, 600), (1, 600)], lines, 10_000, False)
    assert [(e["field"], e["type"]) for e in raised.value.errors] == [
        ("lines.1.amount_cents", "over_credit")
    ]
    chosen = domain.credit_note_lines([(1, 600), (1, 400)], lines, 10_000, False)
    assert [amount for _, amount in chosen] == [600, 400]


def test_exactly_what_a_line_carries_and_exactly_what_is_owed_may_be_credited():
    lines = [creditable(1, 1000, credited=300, rate="20.00")]
    chosen = domain.credit_note_lines([(1, 700)], lines, 840, False)  # 700 + 140 VAT
    assert [(line.line, amount) for line, amount in chosen] == [(1, 700)]
    with pytest.raises(InvalidInput):
        domain.credit_note_lines([(1, 701)], lines, 10_000, False)
    with pytest.raises(InvalidInput):
        domain.credit_note_lines([(1, 700)], lines, 839, False)


def test_an_unknown_line_is_refused_and_the_known_ones_still_checked():
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([(9, 1), (1, 2000)], [creditable(1, 1000)], 10_000, False)
    assert [(e["field"], e["type"]) for e in raised.value.errors] == [
        ("lines.0.line", "no_line"),
        ("lines.1.amount_cents", "over_credit"),
    ]


def test_without_lines_a_paid_invoice_asks_which_lines():
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([], [creditable(1, 1000)], 500, False)
    assert raised.value.errors == [
        {
            "field": "lines",
            "message": "give the lines and amounts to credit",
            "type": "lines_required",
        }
    ]


def test_the_whole_invoice_is_what_each_line_still_carries():
    lines = [creditable(1, 1000, credited=1000), creditable(2, 500, credited=100), creditable(3, 1)]
    chosen = domain.credit_note_lines([], lines, 10_000, True)
    assert [(line.line, amount) for line, amount in chosen] == [(2, 400), (3, 1)]


# -- payments ---------------------------------------------------------------------------


def open_invoice(id: str, balance: int, due: date = date(2026, 3, 1)) -> domain.OpenInvoice:
    return domain.OpenInvoice(id, f"42044-2026-{id}", "42218", balance, due)


@settings(deadline=None)
@given(
    positive_cents,
    st.lists(st.integers(min_value=-1000, max_value=10**6), min_size=1, max_size=6),
)
def test_a_payment_is_allocated_to_the_cent(amount, balances):
    invoices = [open_invoice(str(n), b) for n, b in enumerate(balances)]
    allocations = domain.allocate_payment(amount, invoices)
    assert sum(part for _, part in allocations) == amount
    assert all(part > 0 for _, part in allocations)
    ids = [i for i, _ in allocations]
    assert len(ids) == len(set(ids))
    owed = {i.id: max(i.balance_cents, 0) for i in invoices}
    *first, (last_id, last_part) = allocations
    for invoice_id, part in first:
        assert part == owed[invoice_id]  # all but the last are paid off in order
    assert last_part <= owed[last_id] or last_id == invoices[-1].id


def test_one_cent_overpaid_stays_on_the_last_invoice():
    invoices = [open_invoice("A", 1000), open_invoice("B", 500)]
    assert domain.allocate_payment(1501, invoices) == [("A", 1000), ("B", 501)]
    assert domain.allocate_payment(1001, invoices[:1]) == [("A", 1001)]
    assert domain.allocate_payment(1000, invoices) == [("A", 1000)]
    assert domain.allocate_payment(1, [open_invoice("A", 0)]) == [("A", 1)]


def test_an_overpayment_beyond_a_paid_last_invoice_is_its_own_allocation():
    invoices = [open_invoice("A", 1000), open_invoice("B", 0)]
    assert domain.allocate_payment(1001, invoices) == [("A", 1000), ("B", 1)]


def test_the_oldest_of_several_exact_amounts_is_paid_and_a_tie_goes_by_number():
    candidates = [
        open_invoice("000003", 990, due=date(2026, 2, 1)),
        open_invoice("000002", 990, due=date(2026, 2, 1)),
        open_invoice("000001", 990, due=date(2026, 3, 1)),
    ]
    credit = domain.ReceivedCredit(990, "X", None, "")
    assert domain.match_credit(credit, [], candidates) == [("000002", 990)]


# -- statements -------------------------------------------------------------------------


def move(day: date, amount: int, reference: str = "F") -> domain.Movement:
    return domain.Movement(day, "invoice_issued", reference, "", amount)


def test_a_statement_counts_its_first_and_last_days_once():
    start, end = date(2026, 2, 1), date(2026, 2, 28)
    moves = [
        move(start - timedelta(days=1), 1, "before"),
        move(start, 10, "first"),
        move(end, 100, "last"),
        move(end + timedelta(days=1), 1000, "after"),
    ]
    opening, lines, closing = domain.statement_of(moves, start, end)
    assert opening == 1
    assert [line.movement.reference for line in lines] == ["first", "last"]
    assert [line.balance_cents for line in lines] == [11, 111]
    assert closing == 111


def test_an_open_ended_statement_takes_everything_on_its_side():
    moves = [move(date(2026, 1, 1), 5), move(date(2026, 6, 1), 7)]
    assert domain.statement_of(moves, None, None)[0::2] == (0, 12)
    assert domain.statement_of(moves, date(2026, 3, 1), None)[0::2] == (5, 12)
    assert domain.statement_of(moves, None, date(2026, 3, 1))[0::2] == (0, 5)


@settings(deadline=None)
@given(
    st.lists(st.tuples(days, st.integers(-(10**6), 10**6)), max_size=15),
    days,
    st.integers(min_value=0, max_value=400),
)
def test_opening_plus_lines_is_the_closing_balance(movements, start, length):
    end = start + timedelta(days=length)
    moves = [move(day, amount, str(n)) for n, (day, amount) in enumerate(movements)]
    opening, lines, closing = domain.statement_of(moves, start, end)
    assert opening == sum(a for d, a in movements if d < start)
    assert closing == opening + sum(line.movement.amount_cents for line in lines)
    assert closing == sum(a for d, a in movements if d <= end)
    assert len(lines) == sum(1 for d, _ in movements if start <= d <= end)
    balance = opening
    for line in lines:
        balance += line.movement.amount_cents
        assert line.balance_cents == balance
    assert [line.movement.date for line in lines] == sorted(line.movement.date for line in lines)


# -- aging ------------------------------------------------------------------------------


def test_two_invoices_in_one_bucket_add_up():
    as_of = date(2026, 2, 15)
    rows = domain.aging(
        [
            ("42095", date(2026, 1, 1), 0),
            ("42218", date(2026, 1, 1), 1000),
            ("42218", date(2026, 1, 2), 1),
            ("42218", as_of, 7),
        ],
        as_of,
    )
    assert rows == {
        "42218": {
            "not_due": 0,
            "days_0_30": 7,
            "days_31_60": 1001,
            "days_61_90": 0,
            "days_over_90": 0,
        }
    }


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), days, st.integers(-1000, 10**6)), max_size=20
    ),
    days,
)
def test_aging_keeps_every_open_cent_in_exactly_one_bucket(balances, as_of):
    rows = domain.aging(balances, as_of)
    for counterparty in {c for c, _, _ in balances}:
        owed = sum(cents for c, _, cents in balances if c == counterparty and cents > 0)
        if owed:
            assert sum(rows[counterparty].values()) == owed
            assert list(rows[counterparty]) == list(domain.AGING_BUCKETS)
        else:
            assert counterparty not in rows


# -- netting ----------------------------------------------------------------------------

debts = st.lists(
    st.tuples(st.sampled_from("ABCDE"), st.sampled_from("ABCDE"), st.integers(1, 10**6)),
    max_size=12,
)


@settings(deadline=None)
@given(debts)
def test_net_positions_conserve_money_and_leave_out_the_even(debts):
    positions = domain.net_positions(debts)
    assert sum(positions.values()) == 0
    assert 0 not in positions.values()
    assert list(positions) == sorted(positions)
    for commune in "ABCDE":
        owed = sum(c for creditor, _, c in debts if creditor == commune)
        owes = sum(c for _, debtor, c in debts if debtor == commune)
        assert positions.get(commune, 0) == owed - owes


def test_the_largest_debtor_pays_the_largest_creditor_first():
    positions = {"A": -300, "B": -700, "C": 400, "D": 600}
    assert domain.settling_transfers(positions) == [
        ("B", "D", 600),
        ("B", "C", 100),
        ("A", "C", 300),
    ]


def test_debtors_and_creditors_take_turns_largest_first_then_by_name():
    many_payers = {"A": -100, "B": -200, "C": -300, "D": 600}
    assert domain.settling_transfers(many_payers) == [
        ("C", "D", 300),
        ("B", "D", 200),
        ("A", "D", 100),
    ]
    many_payees = {"D": -600, "A": 100, "B": 200, "C": 300}
    assert domain.settling_transfers(many_payees) == [
        ("D", "C", 300),
        ("D", "B", 200),
        ("D", "A", 100),
    ]
    ties = {"B": -300, "A": -300, "D": 250, "C": 250, "E": 100}
    assert domain.settling_transfers(ties) == [
        ("A", "C", 250),
        ("A", "D", 50),
        ("B", "D", 200),
        ("B", "E", 100),
    ]


def test_a_commune_at_zero_neither_pays_nor_receives():
    assert domain.settling_transfers({"A": -5, "B": 0, "C": 5}) == [("A", "C", 5)]
    assert domain.settling_transfers({"A": -5, "B": 0, "C": 3, "D": 2}) == [
        ("A", "C", 3),
        ("A", "D", 2),
    ]


def test_a_settlement_covers_invoices_in_the_order_given():
    invoices = [
        domain.OpenDebt("i1", "C", "A", 500),
        domain.OpenDebt("i2", "C", "A", 300),
        domain.OpenDebt("i3", "A", "B", 200),
    ]
    trail = domain.allocate_settlement(invoices, [("t1", "A", "C", 600)])
    assert trail == [("i1", 500, "t1"), ("i2", 100, "t1"), ("i2", 200, None), ("i3", 200, None)]
    with pytest.raises(ValueError):
        domain.allocate_settlement(invoices[:1], [("t1", "A", "C", 600)])


# -- who sees an invoice ----------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_finance_and_managers_of_either_commune_see_an_invoice(role):
    for commune in ("42044", "42218", "42095"):
        caller = Caller(user_id="u", commune=commune, roles=frozenset({role}))
        allowed = commune != "42095" and role in (Role.FINANCE, Role.MANAGER)
        if allowed:
            domain.ensure_party(caller, "42044", "42218", "credit note")
        else:
            with pytest.raises(NotFound, match="No such credit note"):
                domain.ensure_party(caller, "42044", "42218", "credit note")


def test_a_one_cent_balance_is_paid_and_the_next_invoice_gets_the_rest():
    invoices = [open_invoice("A", 1), open_invoice("B", 500)]
    assert domain.allocate_payment(2, invoices) == [("A", 1), ("B", 1)]
    three = [open_invoice("A", 999), open_invoice("B", 500), open_invoice("C", 500)]
    assert domain.allocate_payment(1000, three) == [("A", 999), ("B", 1)]


def test_two_units_and_a_mission_are_named_in_the_description():
    (rental,) = domain.charges_for_return(booked(1, 2), datetime(2026, 2, 1, tzinfo=UTC))
    assert rental.description == "Location « Barrières » × 2, le 12/01/2026"


def test_every_line_over_credited_is_named():
    lines = [creditable(1, 100), creditable(2, 100)]
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([(1, 101), (2, 102)], lines, 10_000, False)
    assert raised.value.detail == "The credit note does not fit the invoice"
    assert raised.value.errors == [
        {
            "field": "lines.0.amount_cents",
            "message": "at most 100 cents remain to credit on line 1",
            "type": "over_credit",
        },
        {
            "field": "lines.1.amount_cents",
            "message": "at most 100 cents remain to credit on line 2",
            "type": "over_credit",
        },
    ]
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([(1, 100)], lines, 99, False)
    assert raised.value.detail == "A credit note cannot exceed what is still owed"
    assert raised.value.errors == [
        {"field": "lines", "message": "100 cents credited, 99 still owed", "type": "over_credit"}
    ]


# -- late returns, to the day and the cent ------------------------------------------------


@pytest.mark.parametrize(("days_late", "per_day"), [(1, 1), (1, 5000), (3, 1)])
def test_a_return_one_day_late_pays_one_day_and_a_one_cent_fee_is_charged(days_late, per_day):
    snapshot = booked(2, 1)
    quote = snapshot.quote.model_copy(update={"late_fee_per_day_cents": per_day})
    late_return = snapshot.model_copy(update={"quote": quote, "days_late": days_late})
    drafts = domain.charges_for_return(late_return, datetime(2026, 2, 1, tzinfo=UTC))
    (late,) = [d for d in drafts if d.kind == "late_fee"]
    assert (late.quantity, late.unit_price_cents, late.amount_cents) == (
        days_late,
        per_day,
        days_late * per_day,
    )
    title = snapshot.listing_title
    assert late.description.startswith(
        f"Retard de restitution de « {title} » : {days_late} {plural(days_late, 'jour')} après "
    )
    on_time = snapshot.model_copy(update={"quote": quote, "days_late": 0})
    assert "late_fee" not in [d.kind for d in domain.charges_for_return(on_time, datetime.now(UTC))]


# -- a netting's transfers and audit trail, exactly --------------------------------------


def test_equal_and_opposite_positions_are_paired_first():
    positions = {"42001": -5, "42002": -4, "42003": 4, "42004": 3, "42005": 2}
    assert domain.settling_transfers(positions) == [
        ("42002", "42003", 4),
        ("42001", "42004", 3),
        ("42001", "42005", 2),
    ]


def test_the_transfers_do_not_depend_on_the_order_the_positions_come_in():
    positions = {"42002": -5, "42001": -5, "42004": 5, "42003": 5}
    expected = [("42001", "42003", 5), ("42002", "42004", 5)]
    assert domain.settling_transfers(positions) == expected
    assert domain.settling_transfers(dict(reversed(positions.items()))) == expected


def test_positions_that_do_not_balance_are_refused():
    with pytest.raises(ValueError, match=r"^positions do not balance$"):
        domain.settling_transfers({"42001": -5, "42002": 4})


def test_what_a_transfer_leaves_of_an_invoice_one_cent_is_compensated():
    debts = [
        domain.OpenDebt("i1", "42002", "42001", 2),  # 42001 owes 42002 two cents
        domain.OpenDebt("i2", "42003", "42002", 1),
        domain.OpenDebt("i3", "42001", "42003", 1),
    ]
    transfers = [("t1", "42001", "42002", 1)]
    assert domain.allocate_settlement(debts, transfers) == [
        ("i1", 1, "t1"),
        ("i1", 1, None),
        ("i2", 1, None),
        ("i3", 1, None),
    ]


def test_transfers_beyond_what_their_payers_owe_are_refused():
    debts = [domain.OpenDebt("i1", "42002", "42001", 2)]
    with pytest.raises(ValueError, match=r"^transfers exceed what their payers owe$"):
        domain.allocate_settlement(debts, [("t1", "42001", "42002", 3)])

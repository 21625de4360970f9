"""Billing rules: what is charged for a booking or a timesheet, numbers, totals and VAT,
invoice status, credit notes, billing profiles, payment matching, statements and aging."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from contracts.billing import BillingProfileInput, ChargeKind, InvoiceStatus
from contracts.bookings import BookingSnapshot, Damage, Quote
from contracts.consultants import TimesheetApproval
from contracts.errors import InvalidInput
from services.billing import domain

RETURNED_AT = datetime(2026, 1, 31, 23, 30, tzinfo=UTC)  # already February in Paris


def snowplough(**changes) -> BookingSnapshot:
    fields = dict(
        booking_id="b-1",
        listing_id="l-1",
        listing_title="Chasse-neige Unimog",
        status="returned",
        lender_commune="42044",
        borrower_commune="42218",
        start=datetime(2026, 1, 11, 23, tzinfo=UTC),  # 12/01 at midnight in Paris
        end=datetime(2026, 1, 13, 23, tzinfo=UTC),
        quantity=1,
        with_operator=True,
        quote=Quote(
            units=2,
            pricing_unit="day",
            unit_rate_cents=42000,
            quantity=1,
            rental_cents=84000,
            operator_cents=64000,
            amount_cents=148000,
            deposit_cents=150000,
        ),
        order_reference="EJ-2026-0042",
        damages=[Damage(description="Rétroviseur gauche", amount_cents=15000)],
    )
    return BookingSnapshot(**(fields | changes))


def approval(**changes) -> TimesheetApproval:
    fields = dict(
        engagement_id="e-1",
        timesheet_id="t-1",
        consultant_id="c-1",
        consultant_name="Claire Martin",
        lender_commune="42095",
        borrower_commune="42218",
        work_date=date(2026, 1, 20),
        days=Decimal("2.5"),
        day_rate_cents=45000,
        amount_cents=112500,
        mission="Révision du PLU",
    )
    return TimesheetApproval(**(fields | changes))


# -- charges ----------------------------------------------------------------------------


def test_a_returned_booking_is_charged_its_rental_operator_and_each_damage():
    charges = domain.charges_for_return(snowplough(), RETURNED_AT)

    assert [c.kind for c in charges] == [ChargeKind.RENTAL, ChargeKind.OPERATOR, ChargeKind.DAMAGE]
    rental, operator, damage = charges
    assert (rental.quantity, rental.unit, rental.unit_price_cents, rental.amount_cents) == (
        2,
        "DAY",
        42000,
        84000,
    )
    assert (operator.quantity, operator.unit_price_cents, operator.amount_cents) == (
        2,
        32000,
        64000,
    )
    assert (damage.quantity, damage.unit, damage.amount_cents) == (1, "C62", 15000)
    assert "du 12/01/2026 au 13/01/2026" in rental.description
    assert "Rétroviseur gauche" in damage.description
    for charge in charges:
        assert (charge.supplier, charge.customer) == ("42044", "42218")
        assert charge.order_reference == "EJ-2026-0042"
        assert charge.quantity * charge.unit_price_cents == charge.amount_cents
    assert {c.source_reference for c in charges} == {
        "booking:b-1:rental",
        "booking:b-1:operator",
        "booking:b-1:damage:1",
    }


def test_the_charge_date_is_when_the_event_occurred_in_paris():
    charge = domain.charges_for_return(snowplough(), RETURNED_AT)[0]
    assert charge.charge_date == date(2026, 2, 1)
    assert charge.period == "2026-02"


def test_a_booking_without_operator_or_damage_is_charged_its_rental_only():
    quote = snowplough().quote.model_copy(update={"operator_cents": 0, "amount_cents": 84000})
    charges = domain.charges_for_return(snowplough(quote=quote, damages=[]), RETURNED_AT)
    assert [c.kind for c in charges] == [ChargeKind.RENTAL]


def test_a_rental_that_does_not_divide_into_units_keeps_its_days_and_prices_them_exactly():
    quote = snowplough().quote.model_copy(update={"rental_cents": 84001, "operator_cents": 0})
    rental = domain.charges_for_return(snowplough(quote=quote, damages=[]), RETURNED_AT)[0]
    assert (rental.quantity, rental.unit, rental.amount_cents) == (2, "DAY", 84001)
    # the document's unit price: the fewest decimals whose product is the amount to the cent
    assert domain.unit_price(rental.amount_cents, rental.quantity) == Decimal("420.005")


@pytest.mark.parametrize(
    ("cents", "quantity", "price"),
    [
        (84000, "2", "420.00"),
        (10000, "3", "33.333"),
        (100, "0.5", "2.00"),
        (45001, "2.5", "180.0040"),
        (1, "7", "0.001"),
    ],
)
def test_a_unit_price_times_the_quantity_is_the_line_amount_to_the_cent(cents, quantity, price):
    found = domain.unit_price(cents, Decimal(quantity))
    assert found == Decimal(price)
    assert domain.round_cents(found * Decimal(quantity) * 100) == cents


def test_hourly_bookings_are_charged_in_hours():
    quote = Quote(
        units=3,
        pricing_unit="hour",
        unit_rate_cents=6500,
        quantity=1,
        rental_cents=19500,
        operator_cents=0,
        amount_cents=19500,
        deposit_cents=0,
    )
    booking = snowplough(
        quote=quote,
        damages=[],
        start=datetime(2026, 3, 2, 8, tzinfo=UTC),
        end=datetime(2026, 3, 2, 11, tzinfo=UTC),
    )
    rental = domain.charges_for_return(booking, RETURNED_AT)[0]
    assert (rental.quantity, rental.unit) == (3, "HUR")
    assert "le 02/03/2026 de 09:00 à 12:00" in rental.description


def test_a_cancellation_is_charged_only_its_late_fee():
    assert domain.charges_for_cancellation(snowplough(status="cancelled"), RETURNED_AT) == []
    fee = domain.charges_for_cancellation(
        snowplough(status="cancelled", cancellation_fee_cents=10000), RETURNED_AT
    )
    assert [(c.kind, c.amount_cents, c.source_reference) for c in fee] == [
        (ChargeKind.CANCELLATION_FEE, 10000, "booking:b-1:cancellation_fee")
    ]


def test_approved_days_are_charged_days_times_day_rate():
    (charge,) = domain.charges_for_timesheet(approval(), RETURNED_AT)
    assert (charge.supplier, charge.customer) == ("42095", "42218")
    assert (charge.quantity, charge.unit, charge.unit_price_cents, charge.amount_cents) == (
        Decimal("2.5"),
        "DAY",
        45000,
        112500,
    )
    assert charge.source_reference == "timesheet:t-1"
    assert "Claire Martin" in charge.description
    assert "(2,5 jours, le 20/01/2026)" in charge.description


# -- numbers, totals, VAT ---------------------------------------------------------------


def test_numbers_are_per_supplier_and_year_with_six_digits():
    assert domain.document_number("42044", 2026, 1) == "42044-2026-000001"
    assert domain.document_number("2A004", 2026, 123456) == "2A004-2026-123456"
    assert domain.document_number("42044", 2026, 7, "credit_note") == "42044-AV-2026-000007"


def test_the_invoice_order_reference_is_the_one_its_lines_share():
    assert domain.common_order_reference(["EJ-1", None, "EJ-1"]) == "EJ-1"
    assert domain.common_order_reference(["EJ-1", "EJ-2"]) is None
    assert domain.common_order_reference([None]) is None


def test_not_subject_to_vat_is_category_o_with_its_exemption_reason():
    totals = domain.totals_of([(84000, *domain.vat_of("not_subject")), (15000, "O", None)])
    assert (totals.net_cents, totals.vat_cents, totals.total_cents) == (99000, 0, 99000)
    (vat,) = totals.breakdown
    assert (vat.category, vat.rate, vat.taxable_cents, vat.tax_cents) == ("O", None, 99000, 0)
    assert "256 B" in vat.exemption_reason


def test_standard_vat_is_rounded_once_per_rate_not_per_line():
    # 3 × 0.05 € at 20 %: per line it would be 3 × 0.01 €; on the sum it is 0.03 €
    lines = [(5, "S", Decimal("20.00"))] * 3
    assert domain.totals_of(lines).vat_cents == 3
    lines = [(333, "S", Decimal("20.00"))] * 3  # 9.99 € at 20 % = 1.998 € -> 2.00 €
    totals = domain.totals_of(lines)
    assert (totals.net_cents, totals.vat_cents, totals.total_cents) == (999, 200, 1199)


def test_the_french_vat_number_of_a_siren():
    assert domain.french_vat_number("214200446") == "FR18214200446"


@pytest.mark.parametrize(
    ("credited", "paid", "settled", "status"),
    [
        (0, 0, 0, InvoiceStatus.ISSUED),
        (0, 400, 0, InvoiceStatus.PARTIALLY_PAID),
        (0, 1000, 0, InvoiceStatus.PAID),
        (0, 1500, 0, InvoiceStatus.PAID),
        (300, 700, 0, InvoiceStatus.PAID),
        (300, 0, 0, InvoiceStatus.ISSUED),
        (1000, 0, 0, InvoiceStatus.CANCELLED),
        (0, 400, 600, InvoiceStatus.SETTLED),
    ],
)
def test_status_follows_what_is_still_owed(credited, paid, settled, status):
    assert domain.status_of(1000, credited, paid, settled) == status


def test_an_overpayment_leaves_a_negative_balance():
    assert domain.balance_of(1000, 0, 1500, 0) == -500


# -- credit notes -----------------------------------------------------------------------

LINES = [
    domain.CreditableLine(1, "Location", 84000, 0, "O", None),
    domain.CreditableLine(2, "Dommage", 15000, 5000, "O", None),
]


def test_a_credit_note_credits_what_a_line_still_carries():
    chosen = domain.credit_note_lines([(2, 10000)], LINES, balance_cents=94000, fully_open=False)
    assert [(line.line, cents) for line, cents in chosen] == [(2, 10000)]


def test_a_credit_note_refuses_more_than_a_line_carries_with_the_field():
    with pytest.raises(InvalidInput) as refused:
        domain.credit_note_lines([(2, 10001)], LINES, balance_cents=94000, fully_open=False)
    assert refused.value.errors[0]["field"] == "lines.0.amount_cents"
    with pytest.raises(InvalidInput) as refused:
        domain.credit_note_lines([(3, 100)], LINES, balance_cents=94000, fully_open=False)
    assert refused.value.errors[0]["field"] == "lines.0.line"


def test_a_credit_note_never_exceeds_what_is_owed():
    with pytest.raises(InvalidInput) as refused:
        domain.credit_note_lines([(1, 84000)], LINES, balance_cents=50000, fully_open=False)
    assert refused.value.errors[0]["type"] == "over_credit"


def test_no_lines_credits_the_whole_invoice_only_while_nothing_was_paid():
    whole = domain.credit_note_lines([], LINES, balance_cents=94000, fully_open=True)
    assert [(line.line, cents) for line, cents in whole] == [(1, 84000), (2, 10000)]
    with pytest.raises(InvalidInput):
        domain.credit_note_lines([], LINES, balance_cents=50000, fully_open=False)


# -- billing profiles -------------------------------------------------------------------

PROFILE = dict(
    siret="21420044600018",
    iban="FR28 3000 1007 94C4 2044 0000 028",
    bic="BDFEFRPPCCT",
    address={"street": "Place Jean-Jaurès", "postal_code": "42500", "city": "Le Chambon"},
)


def errors_of(**changes) -> dict[str, str]:
    profile = BillingProfileInput.model_validate(PROFILE | changes)
    return {e["field"]: e["type"] for e in domain.profile_errors(profile, "214200446")}


def test_a_valid_profile_has_no_errors():
    assert domain.siret_for("214200446") == "21420044600018"
    assert errors_of(iban="FR283000100794C420440000028") == {}


@pytest.mark.parametrize(
    ("siret", "kind"),
    [
        ("2142004460001", "siret_format"),
        ("21420044600019", "siret_checksum"),
        (domain.siret_for("214202186"), "siret_siren"),  # Saint-Étienne's, not this commune's
    ],
)
def test_the_siret_is_14_luhn_digits_starting_with_the_communes_siren(siret, kind):
    assert errors_of(siret=siret) == {"siret": kind}


def test_iban_bic_and_a_required_service_code_are_checked():
    assert errors_of(iban="FR7630001007941234567890186", bic="BDFEXXPP") == {
        "iban": "iban",
        "bic": "bic",
    }
    assert errors_of(service_code_required=True) == {"service_code": "service_code"}


# -- payments ---------------------------------------------------------------------------


def invoice(number: str, balance: int, customer: str = "42218", due=date(2026, 3, 1)):
    return domain.OpenInvoice(number, number, customer, balance, due)


def test_invoice_numbers_are_found_however_the_bank_spaced_them():
    text = "VIR SEPA FACT 42044-2026-000001 ET 42044 2026 000002, REF 142044-2026-0000031"
    assert domain.invoice_numbers_in(text) == ["42044-2026-000001", "42044-2026-000002"]
    assert domain.invoice_numbers_in("facture 2a004/2026/000012") == ["2A004-2026-000012"]


def test_a_payment_naming_invoices_pays_them_in_order_and_keeps_the_excess_on_the_last():
    named = [invoice("A", 1000), invoice("B", 500)]
    credit = domain.ReceivedCredit(1200, "X", None, "A B")
    assert domain.match_credit(credit, named, []) == [("A", 1000), ("B", 200)]
    credit = domain.ReceivedCredit(2000, "X", None, "A B")
    assert domain.match_credit(credit, named, []) == [("A", 1000), ("B", 1000)]


def test_without_a_number_the_oldest_open_invoice_of_exactly_that_amount_is_paid():
    candidates = [
        invoice("late", 990, due=date(2026, 3, 1)),
        invoice("early", 990, due=date(2026, 2, 1)),
        invoice("other", 500),
    ]
    credit = domain.ReceivedCredit(990, "COMMUNE DE SAINT ETIENNE", None, "loyer")
    assert domain.match_credit(credit, [], candidates) == [("early", 990)]
    assert domain.match_credit(domain.ReceivedCredit(991, "", None, ""), [], candidates) == []


def test_the_payer_is_found_by_iban_else_by_the_longest_commune_name_in_its_name():
    ibans = {"FR283000100794C422180000093": "42218"}
    names = {"42218": "Saint-Étienne", "43222": "Saint-Étienne-Lardeyrol"}
    by_iban = domain.ReceivedCredit(1, "TRESOR PUBLIC", "fr28 3000 1007 94c4 2218 0000 093", "")
    assert domain.counterparty_of(by_iban, ibans, names) == "42218"
    by_name = domain.ReceivedCredit(1, "COMMUNE DE ST-ETIENNE-LARDEYROL", None, "")
    assert domain.counterparty_of(by_name, ibans, names) is None
    by_name = domain.ReceivedCredit(1, "MAIRIE DE SAINT-ETIENNE-LARDEYROL", None, "")
    assert domain.counterparty_of(by_name, ibans, names) == "43222"


# -- statements and aging ---------------------------------------------------------------


def test_a_statement_carries_the_opening_and_a_running_balance():
    moves = [
        domain.Movement(date(2026, 1, 5), "invoice_issued", "F1", "", 1000),
        domain.Movement(date(2026, 2, 5), "invoice_received", "G1", "", -300),
        domain.Movement(date(2026, 2, 10), "payment_received", "F1", "", -400),
        domain.Movement(date(2026, 3, 1), "invoice_issued", "F2", "", 50),
    ]
    opening, lines, closing = domain.statement_of(moves, date(2026, 2, 1), date(2026, 2, 28))
    assert opening == 1000
    assert [line.balance_cents for line in lines] == [700, 300]
    assert closing == 300


@pytest.mark.parametrize(
    ("late_days", "bucket"),
    [
        (-1, "not_due"),
        (0, "days_0_30"),
        (30, "days_0_30"),
        (31, "days_31_60"),
        (60, "days_31_60"),
        (61, "days_61_90"),
        (90, "days_61_90"),
        (91, "days_over_90"),
    ],
)
def test_aging_buckets_by_days_past_due(late_days, bucket):
    due = date(2026, 1, 31)
    as_of = date.fromordinal(due.toordinal() + late_days)
    assert domain.aging_bucket(due, as_of) == bucket


def test_aging_sums_per_counterparty_and_bucket():
    rows = domain.aging(
        [
            ("42218", date(2026, 1, 1), 1000),
            ("42218", date(2026, 3, 1), 200),
            ("42095", date(2025, 9, 1), 50),
            ("42095", date(2025, 9, 1), 0),
        ],
        date(2026, 2, 15),
    )
    assert rows["42218"]["days_31_60"] == 1000 and rows["42218"]["not_due"] == 200
    assert rows["42095"]["days_over_90"] == 50


def test_only_finance_and_managers_of_the_two_communes_see_an_invoice():
    from contracts.caller import Caller
    from contracts.errors import NotFound

    def who(commune: str, *roles: str) -> Caller:
        return Caller(user_id="u", commune=commune, roles=frozenset(roles))

    domain.ensure_party(who("42044", "finance"), "42044", "42218")
    domain.ensure_party(who("42218", "manager"), "42044", "42218")
    for stranger in (who("42095", "finance"), who("42218", "agent"), who("42218", "operator")):
        with pytest.raises(NotFound):
            domain.ensure_party(stranger, "42044", "42218")

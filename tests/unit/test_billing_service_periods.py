"""Charges carry the service they charge (a loan's hand-over to its return), are invoiced in
the period that service ends in, late returns pay the listing's fee per day, and invoice
lines state their period in UBL (BG-26) and stay valid EN 16931."""

from __future__ import annotations

from datetime import UTC, date, datetime

from lxml import etree

from contracts.billing import ChargeKind
from services.billing import domain, ubl
from services.billing.validation import problems
from tests.unit.test_billing_domain import approval, snowplough
from tests.unit.test_billing_ubl import NS, SNOWPLOUGH, invoice_of

HANDED_OVER = datetime(2026, 1, 12, 7, tzinfo=UTC)


def returned(at: datetime, late_fee_per_day_cents: int = 0, days_late: int = 0):
    booking = snowplough(checked_out_at=HANDED_OVER, returned_at=at, days_late=days_late)
    quote = booking.quote.model_copy(update={"late_fee_per_day_cents": late_fee_per_day_cents})
    return booking.model_copy(update={"quote": quote})


def test_each_charge_of_a_return_carries_the_hand_over_to_return():
    back = datetime(2026, 1, 13, 16, tzinfo=UTC)
    charges = domain.charges_for_return(returned(back), datetime(2026, 1, 13, 16, 5, tzinfo=UTC))
    assert {(c.service_start, c.service_end) for c in charges} == {
        (date(2026, 1, 12), date(2026, 1, 13))
    }
    assert {c.charge_date for c in charges} == {date(2026, 1, 13)}


def test_a_return_at_2330_utc_on_new_years_eve_is_invoiced_in_january():
    back = datetime(2026, 12, 31, 23, 30, tzinfo=UTC)  # 00:30 on 1 January in Paris
    (rental, *_) = domain.charges_for_return(returned(back), back)
    assert rental.service_end == date(2027, 1, 1)
    assert rental.period == "2027-01"


def test_an_event_from_before_service_periods_is_charged_as_it_was():
    occurred = datetime(2026, 1, 13, 16, tzinfo=UTC)
    charges = domain.charges_for_return(snowplough(), occurred)
    assert all(c.service_start is None and c.service_end is None for c in charges)
    assert {c.period for c in charges} == {"2026-01"}


def test_a_late_return_pays_each_started_day_at_the_agreed_rate():
    back = datetime(2026, 1, 15, 9, tzinfo=UTC)
    charges = domain.charges_for_return(returned(back, 5000, days_late=2), back)
    (late,) = [c for c in charges if c.kind == ChargeKind.LATE_FEE]
    assert (late.quantity, late.unit, late.unit_price_cents, late.amount_cents) == (
        2,
        "DAY",
        5000,
        10000,
    )
    assert late.source_reference == "booking:b-1:late_fee"
    # the two days it charges, after the booking's last day (13 January), not the whole loan
    assert (late.service_start, late.service_end) == (date(2026, 1, 14), date(2026, 1, 15))


def test_no_late_fee_on_time_or_without_a_rate():
    back = datetime(2026, 1, 15, 9, tzinfo=UTC)
    for booking in (returned(back, 5000, days_late=0), returned(back, 0, days_late=2)):
        kinds = {c.kind for c in domain.charges_for_return(booking, back)}
        assert ChargeKind.LATE_FEE not in kinds


def test_a_charge_is_invoiced_in_the_period_its_service_ends_never_before_it_is_recorded():
    assert domain.invoicing_period(date(2026, 2, 1), date(2026, 2, 1)) == "2026-02"
    assert domain.invoicing_period(date(2026, 3, 2), date(2026, 2, 27)) == "2026-03"
    assert domain.invoicing_period(date(2026, 2, 1), None) == "2026-02"
    # days worked in January, approved in February: invoiced in February, with their date
    (charge,) = domain.charges_for_timesheet(
        approval(work_date=date(2026, 1, 30)), datetime(2026, 2, 2, 9, tzinfo=UTC)
    )
    assert charge.period == "2026-02"
    assert (charge.service_start, charge.service_end) == (date(2026, 1, 30), date(2026, 1, 30))


def test_invoice_lines_state_their_period_in_ubl_and_stay_valid():
    invoice = invoice_of(SNOWPLOUGH)
    first = invoice.lines[0].model_copy(
        update={"service_start": date(2026, 2, 12), "service_end": date(2026, 2, 14)}
    )
    invoice = invoice.model_copy(update={"lines": [first, *invoice.lines[1:]]})
    document = ubl.invoice_xml(invoice)
    assert problems(document) == []
    lines = etree.fromstring(document).findall("cac:InvoiceLine", NS)
    period = lines[0].find("cac:InvoicePeriod", NS)
    assert period.findtext("cbc:StartDate", namespaces=NS) == "2026-02-12"
    assert period.findtext("cbc:EndDate", namespaces=NS) == "2026-02-14"
    assert lines[1].find("cac:InvoicePeriod", NS) is None  # a line without a service period

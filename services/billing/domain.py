"""Billing rules: charges from events, numbering, totals and VAT, payment matching, aging
and netting. Pure: no I/O; money is integer cents, quantities and rates are Decimal."""

from __future__ import annotations

import dataclasses
import functools
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NamedTuple, Protocol

from stdnum import bic, iban, luhn
from stdnum.exceptions import ValidationError as NumberError

from contracts.billing import (
    INVOICE_TRANSITIONS,
    OPEN_STATUSES,
    PROFILE_INCOMPLETE,
    BillingProfileInput,
    ChargeKind,
    InvoiceAction,
    InvoiceLineView,
    InvoiceStatus,
    Party,
    SkippedPair,
    StatementQuery,
    VatBreakdown,
    VatRegime,
    invoice_allows,
)
from contracts.bookings import BookingSnapshot
from contracts.caller import Caller, Role
from contracts.clock import PARIS, paris_date
from contracts.consultants import TimesheetApproval
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from contracts.errors import field_error as _error
from contracts.french import commune_title, decimal_comma, plural
from infra.communes import communes, fold

# the legal payment period of French local authorities (Code de la commande publique R2192-10)
PAYMENT_TERMS_DAYS = 30
STANDARD_VAT_RATE = Decimal("20.00")
# local authorities are not VAT-liable for their administrative activity (CGI art. 256 B)
NOT_SUBJECT_REASON = "TVA non applicable, article 256 B du CGI"
NOT_SUBJECT_REASON_CODE = "VATEX-EU-O"
UNIT_CODES = {"day": "DAY", "hour": "HUR"}  # UN/ECE recommendation 20
PIECE = "C62"
# a damage compensates a loss, nothing is supplied in return: outside the scope of VAT
# whatever the supplier's regime (CJEU C-277/05 Société thermale d'Eugénie-les-Bains;
# BOI-TVA-BASE-10-10-10 §§ 380-400 on "indemnités")
OUT_OF_SCOPE_KINDS = frozenset({ChargeKind.DAMAGE})
OUT_OF_SCOPE_REASON = "Hors champ de la TVA : indemnité réparant un préjudice, sans contrepartie"
# the highest number of decimals a unit price has on a document (BR-FR-DEC-03: 4)
PRICE_DECIMALS = 4
INVOICE_SERIES, CREDIT_NOTE_SERIES = "invoice", "credit_note"


READERS = (Role.FINANCE, Role.MANAGER)


def new_id() -> str:
    return str(uuid.uuid4())


def commune_name(code: str) -> str:
    commune = communes().get(code)
    return commune.name if commune else code


# -- who may do what --------------------------------------------------------------------


def ensure_party(caller: Caller, supplier: str, customer: str, what: str = "invoice") -> None:
    """Only the finance teams and managers of the two communes concerned see an invoice or
    a credit note: to anyone else it does not exist."""
    if caller.commune not in (supplier, customer) or not caller.has(*READERS):
        raise NotFound(f"No such {what}")


def ensure_may_credit(caller: Caller, supplier: str) -> None:
    if caller.commune != supplier or not caller.has(Role.FINANCE):
        raise Forbidden("Only the issuing commune's finance team credits an invoice")


def ensure_receives(caller: Caller, supplier: str) -> None:
    """A payment is recorded (and reversed) by the commune it is paid to."""
    if caller.commune != supplier:
        raise Forbidden("Payments are recorded by the commune that receives them")


def ensure_pays(caller: Caller, customer: str) -> None:
    """A payment order is the paying commune's own act, by its finance team."""
    if caller.commune != customer or not caller.has(Role.FINANCE):
        raise Forbidden("Payment orders are recorded by the paying commune's finance team")


def ensure_reversed_by_hand(source: str, statement_line_id: str | None) -> None:
    """A payment read on a bank statement is undone by unmatching its line: the money did
    arrive, it is only the invoice it was matched to that was wrong. A credit used moves
    money between two invoices: it stays."""
    if source == "credit":
        raise Conflict(
            "This payment moved the payer's credit from another invoice: it is not reversed",
            source=source,
        )
    if statement_line_id is not None:
        raise Conflict(
            "This payment comes from a bank statement line: unmatch the line instead",
            statement_line_id=statement_line_id,
            source=source,
        )


def ensure_started(period: str, today: date) -> None:
    """Invoices and settlements are of a period that has begun."""
    if period > period_of(today):
        raise InvalidInput(
            "This period has not started",
            [_error("period", "a period up to the current month", "future_period")],
        )


# -- the invoice state machine (INVOICE_TRANSITIONS, in the contracts) --------------------

REFUSALS = {
    InvoiceAction.CREDIT: "A {status} invoice has nothing left to credit",
    InvoiceAction.PAY: "A {status} invoice takes no payment",
    InvoiceAction.SETTLE: "A {status} invoice has nothing left to settle",
    InvoiceAction.REVERSE: "A {status} invoice has no payment to reverse",
}


class InvoiceAmounts(Protocol):
    """What an invoice owes and what lowered it (a row, or one being issued)."""

    status: str
    total_cents: int
    credited_cents: int
    paid_cents: int
    settled_cents: int


def ensure_allows(status: str, action: InvoiceAction) -> None:
    if not invoice_allows(status, action):
        raise Conflict(REFUSALS[action].format(status=status), current_status=status)


def ensure_open(status: str) -> None:
    """Something is still owed on the invoice (issued or partially paid)."""
    if status not in OPEN_STATUSES:
        raise Conflict(f"A {status} invoice owes nothing", current_status=status)


def takes_payment(status: str) -> bool:
    return invoice_allows(status, InvoiceAction.PAY)


def balance(invoice: InvoiceAmounts) -> int:
    """What the invoice still owes; negative when more was paid than owed."""
    return balance_of(
        invoice.total_cents, invoice.credited_cents, invoice.paid_cents, invoice.settled_cents
    )


@dataclass(frozen=True)
class StatusChange:
    status: InvoiceStatus
    paid: bool  # the invoice has just become paid: it is dated and announced


def status_change(invoice: InvoiceAmounts, action: InvoiceAction) -> StatusChange:
    """The status `action` leaves the invoice in, given its amounts once `action` applied."""
    status = status_of(
        invoice.total_cents, invoice.credited_cents, invoice.paid_cents, invoice.settled_cents
    )
    if status not in INVOICE_TRANSITIONS[action].get(InvoiceStatus(invoice.status), ()):
        raise ValueError(f"{action} cannot take a {invoice.status} invoice to {status}")
    paid = status == InvoiceStatus.PAID and invoice.status != InvoiceStatus.PAID
    return StatusChange(status, paid)


# -- time -------------------------------------------------------------------------------


def period_of(day: date) -> str:
    """The billing period (month, YYYY-MM) a charge dated `day` belongs to."""
    return f"{day.year:04d}-{day.month:02d}"


def due_date_for(issue_date: date) -> date:
    return issue_date + timedelta(days=PAYMENT_TERMS_DAYS)


# -- money ------------------------------------------------------------------------------


def euros(cents: int) -> Decimal:
    """12345 -> Decimal('123.45'): the two-decimal amount documents show."""
    return (Decimal(cents) / 100).quantize(Decimal("0.01"))


def round_cents(amount: Decimal) -> int:
    return int(amount.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# -- charges ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ChargeDraft:
    """A charge before it is stored: one billable source line."""

    kind: ChargeKind
    supplier: str
    customer: str
    source_reference: str
    description: str
    quantity: Decimal
    unit: str
    unit_price_cents: int
    amount_cents: int
    charge_date: date
    order_reference: str | None
    service_start: date | None = None  # the service charged, Paris days, both included
    service_end: date | None = None
    contest: str | None = None  # the customer's reserve at the source: disputed once invoiced
    agreement_reference: str | None = None  # the agreement covering it (BT-12)
    listing_id: str | None = None  # the listing lent: its category chooses the imputation

    @property
    def period(self) -> str:
        return invoicing_period(self.charge_date, self.service_end)


def invoicing_period(charge_date: date, service_end: date | None) -> str:
    """The billing period a charge is invoiced in: the one its service ends in (a service is
    invoiced once performed), and never one before the event that charges it (days worked
    last month and approved this month are invoiced this month). An event billing records
    after its period was run (a consumer down across a month's end) waits for that period
    to be run again, which issues only what it had not."""
    if service_end is None:
        return period_of(charge_date)
    return period_of(max(charge_date, service_end))


def _priced(total_cents: int, quantity: int, unit: str) -> tuple[Decimal, str, int]:
    """(quantity, unit, unit price rounded to the cent) of a total: what was supplied is
    kept, whatever the division; documents price the unit by `unit_price`, to the cent of
    the total."""
    if quantity > 0:
        return Decimal(quantity), unit, round_cents(Decimal(total_cents) / quantity)
    return Decimal(1), PIECE, total_cents


def unit_price(amount_cents: int, quantity: Decimal) -> Decimal:
    """The unit price (euros) a document states for a line of `amount_cents`: the fewest
    decimals (2 to 4) whose product by the quantity rounds to the amount to the cent, so
    that quantity × unit price = line amount is never off (a quantity above 100 that no
    4-decimal price fits is priced as the nearest 4-decimal price)."""
    if quantity <= 0:
        return euros(amount_cents)
    exact = Decimal(amount_cents) / 100 / quantity
    for places in range(2, PRICE_DECIMALS + 1):
        price = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
        if round_cents(price * quantity * 100) == amount_cents:
            return price
    return price


def _booked_period(snapshot: BookingSnapshot) -> str:
    start, end = snapshot.start.astimezone(PARIS), snapshot.end.astimezone(PARIS)
    if snapshot.quote.pricing_unit == "day":
        last = (end - timedelta(days=1)).date()
        if last <= start.date():
            return f"le {start:%d/%m/%Y}"
        return f"du {start:%d/%m/%Y} au {last:%d/%m/%Y}"
    return f"le {start:%d/%m/%Y} de {start:%H:%M} à {end:%H:%M}"


def charges_for_return(snapshot: BookingSnapshot, occurred_at: datetime) -> list[ChargeDraft]:
    """A returned booking: the rental, the operator when there was one, each damage, and
    the late fee of each started day after its end. Each charges the service from the
    hand-over to the return (events from before they were sent: the return alone)."""
    quote = snapshot.quote
    units = quote.units * quote.quantity
    unit = UNIT_CODES.get(quote.pricing_unit, PIECE)
    when = _booked_period(snapshot)
    title = snapshot.listing_title
    returned = paris_date(snapshot.returned_at or occurred_at)
    handed_over = paris_date(snapshot.checked_out_at) if snapshot.checked_out_at else None

    def charge(
        kind: ChargeKind, line: str, description: str, cents: int, priced_in: int, unit: str
    ) -> ChargeDraft:
        quantity, line_unit, price = _priced(cents, priced_in, unit)
        return ChargeDraft(
            kind=kind,
            supplier=snapshot.lender_commune,
            customer=snapshot.borrower_commune,
            source_reference=f"booking:{snapshot.booking_id}:{line}",
            description=description,
            quantity=quantity,
            unit=line_unit,
            unit_price_cents=price,
            amount_cents=cents,
            charge_date=returned,
            order_reference=snapshot.order_reference,
            agreement_reference=snapshot.agreement_reference,
            listing_id=snapshot.listing_id,
            service_start=handed_over,
            service_end=returned if handed_over else None,
        )

    drafts = []
    if quote.rental_cents > 0:
        count = f" × {quote.quantity}" if quote.quantity > 1 else ""
        description = f"Location « {title} »{count}, {when}"
        drafts.append(
            charge(ChargeKind.RENTAL, "rental", description, quote.rental_cents, units, unit)
        )
    if quote.operator_cents > 0:
        description = f"Conducteur ou opérateur pour « {title} », {when}"
        drafts.append(
            charge(ChargeKind.OPERATOR, "operator", description, quote.operator_cents, units, unit)
        )
    for n, damage in enumerate(snapshot.damages, start=1):
        description = f"Dommage constaté au retour de « {title} » : {damage.description}"
        found = charge(ChargeKind.DAMAGE, f"damage:{n}", description, damage.amount_cents, 1, PIECE)
        drafts.append(dataclasses.replace(found, contest=damage.contest))
    late = snapshot.days_late
    if late > 0 and quote.late_fee_per_day_cents > 0:
        days = plural(late, "jour")
        description = f"Retard de restitution de « {title} » : {late} {days} après {when}"
        cents = late * quote.late_fee_per_day_cents
        fee = charge(ChargeKind.LATE_FEE, "late_fee", description, cents, late, UNIT_CODES["day"])
        # the days it charges: from the day after the booking's last one to the return
        first_late = paris_date(snapshot.end - timedelta(microseconds=1)) + timedelta(days=1)
        drafts.append(dataclasses.replace(fee, service_start=first_late, service_end=returned))
    return drafts


def charges_for_cancellation(snapshot: BookingSnapshot, occurred_at: datetime) -> list[ChargeDraft]:
    """A cancelled booking is charged only its late-cancellation fee, if any."""
    fee = snapshot.cancellation_fee_cents
    if fee <= 0:
        return []
    return [
        ChargeDraft(
            kind=ChargeKind.CANCELLATION_FEE,
            supplier=snapshot.lender_commune,
            customer=snapshot.borrower_commune,
            source_reference=f"booking:{snapshot.booking_id}:cancellation_fee",
            description=f"Frais d'annulation tardive de « {snapshot.listing_title} », "
            f"{_booked_period(snapshot)}",
            quantity=Decimal(1),
            unit=PIECE,
            unit_price_cents=fee,
            amount_cents=fee,
            charge_date=paris_date(occurred_at),
            order_reference=snapshot.order_reference,
            agreement_reference=snapshot.agreement_reference,
            listing_id=snapshot.listing_id,
        )
    ]


def charges_for_timesheet(approval: TimesheetApproval, occurred_at: datetime) -> list[ChargeDraft]:
    """Approved days of an expert: days × day rate, as the approval states it."""
    if approval.amount_cents <= 0:
        return []
    days = approval.days.normalize()
    mission = f" — {approval.mission}" if approval.mission else ""
    return [
        ChargeDraft(
            kind=ChargeKind.CONSULTING,
            supplier=approval.lender_commune,
            customer=approval.borrower_commune,
            source_reference=f"timesheet:{approval.timesheet_id}",
            description=f"Mise à disposition de {approval.consultant_name}{mission} "
            f"({decimal_comma(days)} {plural(days, 'jour')}, le {approval.work_date:%d/%m/%Y})",
            quantity=approval.days,
            unit="DAY",
            unit_price_cents=approval.day_rate_cents,
            amount_cents=approval.amount_cents,
            charge_date=paris_date(occurred_at),
            order_reference=approval.order_reference,
            agreement_reference=approval.agreement_reference,
            service_start=approval.work_date,
            service_end=approval.work_date,
        )
    ]


KIND_ORDER = {kind: n for n, kind in enumerate(ChargeKind)}


def line_order(charge_date: date, source_reference: str, kind: str) -> tuple:
    """Invoice lines by date, then by source (a booking's lines together), rental first."""
    source = source_reference.split(":")[:2]
    return (charge_date, source, KIND_ORDER.get(ChargeKind(kind), 99), source_reference)


def plain_quantity(quantity: Decimal) -> Decimal:
    """2.000 -> 2, 2.500 -> 2.5 (never 1E+1)."""
    if quantity == quantity.to_integral_value():
        return quantity.quantize(Decimal(1))
    return quantity.normalize()


# -- numbering --------------------------------------------------------------------------


def document_number(supplier: str, year: int, sequence: int, series: str = INVOICE_SERIES) -> str:
    """42044-2026-000001 for invoices, 42044-AV-2026-000001 for credit notes (avoirs)."""
    if series == CREDIT_NOTE_SERIES:
        return f"{supplier}-AV-{year:04d}-{sequence:06d}"
    return f"{supplier}-{year:04d}-{sequence:06d}"


def common_order_reference(references: Iterable[str | None]) -> str | None:
    """The invoice's order reference (BT-13): the engagement number all its lines share."""
    found = {r for r in references if r}
    return found.pop() if len(found) == 1 else None


# -- what French e-invoicing requires (BR-FR) --------------------------------------------

# What each kind of line supplies, for the billing framework (BT-23): lending equipment is
# a service in VAT law ("louage de biens meubles", CGI art. 256 IV), so are an operator and
# an expert's days; a fee or a damage charges around a service. No kind sells goods yet.
GOODS, SERVICES = "goods", "services"
SUPPLY_OF_KIND = dict.fromkeys(ChargeKind, SERVICES)


def billing_framework(kinds: Iterable[str]) -> str:
    """The billing framework (cadre de facturation, BT-23) of a document: S1 when its lines
    supply services, B1 goods, M1 both ("1": a plain invoice, not paid already)."""
    supplies = {SUPPLY_OF_KIND.get(ChargeKind(kind), SERVICES) for kind in kinds if kind}
    if supplies == {GOODS}:
        return "B1"
    if supplies == {GOODS, SERVICES}:
        return "M1"
    return "S1"


# The payment notes every invoice carries (BR-FR-05), under their subject codes. Between
# public bodies, late payment is governed by the Code de la commande publique (art. L2192-13:
# moratory interest and a fixed recovery fee, due as of right, with no reminder): the rate
# of art. R2192-31 (the ECB main refinancing rate in force on the first day of the
# half-year, plus eight points) and the 40 € of art. D2192-35. See docs/billing.md.
PAYMENT_NOTES = {
    "PMT": "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : "
    "40 euros (articles L2192-13 et D2192-35 du Code de la commande publique).",
    "PMD": "En cas de retard de paiement, intérêts moratoires de plein droit au taux de la "
    "principale facilité de refinancement de la Banque centrale européenne en vigueur au "
    "premier jour du semestre, majoré de huit points (articles L2192-13 et R2192-31 du "
    "Code de la commande publique).",
    "AAB": "Pas d'escompte pour paiement anticipé.",
}


# -- VAT and totals ---------------------------------------------------------------------


def vat_of(regime: VatRegime) -> tuple[str, Decimal | None]:
    """(UNCL5305 category, rate) of what a supplier under `regime` invoices."""
    if regime == VatRegime.STANDARD:
        return "S", STANDARD_VAT_RATE
    return "O", None


def line_vat(kind: str, regime: VatRegime) -> tuple[str, Decimal | None]:
    """(category, rate) of a line: a damage is outside the scope of VAT (O) whatever the
    supplier's regime; anything else as the supplier's regime has it."""
    if kind in OUT_OF_SCOPE_KINDS:
        return "O", None
    return vat_of(regime)


def exemption_reason(category: str, kinds: Iterable[str]) -> str | None:
    """Why a category O group carries no VAT (BT-120): the supplier is not liable, or the
    lines (damages) are outside the scope of VAT."""
    if category != "O":
        return None
    found = set(kinds)
    if found and found <= OUT_OF_SCOPE_KINDS:
        return OUT_OF_SCOPE_REASON
    return NOT_SUBJECT_REASON


def french_vat_number(siren: str) -> str:
    """The intra-community VAT number of a SIREN: FR, a two-digit key, the SIREN."""
    key = (12 + 3 * (int(siren) % 97)) % 97
    return f"FR{key:02d}{siren}"


@dataclass(frozen=True)
class Totals:
    net_cents: int
    vat_cents: int
    total_cents: int
    breakdown: list[VatBreakdown]


def totals_of(
    lines: Iterable[tuple[int, str, Decimal | None]], reason: str | None = None
) -> Totals:
    """Totals of (net cents, category, rate) lines: VAT per category and rate, rounded half
    up to the cent once per group (EN 16931 BR-CO-17), never per line; `reason`: why a
    category O group is exempt (default: the supplier is not liable)."""
    groups: dict[tuple[str, Decimal | None], int] = defaultdict(int)
    for amount, category, rate in lines:
        groups[(category, rate)] += amount
    breakdown = []
    for (category, rate), taxable in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1] or 0)):
        tax = round_cents(Decimal(taxable) * rate / 100) if rate is not None else 0
        breakdown.append(
            VatBreakdown(
                category=category,
                rate=rate,
                taxable_cents=taxable,
                tax_cents=tax,
                exemption_reason=(reason or NOT_SUBJECT_REASON) if category == "O" else None,
                exemption_reason_code=NOT_SUBJECT_REASON_CODE if category == "O" else None,
            )
        )
    net = sum(b.taxable_cents for b in breakdown)
    vat = sum(b.tax_cents for b in breakdown)
    return Totals(net, vat, net + vat, breakdown)


def balance_of(total: int, credited: int, paid: int, settled: int) -> int:
    """What is still owed; negative when more was paid than owed."""
    return total - credited - paid - settled


def status_of(total: int, credited: int, paid: int, settled: int) -> InvoiceStatus:
    balance = balance_of(total, credited, paid, settled)
    if credited >= total:
        return InvoiceStatus.CANCELLED
    if balance <= 0:
        return InvoiceStatus.SETTLED if settled > 0 else InvoiceStatus.PAID
    if paid > 0 or settled > 0:
        return InvoiceStatus.PARTIALLY_PAID
    return InvoiceStatus.ISSUED


# -- issuing invoices -------------------------------------------------------------------


class UninvoicedCharge(Protocol):
    """What a billing run reads of a charge."""

    id: str
    customer_commune: str
    charge_date: date
    source_reference: str
    kind: str
    amount_cents: int
    order_reference: str | None
    contest: str | None  # the customer's reserve at the source: a dispute on its line
    agreement_reference: str | None  # the agreement covering it (BT-12)


@dataclass
class NewInvoice:
    """An invoice as issued: the columns of its row (a plain dataclass: `vars()` is the row)."""

    id: str
    number: str
    supplier_commune: str
    customer_commune: str
    period: str
    issue_date: date
    due_date: date
    currency: str
    supplier: dict
    customer: dict
    buyer_reference: str | None
    order_reference: str | None
    agreement_reference: str | None
    vat_category: str
    vat_rate: Decimal | None
    net_cents: int
    vat_cents: int
    total_cents: int
    vat_breakdown: list
    credited_cents: int
    paid_cents: int
    settled_cents: int
    status: str
    issued_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True)
class InvoiceRun:
    """What a billing run issues for one supplier."""

    invoices: list[NewInvoice]
    lines: dict[str, list[str]]  # invoice id -> the ids of the charges it lists, in order
    skipped: list[SkippedPair]


GroupKey = tuple[str, str | None, str | None, str]


def invoice_groups(
    charges: Iterable[UninvoicedCharge], regime: VatRegime, one_per_reference: bool = True
) -> dict[GroupKey, list[UninvoicedCharge]]:
    """The charges of each invoice to issue, by (customer, buyer reference, agreement, VAT
    category): a buyer that requires an engagement number (BT-13) finds one, its own, on
    every invoice (a profile opting out gets one invoice whatever the references); an
    invoice names at most one agreement (BT-12 is one contract reference), whatever the
    profile; and an invoice never mixes lines outside VAT (O) with taxed ones (EN 16931
    BR-O-11 to BR-O-14)."""
    groups: dict[GroupKey, list[UninvoicedCharge]] = defaultdict(list)
    for charge in charges:
        reference = charge.order_reference if one_per_reference else None
        category, _ = line_vat(charge.kind, regime)
        key = (charge.customer_commune, reference, charge.agreement_reference, category)
        groups[key].append(charge)
    return groups


def _group_order(key: GroupKey) -> tuple:
    customer, reference, agreement, category = key
    return (customer, reference or "", agreement or "", category)


def invoices_for(
    supplier: str,
    period: str,
    issue_date: date,
    charges: Iterable[UninvoicedCharge],
    parties: Parties,
    last_number: int,
    now: datetime,
) -> InvoiceRun:
    """The invoices of `supplier`'s customers with charges, numbered on from `last_number`:
    one per customer, buyer reference and VAT category (`invoice_groups`); a pair where
    either commune has no billing profile yet is skipped, and said why."""
    seller = parties.profiles[supplier]
    regime = VatRegime(seller.vat_regime) if seller is not None else VatRegime.NOT_SUBJECT
    by_customer: dict[str, list[UninvoicedCharge]] = defaultdict(list)
    for charge in charges:
        by_customer[charge.customer_commune].append(charge)
    due_date = due_date_for(issue_date)
    seller_blockers = profile_blockers(seller, as_buyer=False) if seller is not None else []
    invoices, lines, skipped = [], {}, []
    for customer in sorted(by_customer):
        buyer = parties.profiles[customer]
        if seller is None or buyer is None:
            skipped.append(
                SkippedPair(
                    supplier_commune=supplier,
                    customer_commune=customer,
                    charges=len(by_customer[customer]),
                    reason=f"{customer if seller else supplier} has no billing profile yet",
                )
            )
            continue
        blockers = seller_blockers + profile_blockers(buyer, as_buyer=True)
        if blockers:  # nothing issued that a platform would reject: the profile is fixed first
            fields = ", ".join(e["field"] for e in blockers)
            skipped.append(
                SkippedPair(
                    supplier_commune=supplier,
                    customer_commune=customer,
                    charges=len(by_customer[customer]),
                    reason=f"a billing profile cannot produce a valid invoice: {fields}",
                    code=PROFILE_INCOMPLETE,
                    errors=blockers,
                )
            )
            continue
        groups = invoice_groups(by_customer[customer], regime, buyer.one_invoice_per_reference)
        for key in sorted(groups, key=_group_order):
            items = groups[key]
            _, order_reference, agreement_reference, category = key
            items.sort(key=lambda c: line_order(c.charge_date, c.source_reference, c.kind))
            rate = line_vat(items[0].kind, regime)[1]
            reason = exemption_reason(category, (c.kind for c in items))
            totals = totals_of(((c.amount_cents, category, rate) for c in items), reason)
            order_reference = order_reference or common_order_reference(
                c.order_reference for c in items
            )
            last_number += 1
            invoice = NewInvoice(
                id=new_id(),
                number=document_number(supplier, issue_date.year, last_number),
                supplier_commune=supplier,
                customer_commune=customer,
                period=period,
                issue_date=issue_date,
                due_date=due_date,
                currency="EUR",
                supplier=parties.party(supplier, as_supplier=True),
                customer=parties.party(customer, False, order_reference),
                buyer_reference=buyer.service_code,
                order_reference=order_reference,
                agreement_reference=agreement_reference,
                vat_category=category,
                vat_rate=rate,
                net_cents=totals.net_cents,
                vat_cents=totals.vat_cents,
                total_cents=totals.total_cents,
                vat_breakdown=[b.model_dump(mode="json") for b in totals.breakdown],
                credited_cents=0,
                paid_cents=0,
                settled_cents=0,
                status=InvoiceStatus.ISSUED.value,
                issued_at=now,
                paid_at=None,
            )
            invoices.append(invoice)
            lines[invoice.id] = [c.id for c in items]
    return InvoiceRun(invoices, lines, skipped)


# -- credit notes -----------------------------------------------------------------------


@dataclass(frozen=True)
class CreditableLine:
    line: int
    description: str
    amount_cents: int
    credited_cents: int
    vat_category: str
    vat_rate: Decimal | None
    # what the line supplied, and when: a credit note's line states them again
    kind: str = ChargeKind.RENTAL.value
    quantity: Decimal = Decimal(1)
    unit: str = PIECE
    service_start: date | None = None
    service_end: date | None = None

    @property
    def remaining_cents(self) -> int:
        return self.amount_cents - self.credited_cents


_CREDITABLE = {field.name for field in dataclasses.fields(CreditableLine)}


def credit_note_lines(
    requested: Sequence[tuple[int, int]],
    lines: Sequence[CreditableLine],
    balance_cents: int,
    fully_open: bool,
) -> list[tuple[CreditableLine, int]]:
    """Which invoice lines a credit note credits, and how much (net). Nothing beyond what a
    line still carries, nor beyond what is still owed; no lines asked: the whole invoice,
    which is only possible while nothing of it was paid or settled."""
    by_number = {line.line: line for line in lines}
    if not requested:
        if not fully_open:
            raise InvalidInput(
                "Part of this invoice is paid or credited: say which lines to credit",
                [_error("lines", "give the lines and amounts to credit", "lines_required")],
            )
        return [(line, line.remaining_cents) for line in lines if line.remaining_cents > 0]
    errors, chosen = [], []
    asked: dict[int, int] = defaultdict(int)
    for i, (number, amount) in enumerate(requested):
        line = by_number.get(number)
        if line is None:
            errors.append(_error(f"lines.{i}.line", "the invoice has no such line", "no_line"))
            continue
        asked[number] += amount
        if asked[number] > line.remaining_cents:
            errors.append(
                _error(
                    f"lines.{i}.amount_cents",
                    f"at most {line.remaining_cents} cents remain to credit on line {number}",
                    "over_credit",
                )
            )
            continue
        chosen.append((line, amount))
    if errors:
        raise InvalidInput("The credit note does not fit the invoice", errors)
    total = totals_of((amount, line.vat_category, line.vat_rate) for line, amount in chosen)
    if total.total_cents > balance_cents:
        raise InvalidInput(
            "A credit note cannot exceed what is still owed",
            [
                _error(
                    "lines",
                    f"{total.total_cents} cents credited, {balance_cents} still owed",
                    "over_credit",
                )
            ],
        )
    return chosen


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day is not None else None


def credited_per_line(notes: Iterable[list[dict]]) -> dict[int, int]:
    """Net cents credited per invoice line, from the lines of its credit notes."""
    credited: dict[int, int] = defaultdict(int)
    for lines in notes:
        for line in lines:
            credited[line["invoice_line"]] += line["amount_cents"]
    return credited


def creditable(lines: Iterable[InvoiceLineView]) -> list[CreditableLine]:
    return [CreditableLine(**line.model_dump(include=_CREDITABLE)) for line in lines]


def untouched(invoice: InvoiceAmounts) -> bool:
    """Nothing of it paid, settled or credited yet: it may be credited whole."""
    return invoice.status == InvoiceStatus.ISSUED.value and invoice.credited_cents == 0


class InvoiceParties(Protocol):
    id: str
    supplier_commune: str
    customer_commune: str


def credit_note_columns(
    invoice: InvoiceParties,
    credited: Sequence[tuple[CreditableLine, int]],
    reason: str,
    issue_date: date,
    number: int,
    user_id: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The credit note numbered `number` that credits `credited` (line, net cents); each
    line keeps the invoice line's quantity, unit and service period (a partial credit
    lowers the unit price, never the quantity supplied)."""
    category = credited[0][0].vat_category if credited else "O"
    exempt = exemption_reason(category, (line.kind for line, _ in credited))
    totals = totals_of(
        ((cents, line.vat_category, line.vat_rate) for line, cents in credited), exempt
    )
    return {
        "id": new_id(),
        "number": document_number(
            invoice.supplier_commune, issue_date.year, number, CREDIT_NOTE_SERIES
        ),
        "invoice_id": invoice.id,
        "supplier_commune": invoice.supplier_commune,
        "customer_commune": invoice.customer_commune,
        "issue_date": issue_date,
        "reason": reason,
        "net_cents": totals.net_cents,
        "vat_cents": totals.vat_cents,
        "total_cents": totals.total_cents,
        "vat_breakdown": [b.model_dump(mode="json") for b in totals.breakdown],
        "lines": [
            {
                "line": n,
                "invoice_line": line.line,
                "description": line.description,
                "amount_cents": cents,
                "vat_category": line.vat_category,
                "vat_rate": str(line.vat_rate) if line.vat_rate is not None else None,
                "kind": line.kind,
                "quantity": str(plain_quantity(line.quantity)),
                "unit": line.unit,
                "service_start": _iso(line.service_start),
                "service_end": _iso(line.service_end),
            }
            for n, (line, cents) in enumerate(credited, start=1)
        ],
        "issued_at": now,
        "issued_by": user_id,
    }


# -- billing profiles -------------------------------------------------------------------


def compact_digits(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value)


def profile_errors(profile: BillingProfileInput, siren: str) -> list[dict]:
    """Per-field errors of a billing profile: SIRET (14 digits, Luhn, the commune's SIREN),
    IBAN and BIC checksums, the service code a buyer requires."""
    errors = siret_errors(compact_digits(profile.siret), siren)
    try:
        iban.validate(profile.iban)
    except NumberError as exc:
        errors.append(_error("iban", f"not a valid IBAN: {exc}", "iban"))
    try:
        bic.validate(profile.bic)
    except NumberError as exc:
        errors.append(_error("bic", f"not a valid BIC: {exc}", "bic"))
    errors += service_code_errors(profile)
    return errors


def siret_errors(siret: str, siren: str, field: str = "siret") -> list[dict]:
    """A SIRET has 14 digits, a valid Luhn key, and starts with the commune's SIREN."""
    if not re.fullmatch(r"\d{14}", siret):
        return [_error(field, "a SIRET has 14 digits", "siret_format")]
    if not luhn.is_valid(siret):
        return [_error(field, "the SIRET's check digit is wrong", "siret_checksum")]
    if not siret.startswith(siren):
        message = f"a SIRET of this commune starts with its SIREN {siren}"
        return [_error(field, message, "siret_siren")]
    return []


def service_code_errors(profile: Any, field: str = "service_code") -> list[dict]:
    if profile.service_code_required and not profile.service_code:
        return [_error(field, "required when suppliers must quote it", "service_code")]
    return []


def profile_blockers(profile: Profile, as_buyer: bool) -> list[dict]:
    """What keeps a stored billing profile (declared before these checks, or imported) from
    producing a valid document: a SIRET that is none of the commune's (every French
    platform routes and checks on it, BR-FR-09/10), a service code its buyer requires and
    does not have (Chorus Pro). Each error is the commune's field to fix."""
    prefix = f"profiles.{profile.commune}"
    commune = communes().get(profile.commune)
    siret = profile.siret or ""
    errors = siret_errors(siret, commune.siren if commune else siret[:9], f"{prefix}.siret")
    if as_buyer:
        errors += service_code_errors(profile, f"{prefix}.service_code")
    return [error | {"type": PROFILE_INCOMPLETE, "cause": error["type"]} for error in errors]


class Profile(Protocol):
    """A billing profile as stored."""

    commune: str
    legal_name: str
    siret: str
    iban: str
    bic: str
    street: str
    additional_street: str | None
    postal_code: str
    city: str
    country_code: str
    email: str | None
    service_code: str | None
    service_code_required: bool
    one_invoice_per_reference: bool
    vat_regime: str


def profile_columns(
    commune: str, profile: BillingProfileInput, user_id: str | None, now: datetime
) -> dict[str, Any]:
    """What is stored of a declared profile: numbers compacted, a default legal name."""
    return {
        "legal_name": profile.legal_name or commune_title(commune_name(commune)),
        "siret": compact_digits(profile.siret),
        "iban": compact_digits(profile.iban).upper(),
        "bic": profile.bic.strip().upper(),
        "street": profile.address.street,
        "additional_street": profile.address.additional_street,
        "postal_code": profile.address.postal_code,
        "city": profile.address.city,
        "country_code": profile.address.country_code,
        "email": profile.email,
        "service_code": profile.service_code,
        "service_code_required": profile.service_code_required,
        "one_invoice_per_reference": profile.one_invoice_per_reference,
        "vat_regime": profile.vat_regime.value,
        "updated_at": now,
        "updated_by": user_id,
    }


def ensure_own_account(statement_iban: str | None, profile: Profile | None) -> None:
    """A statement imported is of the commune's declared account, when both are known."""
    if statement_iban and profile is not None and statement_iban != profile.iban:
        raise InvalidInput(
            "This statement is of another account than the commune's",
            [_error("body", f"account {statement_iban}", "foreign_account")],
        )


def vat_number_of(profile: Profile) -> str | None:
    # a VAT number only where VAT is charged: EN 16931 forbids one on "not subject" invoices
    if profile.vat_regime == VatRegime.STANDARD.value:
        return french_vat_number(profile.siret[:9])
    return None


def address_of(profile: Profile) -> dict[str, Any]:
    return {
        "street": profile.street,
        "additional_street": profile.additional_street,
        "postal_code": profile.postal_code,
        "city": profile.city,
        "country_code": profile.country_code,
    }


def party_of(profile: Profile, *, as_supplier: bool, engagement_number: str | None = None) -> Party:
    """A commune as an invoice names it; the supplier's bank details are where to pay."""
    return Party(
        insee_code=profile.commune,
        name=commune_name(profile.commune),
        legal_name=profile.legal_name,
        siren=profile.siret[:9],
        siret=profile.siret,
        address=address_of(profile),
        vat_number=vat_number_of(profile),
        service_code=None if as_supplier else profile.service_code,
        engagement_number=None if as_supplier else engagement_number,
        iban=profile.iban if as_supplier else None,
        bic=profile.bic if as_supplier else None,
        email=profile.email,
    )


class Parties:
    """Billing profiles as invoices name them, each dumped once per billing run."""

    def __init__(self) -> None:
        self.profiles: dict[str, Profile | None] = {}
        self.dumped: dict[tuple[str, bool], dict] = {}

    def missing(self, communes: Iterable[str]) -> list[str]:
        return [c for c in dict.fromkeys(communes) if c not in self.profiles]

    def add(self, profiles: dict[str, Profile | None]) -> None:
        self.profiles.update(profiles)

    def party(self, commune: str, as_supplier: bool, engagement: str | None = None) -> dict:
        key = (commune, as_supplier)
        if key not in self.dumped:
            profile = self.profiles[commune]
            self.dumped[key] = party_of(profile, as_supplier=as_supplier).model_dump(mode="json")
        return self.dumped[key] | ({"engagement_number": engagement} if engagement else {})


def siret_for(siren: str, establishment: int = 1) -> str:
    """A Luhn-valid SIRET of `siren`: the first valid NIC from establishment number on."""
    for nic in range(establishment * 10, 100_000):
        candidate = f"{siren}{nic:05d}"
        if luhn.is_valid(candidate):
            return candidate
    raise ValueError(f"no valid SIRET for {siren}")


# -- payments and matching --------------------------------------------------------------

_INVOICE_NUMBER = re.compile(
    r"(?<![0-9A-Z])(\d[0-9AB]\d{3})[\s\-_/.]?(\d{4})[\s\-_/.]?(\d{6})(?!\d)"
)


def invoice_numbers_in(text: str) -> list[str]:
    """Invoice numbers quoted in a remittance, however the bank spaced them, in order."""
    found = []
    for match in _INVOICE_NUMBER.finditer(text.upper()):
        number = "-".join(match.groups())
        if number not in found:
            found.append(number)
    return found


@dataclass(frozen=True)
class OpenInvoice:
    id: str
    number: str
    customer: str
    balance_cents: int
    due_date: date


@dataclass(frozen=True)
class PaymentEntry:
    """A payment to record on an invoice: entered by hand or read on a bank statement."""

    amount_cents: int
    paid_on: date
    reference: str
    source: str  # manual, statement
    user_id: str | None
    statement_line_id: str | None = None


class RecordedPayment(Protocol):
    id: str
    amount_cents: int
    payment_date: date
    reference: str
    reversed_at: datetime | None


def ensure_dated_within(
    day: date, issue_date: date, today: date, field: str = "date", what: str = "A payment"
) -> None:
    """Money moves between the invoice's issue and today (Europe/Paris): a payment dated
    tomorrow or before the invoice existed is a typo."""
    if day > today:
        raise InvalidInput(
            f"{what} cannot be dated in the future",
            [_error(field, f"at the latest {today.isoformat()}", "future_date", latest=str(today))],
        )
    if day < issue_date:
        raise InvalidInput(
            f"{what} cannot be dated before the invoice's issue",
            [
                _error(
                    field,
                    f"at the earliest {issue_date.isoformat()}, the invoice's issue date",
                    "before_issue_date",
                    earliest=str(issue_date),
                )
            ],
        )


def ensure_within_balance(
    amount_cents: int, invoice: InvoiceAmounts, overpayment: bool, field: str = "amount_cents"
) -> None:
    """More than the balance is recorded only knowingly, as an overpayment."""
    open_cents = max(0, balance(invoice))
    if amount_cents > open_cents and not overpayment:
        raise InvalidInput(
            f"Only {open_cents} cents are open on this invoice: record more only as an overpayment",
            [
                _error(
                    field,
                    f"at most {open_cents} cents, the balance, unless recorded as an overpayment",
                    "over_balance",
                    balance_cents=open_cents,
                )
            ],
        )


def ensure_not_recorded(
    entry: PaymentEntry, recorded: Iterable[RecordedPayment], confirmed: bool
) -> None:
    """The same amount, date and reference again on an invoice is most likely a double
    entry: refused unless the finance officer confirms it is a second payment."""
    if confirmed:
        return
    for payment in recorded:
        if payment.reversed_at is None and (
            payment.amount_cents,
            payment.payment_date,
            payment.reference,
        ) == (entry.amount_cents, entry.paid_on, entry.reference[:140]):
            raise Conflict(
                "The same payment (amount, date, reference) is already recorded on this "
                "invoice: confirm to record a second one",
                duplicate_of=payment.id,
            )


def ensure_not_reversed(payment: RecordedPayment) -> None:
    if payment.reversed_at is not None:
        raise Conflict("This payment is already reversed", reversed_at=str(payment.reversed_at))


def payer_credit(balances: Iterable[int]) -> int:
    """What a customer overpaid over its invoices from one supplier: its credit there."""
    return sum(-cents for cents in balances if cents < 0)


class BankLine(Protocol):
    booking_date: date
    remittance: str
    bank_reference: str | None


def statement_payment(
    line: BankLine, amount_cents: int, user_id: str | None, line_id: str
) -> PaymentEntry:
    """A payment read on a bank statement: referenced by its remittance, else the bank's."""
    reference = line.remittance or line.bank_reference or ""
    return PaymentEntry(amount_cents, line.booking_date, reference, "statement", user_id, line_id)


@dataclass(frozen=True)
class ReceivedCredit:
    """Money received on the supplier's account, as its bank statement says it."""

    amount_cents: int
    counterparty_name: str
    counterparty_iban: str | None
    remittance: str


def allocate_payment(amount_cents: int, invoices: Sequence[OpenInvoice]) -> list[tuple[str, int]]:
    """Spread a payment over the invoices it names, each up to its balance, in order; what
    is left over stays on the last one (an overpayment the customer may claim back)."""
    allocations: list[tuple[str, int]] = []
    left = amount_cents
    for invoice in invoices:
        if left <= 0:
            break
        part = min(left, max(invoice.balance_cents, 0))
        if part > 0:
            allocations.append((invoice.id, part))
            left -= part
    if left > 0:
        target = invoices[-1].id
        if allocations and allocations[-1][0] == target:
            allocations[-1] = (target, allocations[-1][1] + left)
        else:
            allocations.append((target, left))
    return allocations


# commune names, folded once per process: a statement's every credit tries them all
_folded_name = functools.lru_cache(maxsize=8192)(fold)


def counterparty_of(
    credit: ReceivedCredit, ibans: dict[str, str], names: dict[str, str]
) -> str | None:
    """The commune that paid: by its declared IBAN, else by its name in the payer's name
    (the longest name that fits, so that Saint-Étienne-Lardeyrol is not Saint-Étienne)."""
    if credit.counterparty_iban:
        found = ibans.get(compact_digits(credit.counterparty_iban).upper())
        if found:
            return found
    payer = f" {fold(credit.counterparty_name)} "
    best = None
    for commune, name in names.items():
        folded = _folded_name(name)
        if folded and f" {folded} " in payer and (best is None or len(folded) > len(best[1])):
            best = (commune, folded)
    return best[0] if best else None


def match_credit(
    credit: ReceivedCredit,
    named: Sequence[OpenInvoice],
    open_of_payer: Sequence[OpenInvoice],
) -> list[tuple[str, int]]:
    """Which invoices a credit pays: those its remittance names (`named`, in the order
    named), else the oldest open invoice of the paying commune of exactly that amount;
    nothing when neither fits (left for manual matching)."""
    if named:
        return allocate_payment(credit.amount_cents, named)
    exact = sorted(
        (i for i in open_of_payer if i.balance_cents == credit.amount_cents),
        key=lambda i: (i.due_date, i.number),
    )
    if exact:
        return [(exact[0].id, credit.amount_cents)]
    return []


def payers(accounts: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, str]]:
    """(IBAN -> commune, commune -> name) of the communes with a billing profile."""
    ibans, names = {}, {}
    for commune, account in accounts:
        ibans[account] = commune
        names[commune] = commune_name(commune)
    return ibans, names


class PayableInvoice(Protocol):
    id: str
    number: str
    customer_commune: str
    due_date: date
    status: str
    total_cents: int
    credited_cents: int
    paid_cents: int
    settled_cents: int


def open_invoice(invoice: PayableInvoice) -> OpenInvoice:
    return OpenInvoice(
        id=invoice.id,
        number=invoice.number,
        customer=invoice.customer_commune,
        balance_cents=balance(invoice),
        due_date=invoice.due_date,
    )


def ensure_unmatched(line_status: str) -> None:
    if line_status != "unmatched":
        raise Conflict("This statement line is already matched")


def ensure_matched(line_status: str) -> None:
    if line_status != "matched":
        raise Conflict("This statement line is not matched to any invoice")


# -- statements and aging ---------------------------------------------------------------


@dataclass(frozen=True)
class Movement:
    """Something that changed what a counterparty owes the caller: positive raises it."""

    date: date
    kind: str
    reference: str
    description: str
    amount_cents: int


@dataclass(frozen=True)
class StatementLine:
    movement: Movement
    balance_cents: int


def statement_of(
    movements: Iterable[Movement], start: date | None, end: date | None
) -> tuple[int, list[StatementLine], int]:
    """(opening balance, lines with the running balance, closing balance) over [start, end]."""
    ordered = sorted(movements, key=lambda m: (m.date, m.kind, m.reference))
    opening = sum(m.amount_cents for m in ordered if start is not None and m.date < start)
    balance, lines = opening, []
    for m in ordered:
        if (start is not None and m.date < start) or (end is not None and m.date > end):
            continue
        balance += m.amount_cents
        lines.append(StatementLine(m, balance))
    return opening, lines, balance


def ensure_statement_query(commune: str, query: StatementQuery) -> None:
    if query.counterparty == commune:
        raise InvalidInput(
            "A commune has no account with itself",
            [_error("counterparty", "another commune", "self")],
        )
    if query.from_ and query.to and query.to < query.from_:
        raise InvalidInput("The period is reversed", [_error("to", "must not be before from")])


AGING_BUCKETS = ("not_due", "days_0_30", "days_31_60", "days_61_90", "days_over_90")


def aging_bucket(due_date: date, as_of: date) -> str:
    late = (as_of - due_date).days
    if late < 0:
        return "not_due"
    if late <= 30:
        return "days_0_30"
    if late <= 60:
        return "days_31_60"
    if late <= 90:
        return "days_61_90"
    return "days_over_90"


def aging(balances: Iterable[tuple[str, date, int]], as_of: date) -> dict[str, dict[str, int]]:
    """Outstanding cents per counterparty and bucket of days past due."""
    rows: dict[str, dict[str, int]] = {}
    for counterparty, due, cents in balances:
        if cents <= 0:
            continue
        row = rows.setdefault(counterparty, dict.fromkeys(AGING_BUCKETS, 0))
        row[aging_bucket(due, as_of)] += cents
    return rows


# -- netting ----------------------------------------------------------------------------


def net_positions(debts: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Net position of each commune from (creditor, debtor, cents) debts: what it is owed
    minus what it owes. Communes that end at zero are left out."""
    positions: dict[str, int] = defaultdict(int)
    for creditor, debtor, cents in debts:
        positions[creditor] += cents
        positions[debtor] -= cents
    return {c: p for c, p in sorted(positions.items()) if p != 0}


def settling_transfers(positions: dict[str, int]) -> list[tuple[str, str, int]]:
    """(payer, payee, cents) transfers that bring every position to zero. Debtors only pay
    and creditors only receive; each transfer closes at least one position, so n non-zero
    positions take at most n - 1 transfers. Equal and opposite positions are paired first,
    which closes two with one transfer."""
    if sum(positions.values()) != 0:
        raise ValueError("positions do not balance")
    debtors = {c: -p for c, p in positions.items() if p < 0}
    creditors = {c: p for c, p in positions.items() if p > 0}
    transfers = []
    by_amount: dict[int, list[str]] = defaultdict(list)
    for creditor, amount in sorted(creditors.items()):
        by_amount[amount].append(creditor)
    for debtor, amount in sorted(debtors.items(), key=lambda d: (-d[1], d[0])):
        if by_amount.get(amount):
            creditor = by_amount[amount].pop(0)
            transfers.append((debtor, creditor, amount))
            del debtors[debtor], creditors[creditor]
    payers = sorted(debtors.items(), key=lambda d: (-d[1], d[0]))
    payees = sorted(creditors.items(), key=lambda c: (-c[1], c[0]))
    i = j = 0
    while i < len(payers) and j < len(payees):
        (payer, owes), (payee, due) = payers[i], payees[j]
        amount = min(owes, due)
        transfers.append((payer, payee, amount))
        payers[i], payees[j] = (payer, owes - amount), (payee, due - amount)
        if owes == amount:
            i += 1
        if due == amount:
            j += 1
    return transfers


class OpenDebt(NamedTuple):
    """What an open invoice still owes (a tuple: a netting reads tens of thousands)."""

    invoice_id: str
    supplier: str
    customer: str
    open_cents: int


def allocate_settlement(
    debts: Sequence[OpenDebt], transfers: Sequence[tuple[str, str, str, int]]
) -> list[tuple[str, int, str | None]]:
    """The audit trail of a settlement: (invoice, cents, transfer key or None). A debtor's
    transfers carry the first of its invoices, in the order given; the rest of what it owes
    is compensated by what it is owed. Every invoice is covered for exactly its open amount
    and every transfer for exactly its amount."""
    outgoing: dict[str, list[list]] = defaultdict(list)
    for key, payer, _payee, cents in transfers:
        outgoing[payer].append([key, cents])
    allocations: list[tuple[str, int, str | None]] = []
    for debt in debts:
        queue = outgoing.get(debt.customer)
        if not queue:  # most invoices: wholly compensated
            allocations.append((debt.invoice_id, debt.open_cents, None))
            continue
        left = debt.open_cents
        while left > 0 and queue:
            key, available = queue[0]
            part = min(left, available)
            allocations.append((debt.invoice_id, part, key))
            left -= part
            queue[0][1] -= part
            if queue[0][1] == 0:
                queue.pop(0)
        if left > 0:
            allocations.append((debt.invoice_id, left, None))
    if any(queue for queue in outgoing.values()):
        raise ValueError("transfers exceed what their payers owe")
    return allocations


class SettlingTransfer(NamedTuple):
    id: str
    payer: str
    payee: str
    amount_cents: int


@dataclass(frozen=True)
class Settlement:
    """A netting decided: its row's columns, its transfers and the audit trail of the
    invoices its transfers carry. Every other invoice it settles is compensated wholly, in
    one part and by no transfer: those rows, most of a large netting, are left for the
    database to write from the proposal rather than built here one by one."""

    columns: dict[str, Any]
    transfers: list[SettlingTransfer]
    trail: list[dict[str, Any]]


def settlement_of(
    settled: Iterable[tuple[str, date, str, str, str, int]],
    period: str,
    sequence: int,
    user_id: str | None,
    now: datetime,
) -> Settlement:
    """How the invoices just settled, (customer, due date, number, id, supplier, cents),
    are settled: net positions, the transfers that carry them, which invoice each covers.
    Only the invoices of communes that pay a transfer are ordered and allocated: every
    other one is compensated wholly, whatever its place."""
    settled = list(settled)
    positions = net_positions(
        (supplier, customer, cents) for customer, *_, supplier, cents in settled
    )
    transfers = [
        SettlingTransfer(new_id(), payer, payee, cents)
        for payer, payee, cents in settling_transfers(positions)
    ]
    payers = {t.payer for t in transfers}
    # a debtor's oldest invoices first: those are what its transfers carry
    paying = [
        OpenDebt(invoice_id, supplier, customer, int(cents))
        for customer, _, _, invoice_id, supplier, cents in sorted(
            tuple(invoice) for invoice in settled if invoice[0] in payers
        )
    ]
    settlement_id = new_id()
    allocations = allocate_settlement(paying, transfers)
    carrying = {invoice_id for invoice_id, _, key in allocations if key is not None}
    parts: dict[str, int] = defaultdict(int)
    trail = []
    for invoice_id, cents, key in allocations:
        if invoice_id not in carrying:
            continue  # compensated wholly: see Settlement
        parts[invoice_id] += 1
        trail.append(
            {
                "settlement_id": settlement_id,
                "invoice_id": invoice_id,
                "part": parts[invoice_id],
                "amount_cents": cents,
                "transfer_id": key,
            }
        )
    carried = sum(t.amount_cents for t in transfers)
    columns = {
        "id": settlement_id,
        "period": period,
        "sequence": sequence,
        "positions": [{"commune": c, "net_cents": p} for c, p in positions.items()],
        "invoices_settled": len(settled),
        "compensated_cents": sum(invoice[-1] for invoice in settled) - carried,
        "created_at": now,
        "created_by": user_id,
    }
    return Settlement(columns, transfers, trail)


# -- netting by consent -----------------------------------------------------------------

NETTING_DAYS_TO_DECIDE = 7
# the transfers a netting leaves are due as its invoices would be
TRANSFER_TERMS_DAYS = PAYMENT_TERMS_DAYS


def netting_deadline(asked: date | None, today: date) -> date:
    """The last day to accept (Europe/Paris): a week unless said, never in the past."""
    if asked is None:
        return today + timedelta(days=NETTING_DAYS_TO_DECIDE)
    if asked < today:
        raise InvalidInput(
            "The deadline has passed already",
            [_error("deadline", f"today ({today.isoformat()}) or later", "past_deadline")],
        )
    return asked


def netting_participants(
    caller: Caller, asked: Sequence[str] | None, counterparties: Iterable[str]
) -> set[str] | None:
    """The communes taking part: those asked, else the proposer and its counterparties (an
    operator: everyone, None). A finance team proposes only a netting it takes part in."""
    if caller.has(Role.OPERATOR) and not caller.has(Role.FINANCE):
        return set(asked) if asked else None
    if asked and caller.commune not in asked:
        raise InvalidInput(
            "A commune proposes only a netting it takes part in",
            [_error("communes", f"must include {caller.commune}", "proposer_not_taking_part")],
        )
    return set(asked) if asked else {caller.commune, *counterparties}


def ensure_something_to_net(debts: Sequence[OpenDebt]) -> None:
    if not debts:
        raise Conflict("No open, undisputed invoice between these communes: nothing to net")


@dataclass(frozen=True)
class NettingProposal:
    """A netting computed, to propose: its columns, its parties and its invoices."""

    columns: dict[str, Any]
    parties: list[str]
    invoices: list[tuple[str, int]]  # (invoice id, open cents)


def netting_proposal(
    debts: Sequence[OpenDebt],
    scope: dict[str, Any],
    deadline: date,
    proposer: Caller,
    now: datetime,
) -> NettingProposal:
    """Positions and at most n - 1 transfers of the open invoices `debts`; every commune
    one of them names is a party that must accept."""
    positions = net_positions((d.supplier, d.customer, d.open_cents) for d in debts)
    transfers = settling_transfers(positions)
    parties = sorted({c for d in debts for c in (d.supplier, d.customer)})
    carried = sum(cents for _, _, cents in transfers)
    columns = {
        "id": new_id(),
        **scope,
        "status": "proposed",
        "deadline": deadline,
        "positions": [{"commune": c, "net_cents": p} for c, p in positions.items()],
        "transfers": [
            {"payer": payer, "payee": payee, "amount_cents": cents}
            for payer, payee, cents in transfers
        ],
        "invoices": len(debts),
        "compensated_cents": sum(d.open_cents for d in debts) - carried,
        "proposed_at": now,
        "proposed_by": proposer.user_id,
        "proposed_by_commune": proposer.commune,
    }
    return NettingProposal(columns, parties, [(d.invoice_id, d.open_cents) for d in debts])


def netting_status(status: str, deadline: date, today: date) -> str:
    """A proposal still waiting after its deadline has expired, whether or not anyone
    touched it since."""
    if status == "proposed" and deadline < today:
        return "expired"
    return status


def ensure_sees_netting(caller: Caller, parties: Iterable[str]) -> None:
    """A netting exists only for its parties' finance teams and managers, and operators."""
    if caller.has(Role.OPERATOR):
        return
    if caller.commune not in set(parties) or not caller.has(*READERS):
        raise NotFound("No such settlement")


def ensure_decides(caller: Caller, decision: str | None) -> None:
    """Each party's finance team decides once; `decision` is its party's, None if none."""
    if decision is None:
        raise NotFound("No such settlement")
    if not caller.has(Role.FINANCE):
        raise Forbidden("Only a party's finance team accepts or declines a netting")
    if decision != "pending":
        raise Conflict(f"Your commune has {decision} this netting already", decision=decision)


def ensure_waiting(status: str) -> None:
    if status != "proposed":
        raise Conflict(f"This netting is {status}: nothing more to decide", current_status=status)


def changed_since_proposed(
    proposed: dict[str, int], invoices: Iterable[PayableInvoice]
) -> list[str]:
    """Numbers of the invoices that no longer owe what the proposal settles (paid, credited,
    disputed or settled since): any of them voids it."""
    return sorted(
        invoice.number
        for invoice in invoices
        if invoice.status not in OPEN_STATUSES or balance(invoice) != proposed[invoice.id]
    )


def outcome(decisions: Iterable[str]) -> str:
    """proposed while a party has not decided; declined once one declines; effective once
    all accepted."""
    decisions = list(decisions)
    if "declined" in decisions:
        return "declined"
    if all(d == "accepted" for d in decisions):
        return "effective"
    return "proposed"


def seen_by(commune: str | None, positions: list[dict], transfers: list, invoices: list):
    """What a party sees of a netting: its position, its transfers, its invoices (None: an
    operator, everything)."""
    if commune is None:
        return positions, transfers, invoices
    return (
        [p for p in positions if p["commune"] == commune],
        [t for t in transfers if commune in (t["payer"], t["payee"])],
        [i for i in invoices if commune in (i.supplier_commune, i.customer_commune)],
    )


def transfer_due(today: date) -> date:
    return today + timedelta(days=TRANSFER_TERMS_DAYS)


def ensure_transfer_open(paid_on: date | None) -> None:
    if paid_on is not None:
        raise Conflict(f"This transfer was recorded paid on {paid_on.isoformat()}")


# -- disputes ---------------------------------------------------------------------------


def ensure_may_dispute(caller: Caller, customer: str, line_kind: str) -> None:
    """The customer's finance team contests a line; for a damage, its manager may too (who
    saw the equipment come back)."""
    if caller.commune != customer:
        raise Forbidden("An invoice is contested by the commune it is addressed to")
    if not (caller.has(Role.FINANCE) or (caller.has(Role.MANAGER) and line_kind == "damage")):
        raise Forbidden("Only the finance team (or, for a damage, a manager) contests a line")


def disputed_line(lines: Sequence[CreditableLine], number: int, amount: int | None) -> int:
    """The amount contested on line `number`: at most what it still carries (default: all)."""
    found = {line.line: line for line in lines}.get(number)
    if found is None:
        raise InvalidInput(
            "The invoice has no such line",
            [_error("line", "the invoice has no such line", "no_line")],
        )
    amount = found.remaining_cents if amount is None else amount
    if amount > found.remaining_cents or amount <= 0:
        raise InvalidInput(
            "The contested amount exceeds what the line still carries",
            [
                _error(
                    "amount_cents",
                    f"at most {found.remaining_cents} cents remain on line {number}",
                    "over_credit",
                )
            ],
        )
    return amount


def ensure_dispute_open(status: str) -> None:
    if status != "open":
        raise Conflict(f"This dispute is {status} already", current_status=status)


def ensure_no_open_dispute_on(line: int, open_lines: Iterable[int]) -> None:
    if line in set(open_lines):
        raise Conflict(f"Line {line} is contested already: wait for the supplier's answer")


def credit_uses(open_cents: int, overpaid: Sequence[tuple[str, int]]) -> list[tuple[str, int]]:
    """(overpaid invoice, cents) the payer's credit gives to an invoice owing `open_cents`:
    the oldest overpayments first, never more than the invoice owes."""
    uses, left = [], open_cents
    for invoice_id, credit_cents in overpaid:
        if left <= 0:
            break
        part = min(left, credit_cents)
        if part > 0:
            uses.append((invoice_id, part))
            left -= part
    return uses


def ensure_credit_to_use(uses: Sequence[tuple[str, int]]) -> None:
    if not uses:
        raise Conflict("The customer has no credit with this supplier, or the invoice owes nothing")

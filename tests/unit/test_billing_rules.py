"""Billing's rules that moved into the domain from the service: who may credit, record a
payment or ask a statement; what an invoice still owes and the status a credit, payment or
netting leaves it in; an invoice run per customer, and a netting's transfers and trail."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest

from contracts.billing import (
    BillingProfileInput,
    InvoiceAction,
    InvoiceStatus,
    StatementQuery,
    VatRegime,
)
from contracts.caller import Caller, Role
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.communes import communes
from services.billing import domain

SUPPLIER, CUSTOMER, OTHER = "42044", "42218", "42095"
NOW = datetime(2026, 12, 1, 8, tzinfo=UTC)


def caller(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u", commune=commune, roles=frozenset(roles))


# -- who may do what --------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_only_the_issuing_communes_finance_team_credits_an_invoice(role):
    if role == Role.FINANCE:
        domain.ensure_may_credit(caller(SUPPLIER, role), SUPPLIER)
    else:
        with pytest.raises(Forbidden):
            domain.ensure_may_credit(caller(SUPPLIER, role), SUPPLIER)
    with pytest.raises(Forbidden) as raised:
        domain.ensure_may_credit(caller(CUSTOMER, Role.FINANCE, role), SUPPLIER)
    assert raised.value.detail == "Only the issuing commune's finance team credits an invoice"


def test_to_a_stranger_an_invoice_or_a_credit_note_does_not_exist():
    stranger = caller(OTHER, Role.FINANCE)
    with pytest.raises(NotFound) as raised:
        domain.ensure_party(stranger, SUPPLIER, CUSTOMER)
    assert raised.value.detail == "No such invoice"
    with pytest.raises(NotFound) as raised:
        domain.ensure_party(caller(CUSTOMER, Role.AGENT), SUPPLIER, CUSTOMER, "credit note")
    assert raised.value.detail == "No such credit note"


def test_a_payment_is_recorded_by_the_commune_it_is_paid_to():
    domain.ensure_receives(caller(SUPPLIER, Role.FINANCE), SUPPLIER)
    with pytest.raises(Forbidden) as raised:
        domain.ensure_receives(caller(CUSTOMER, Role.FINANCE), SUPPLIER)
    assert raised.value.detail == "Payments are recorded by the commune that receives them"


@pytest.mark.parametrize(
    ("period", "today", "started"),
    [
        ("2026-12", date(2026, 12, 1), True),  # its first day
        ("2026-11", date(2026, 12, 1), True),
        ("2027-01", date(2026, 12, 31), False),  # 31 December: January has not begun
        ("2026-12", date(2026, 11, 30), False),
    ],
)
def test_a_period_is_invoiced_or_settled_from_its_first_day(period, today, started):
    if started:
        domain.ensure_started(period, today)
        return
    with pytest.raises(InvalidInput) as raised:
        domain.ensure_started(period, today)
    assert raised.value.detail == "This period has not started"
    assert raised.value.errors == [
        {"field": "period", "message": "a period up to the current month", "type": "future_period"}
    ]


@pytest.mark.parametrize(
    ("action", "status", "detail"),
    [
        (InvoiceAction.CREDIT, "paid", "A paid invoice has nothing left to credit"),
        (InvoiceAction.PAY, "cancelled", "A cancelled invoice takes no payment"),
        (InvoiceAction.SETTLE, "settled", "A settled invoice has nothing left to settle"),
    ],
)
def test_an_invoice_refuses_what_its_status_does_not_allow(action, status, detail):
    with pytest.raises(Conflict) as raised:
        domain.ensure_allows(status, action)
    assert raised.value.detail == detail
    assert raised.value.extra == {"current_status": status}
    domain.ensure_allows("issued", action)
    assert domain.takes_payment("paid") and not domain.takes_payment("cancelled")


def test_a_statement_is_of_the_communes_own_account_when_both_are_known():
    profile = SimpleNamespace(iban="FR7630001007941234567890185")
    domain.ensure_own_account("FR7630001007941234567890185", profile)
    domain.ensure_own_account(None, profile)
    domain.ensure_own_account("", profile)
    domain.ensure_own_account("FR7612345678901234567890123", None)
    with pytest.raises(InvalidInput) as raised:
        domain.ensure_own_account("FR7612345678901234567890123", profile)
    assert raised.value.detail == "This statement is of another account than the commune's"
    assert raised.value.errors == [
        {
            "field": "body",
            "message": "account FR7612345678901234567890123",
            "type": "foreign_account",
        }
    ]


def test_a_statement_line_is_matched_once():
    domain.ensure_unmatched("unmatched")
    with pytest.raises(Conflict) as raised:
        domain.ensure_unmatched("matched")
    assert raised.value.detail == "This statement line is already matched"


def statement_query(**fields) -> StatementQuery:
    return StatementQuery.model_validate({"counterparty": CUSTOMER} | fields)


def test_a_statement_is_with_another_commune_over_a_period_in_order():
    domain.ensure_statement_query(SUPPLIER, statement_query())
    domain.ensure_statement_query(SUPPLIER, statement_query(**{"from": "2026-12-01"}))
    domain.ensure_statement_query(SUPPLIER, statement_query(to="2026-12-01"))
    one_day = {"from": "2026-12-01", "to": "2026-12-01"}
    domain.ensure_statement_query(SUPPLIER, statement_query(**one_day))
    with pytest.raises(InvalidInput) as raised:
        domain.ensure_statement_query(CUSTOMER, statement_query())
    assert raised.value.detail == "A commune has no account with itself"
    assert raised.value.errors == [
        {"field": "counterparty", "message": "another commune", "type": "self"}
    ]
    with pytest.raises(InvalidInput) as raised:
        domain.ensure_statement_query(
            SUPPLIER, statement_query(**{"from": "2026-12-02", "to": "2026-12-01"})
        )
    assert raised.value.detail == "The period is reversed"
    assert raised.value.errors == [
        {"field": "to", "message": "must not be before from", "type": "value_error"}
    ]


# -- what an invoice owes, and its status -------------------------------------------------


def invoice(status="issued", total=10000, credited=0, paid=0, settled=0) -> SimpleNamespace:
    return SimpleNamespace(
        status=status,
        total_cents=total,
        credited_cents=credited,
        paid_cents=paid,
        settled_cents=settled,
    )


def test_the_balance_is_the_total_less_what_was_credited_paid_and_settled():
    assert domain.balance(invoice(total=10000, credited=1000, paid=2000, settled=3000)) == 4000
    assert domain.balance(invoice(total=10000, paid=10001)) == -1  # one cent overpaid


@pytest.mark.parametrize(
    ("before", "action", "after", "status", "becomes_paid"),
    [
        (invoice(), InvoiceAction.PAY, invoice(paid=9999), "partially_paid", False),
        (invoice(), InvoiceAction.PAY, invoice(paid=10000), "paid", True),
        (invoice(), InvoiceAction.PAY, invoice(paid=10001), "paid", True),
        (invoice("partially_paid", paid=1), InvoiceAction.PAY, invoice(paid=10000), "paid", True),
        (invoice("paid", paid=10000), InvoiceAction.PAY, invoice(paid=10500), "paid", False),
        (invoice(), InvoiceAction.CREDIT, invoice(credited=10000), "cancelled", False),
        (invoice(), InvoiceAction.CREDIT, invoice(credited=1), "issued", False),
        (invoice(), InvoiceAction.SETTLE, invoice(settled=10000), "settled", False),
    ],
)
def test_the_status_an_action_leaves_an_invoice_in(before, action, after, status, becomes_paid):
    after.status = before.status
    change = domain.status_change(after, action)
    assert change == domain.StatusChange(InvoiceStatus(status), becomes_paid)


def test_an_action_never_takes_an_invoice_where_the_state_machine_does_not_go():
    with pytest.raises(ValueError) as raised:
        domain.status_change(invoice("issued", credited=1), InvoiceAction.PAY)
    assert str(raised.value) == "pay cannot take a issued invoice to issued"


def test_an_invoice_is_untouched_while_issued_and_not_credited():
    assert domain.untouched(invoice())
    assert not domain.untouched(invoice(credited=1))
    assert not domain.untouched(invoice("partially_paid"))


def test_what_credit_notes_credited_is_summed_per_invoice_line():
    notes = [
        [{"invoice_line": 1, "amount_cents": 500}, {"invoice_line": 2, "amount_cents": 1}],
        [{"invoice_line": 1, "amount_cents": 250}],
        [],
    ]
    assert domain.credited_per_line(notes) == {1: 750, 2: 1}


def test_a_statement_payment_is_referenced_by_its_remittance_else_the_banks():
    line = SimpleNamespace(booking_date=date(2026, 12, 31), remittance="", bank_reference="B-1")
    assert domain.statement_payment(line, 1234, "u", "line-1") == domain.PaymentEntry(
        1234, date(2026, 12, 31), "B-1", "statement", "u", "line-1"
    )
    line.remittance = "42044-2026-000001"
    assert domain.statement_payment(line, 1, None, "l").reference == "42044-2026-000001"
    line.remittance, line.bank_reference = "", None
    assert domain.statement_payment(line, 1, None, "l").reference == ""


# -- an invoice run -------------------------------------------------------------------------


def profile(commune: str, vat_regime: str = "not_subject") -> SimpleNamespace:
    return SimpleNamespace(
        commune=commune,
        legal_name=f"Commune {commune}",
        siret=domain.siret_for(communes().get(commune).siren),
        iban="FR7630001007941234567890185",
        bic="BDFEFRPPCCT",
        street="Place de la Mairie",
        additional_street=None,
        postal_code="42000",
        city="Ville",
        country_code="FR",
        email=None,
        service_code=f"SVC-{commune}",
        service_code_required=False,
        one_invoice_per_reference=True,
        vat_regime=vat_regime,
    )


def charge(n: int, customer: str, day: int, cents: int, order: str | None = None, agreement=None):
    return SimpleNamespace(
        id=f"c{n}",
        customer_commune=customer,
        charge_date=date(2026, 11, day),
        source_reference=f"booking:b{n}:rental",
        kind="rental",
        amount_cents=cents,
        order_reference=order,
        agreement_reference=agreement,
    )


def test_a_run_issues_one_invoice_per_customer_numbered_on_and_skips_a_missing_profile():
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER, "standard"), CUSTOMER: profile(CUSTOMER), OTHER: None})
    charges = [
        charge(1, CUSTOMER, 20, 10000, "BC-1"),
        charge(2, OTHER, 3, 500),
        charge(3, CUSTOMER, 2, 2501, "BC-1"),
    ]
    run = domain.invoices_for(
        SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, last_number=41, now=NOW
    )
    (issued,) = run.invoices
    assert issued.number == "42044-2026-000042"
    assert (issued.supplier_commune, issued.customer_commune) == (SUPPLIER, CUSTOMER)
    assert (issued.period, issued.issue_date) == ("2026-11", date(2026, 12, 1))
    assert issued.due_date == date(2026, 12, 31)
    assert (issued.vat_category, issued.vat_rate) == ("S", Decimal("20"))
    assert (issued.net_cents, issued.vat_cents, issued.total_cents) == (12501, 2500, 15001)
    assert (issued.credited_cents, issued.paid_cents, issued.settled_cents) == (0, 0, 0)
    assert (issued.status, issued.issued_at, issued.paid_at) == ("issued", NOW, None)
    assert issued.currency == "EUR"
    assert (issued.buyer_reference, issued.order_reference) == ("SVC-42218", "BC-1")
    assert issued.customer["engagement_number"] == "BC-1"
    assert issued.supplier["insee_code"] == SUPPLIER
    assert issued.vat_breakdown == [
        {
            "category": "S",
            "rate": "20.00",
            "taxable_cents": 12501,
            "tax_cents": 2500,
            "exemption_reason": None,
            "exemption_reason_code": None,
        }
    ]
    assert run.lines == {issued.id: ["c3", "c1"]}  # by date
    assert run.skipped == [
        domain.SkippedPair(
            supplier_commune=SUPPLIER,
            customer_commune=OTHER,
            charges=1,
            reason="42095 has no billing profile yet",
        )
    ]


def test_a_supplier_without_a_profile_issues_nothing_and_says_so():
    parties = domain.Parties()
    parties.add({SUPPLIER: None, CUSTOMER: profile(CUSTOMER)})
    run = domain.invoices_for(
        SUPPLIER, "2026-11", date(2026, 12, 1), [charge(1, CUSTOMER, 2, 100)], parties, 0, NOW
    )
    assert run.invoices == [] and run.lines == {}
    assert [s.reason for s in run.skipped] == ["42044 has no billing profile yet"]


def test_two_customers_get_consecutive_numbers_in_the_order_of_their_codes():
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER), CUSTOMER: profile(CUSTOMER), OTHER: profile(OTHER)})
    charges = [charge(1, CUSTOMER, 2, 100), charge(2, OTHER, 3, 200)]
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    assert [(i.customer_commune, i.number, i.total_cents) for i in run.invoices] == [
        (OTHER, "42044-2026-000001", 200),
        (CUSTOMER, "42044-2026-000002", 100),
    ]
    assert [i.vat_category for i in run.invoices] == ["O", "O"]
    assert parties.missing([SUPPLIER, "42001", "42001"]) == ["42001"]


def test_each_engagement_number_gets_its_invoice_and_damages_leave_the_taxed_one():
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER, "standard"), CUSTOMER: profile(CUSTOMER)})
    damage = SimpleNamespace(**vars(charge(4, CUSTOMER, 5, 15000, "EJ-1")) | {"kind": "damage"})
    charges = [
        charge(1, CUSTOMER, 2, 10000, "EJ-1"),
        charge(2, CUSTOMER, 3, 2000, "EJ-2"),
        charge(3, CUSTOMER, 4, 300),
        damage,
    ]
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    issued = [(i.order_reference, i.vat_category, i.total_cents) for i in run.invoices]
    assert issued == [
        (None, "S", 360),
        ("EJ-1", "O", 15000),
        ("EJ-1", "S", 12000),
        ("EJ-2", "S", 2400),
    ]
    assert [run.lines[i.id] for i in run.invoices] == [["c3"], ["c4"], ["c1"], ["c2"]]
    out_of_scope = run.invoices[1].vat_breakdown[0]
    assert out_of_scope["exemption_reason"] == domain.OUT_OF_SCOPE_REASON
    assert [i.customer.get("engagement_number") for i in run.invoices] == [
        None,
        "EJ-1",
        "EJ-1",
        "EJ-2",
    ]


def test_a_profile_that_cannot_produce_a_valid_invoice_skips_its_pairs_and_says_what_to_fix():
    parties = domain.Parties()
    foreign = SimpleNamespace(**vars(profile(OTHER)) | {"siret": profile(CUSTOMER).siret})
    parties.add({SUPPLIER: profile(SUPPLIER), CUSTOMER: profile(CUSTOMER), OTHER: foreign})
    charges = [charge(1, CUSTOMER, 2, 100), charge(2, OTHER, 3, 200), charge(3, OTHER, 4, 5)]
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    assert [i.customer_commune for i in run.invoices] == [CUSTOMER]
    (blocked,) = run.skipped
    assert (blocked.customer_commune, blocked.charges, blocked.code) == (
        OTHER,
        2,
        domain.PROFILE_INCOMPLETE,
    )
    assert [(e["field"], e["cause"]) for e in blocked.errors] == [
        (f"profiles.{OTHER}.siret", "siret_siren")
    ]


@pytest.mark.parametrize(
    ("changes", "causes"),
    [
        ({}, []),
        ({"siret": "2142"}, ["siret_format"]),
        ({"siret": None}, ["siret_format"]),
        ({"service_code": None, "service_code_required": True}, ["service_code"]),
    ],
)
def test_a_stored_profile_blocks_documents_it_cannot_make_valid(changes, causes):
    stored = SimpleNamespace(**vars(profile(CUSTOMER)) | changes)
    assert [e["cause"] for e in domain.profile_blockers(stored, as_buyer=True)] == causes
    # a supplier is never asked for a service code
    as_supplier = [e["cause"] for e in domain.profile_blockers(stored, as_buyer=False)]
    assert as_supplier == [c for c in causes if c != "service_code"]


def test_a_buyer_that_opted_out_gets_one_invoice_whatever_the_engagement_numbers():
    buyer = SimpleNamespace(**vars(profile(CUSTOMER)) | {"one_invoice_per_reference": False})
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER), CUSTOMER: buyer})
    charges = [charge(1, CUSTOMER, 2, 100, "EJ-1"), charge(2, CUSTOMER, 3, 200, "EJ-2")]
    damage = SimpleNamespace(**vars(charge(3, CUSTOMER, 4, 50)) | {"kind": "damage"})
    run = domain.invoices_for(
        SUPPLIER, "2026-11", date(2026, 12, 1), [*charges, damage], parties, 0, NOW
    )
    (issued,) = run.invoices  # a supplier outside VAT: the damage is O like the rest
    assert (issued.order_reference, issued.total_cents) == (None, 350)
    assert issued.vat_breakdown[0]["exemption_reason"] == domain.NOT_SUBJECT_REASON


def test_an_invoice_names_one_agreement_at_most_even_for_a_buyer_that_opted_out():
    buyer = SimpleNamespace(**vars(profile(CUSTOMER)) | {"one_invoice_per_reference": False})
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER), CUSTOMER: buyer})
    charges = [
        charge(1, CUSTOMER, 2, 100, "EJ-1", agreement="CONV-1"),
        charge(2, CUSTOMER, 3, 200, "EJ-2", agreement="CONV-1"),
        charge(3, CUSTOMER, 4, 400, agreement="CONV-2"),
        charge(4, CUSTOMER, 5, 800),
    ]
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    issued = [(i.agreement_reference, i.total_cents) for i in run.invoices]
    assert issued == [(None, 800), ("CONV-1", 300), ("CONV-2", 400)]
    assert [run.lines[i.id] for i in run.invoices] == [["c4"], ["c1", "c2"], ["c3"]]


@pytest.mark.parametrize(
    ("regime", "kind", "vat"),
    [
        (VatRegime.STANDARD, "rental", ("S", Decimal("20.00"))),
        (VatRegime.STANDARD, "damage", ("O", None)),
        (VatRegime.NOT_SUBJECT, "consulting", ("O", None)),
        (VatRegime.NOT_SUBJECT, "damage", ("O", None)),
    ],
)
def test_a_damage_is_outside_the_scope_of_vat_whatever_the_suppliers_regime(regime, kind, vat):
    assert domain.line_vat(kind, regime) == vat


def test_the_billing_framework_is_services_for_every_kind_billed_today():
    assert domain.billing_framework(["rental", "damage", "consulting"]) == "S1"
    assert domain.billing_framework([]) == "S1"
    goods = dict(domain.SUPPLY_OF_KIND, rental=domain.GOODS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(domain, "SUPPLY_OF_KIND", goods)
        assert domain.billing_framework(["rental"]) == "B1"
        assert domain.billing_framework(["rental", "operator"]) == "M1"


# -- a netting ------------------------------------------------------------------------------


def test_a_netting_carries_the_net_positions_and_covers_the_oldest_invoices_first():
    settled = [
        # (customer, due date, number, id, supplier, cents)
        (CUSTOMER, date(2026, 12, 20), "n2", "late", SUPPLIER, 3000),
        (CUSTOMER, date(2026, 11, 20), "n1", "early", SUPPLIER, 2000),
        (SUPPLIER, date(2026, 11, 25), "n3", "back", CUSTOMER, 1500),
    ]
    result = domain.settlement_of(settled, "2026-11", 3, "u", NOW)
    (transfer,) = result.transfers
    assert (transfer.payer, transfer.payee, transfer.amount_cents) == (CUSTOMER, SUPPLIER, 3500)
    columns = result.columns
    assert columns["period"] == "2026-11" and columns["sequence"] == 3
    assert (columns["created_at"], columns["created_by"]) == (NOW, "u")
    assert sorted(columns["positions"], key=lambda p: p["commune"]) == [
        {"commune": SUPPLIER, "net_cents": 3500},
        {"commune": CUSTOMER, "net_cents": -3500},
    ]
    assert columns["invoices_settled"] == 3
    assert columns["compensated_cents"] == 6500 - 3500
    assert all(row["settlement_id"] == columns["id"] for row in result.trail)
    covered = [
        (row["invoice_id"], row["part"], row["amount_cents"], row["transfer_id"])
        for row in result.trail
    ]
    # "back" is compensated wholly: no transfer carries it, the database writes its row
    assert covered == [
        ("early", 1, 2000, transfer.id),
        ("late", 1, 1500, transfer.id),
        ("late", 2, 1500, None),
    ]


# -- a credit note and a declared profile, as stored ---------------------------------------


def test_a_credit_note_credits_each_line_chosen_with_its_vat_quantity_unit_and_period():
    line = domain.CreditableLine(
        2,
        "Location (2 jours)",
        10000,
        0,
        "S",
        Decimal("20.00"),
        kind="rental",
        quantity=Decimal("2.000"),
        unit="DAY",
        service_start=date(2026, 12, 1),
        service_end=date(2026, 12, 2),
    )
    exempt = domain.CreditableLine(5, "Dommage", 3000, 0, "O", None, kind="damage")
    invoice = SimpleNamespace(id="inv-1", supplier_commune=SUPPLIER, customer_commune=CUSTOMER)
    note = domain.credit_note_columns(
        invoice, [(line, 2501), (exempt, 1)], "erreur", date(2027, 1, 4), 7, "u", NOW
    )
    assert note["number"] == "42044-AV-2027-000007"
    assert (note["invoice_id"], note["supplier_commune"], note["customer_commune"]) == (
        "inv-1",
        SUPPLIER,
        CUSTOMER,
    )
    assert (note["issue_date"], note["reason"]) == (date(2027, 1, 4), "erreur")
    assert (note["net_cents"], note["vat_cents"], note["total_cents"]) == (2502, 500, 3002)
    assert [b["category"] for b in note["vat_breakdown"]] == ["O", "S"]
    assert note["lines"] == [
        {
            "line": 1,
            "invoice_line": 2,
            "description": "Location (2 jours)",
            "amount_cents": 2501,
            "vat_category": "S",
            "vat_rate": "20.00",
            "kind": "rental",
            "quantity": "2",
            "unit": "DAY",
            "service_start": "2026-12-01",
            "service_end": "2026-12-02",
        },
        {
            "line": 2,
            "invoice_line": 5,
            "description": "Dommage",
            "amount_cents": 1,
            "vat_category": "O",
            "vat_rate": None,
            "kind": "damage",
            "quantity": "1",
            "unit": "C62",
            "service_start": None,
            "service_end": None,
        },
    ]
    assert (note["issued_at"], note["issued_by"]) == (NOW, "u")
    whole = domain.credit_note_columns(
        invoice, [(line, 10000)], "annulée", date(2027, 1, 4), 8, "u", NOW
    )
    assert [(x["quantity"], x["unit"]) for x in whole["lines"]] == [("2", "DAY")]


def test_a_declared_profile_is_stored_compacted_with_a_default_legal_name():
    declared = BillingProfileInput.model_validate(
        {
            "siret": "214 200 446 00018",
            "iban": "fr28 3000 1007 94c4 2044 0000 028",
            "bic": " bdfefrppcct ",
            "address": {
                "street": "Place Jean-Jaurès",
                "additional_street": "BP 12",
                "postal_code": "42500",
                "city": "Le Chambon",
            },
            "email": "compta@example.fr",
            "service_code": "SVC-1",
        }
    )
    columns = domain.profile_columns("42044", declared, "u", NOW)
    assert columns == {
        "legal_name": "Commune du Chambon-Feugerolles",
        "siret": "21420044600018",
        "iban": "FR283000100794C420440000028",
        "bic": "BDFEFRPPCCT",
        "street": "Place Jean-Jaurès",
        "additional_street": "BP 12",
        "postal_code": "42500",
        "city": "Le Chambon",
        "country_code": "FR",
        "email": "compta@example.fr",
        "service_code": "SVC-1",
        "service_code_required": declared.service_code_required,
        "one_invoice_per_reference": True,
        "vat_regime": declared.vat_regime.value,
        "updated_at": NOW,
        "updated_by": "u",
    }
    assert domain.commune_name("42044") != "42044"
    named = declared.model_copy(update={"legal_name": "Mairie"})
    assert domain.profile_columns("42044", named, None, NOW)["legal_name"] == "Mairie"


def test_the_payers_are_known_by_their_account():
    ibans, names = domain.payers([(SUPPLIER, "FR76A"), (CUSTOMER, "FR76B")])
    assert ibans == {"FR76A": SUPPLIER, "FR76B": CUSTOMER}
    assert names == {
        SUPPLIER: domain.commune_name(SUPPLIER),
        CUSTOMER: domain.commune_name(CUSTOMER),
    }
    assert domain.commune_name("00000") == "00000"  # no such commune: its code


# -- what a refused profile or credit note says ---------------------------------------------


def profile_messages(**changes) -> dict[str, str]:
    declared = BillingProfileInput.model_validate(
        {
            "siret": "21420044600018",
            "iban": "FR28 3000 1007 94C4 2044 0000 028",
            "bic": "BDFEFRPPCCT",
            "address": {"street": "Place", "postal_code": "42500", "city": "Le Chambon"},
        }
        | changes
    )
    return {e["field"]: e["message"] for e in domain.profile_errors(declared, "214200446")}


def test_what_a_refused_billing_profile_says():
    assert profile_messages() == {}
    assert profile_messages(siret="2142004460001") == {"siret": "a SIRET has 14 digits"}
    assert profile_messages(siret="21420044600019") == {"siret": "the SIRET's check digit is wrong"}
    other_siren = domain.siret_for("217500016")
    assert profile_messages(siret=other_siren) == {
        "siret": "a SIRET of this commune starts with its SIREN 214200446"
    }
    assert profile_messages(service_code_required=True) == {
        "service_code": "required when suppliers must quote it"
    }
    broken = profile_messages(iban="FR28 3000 1007 94C4 2044 0000 029", bic="BD")
    assert broken["iban"].startswith("not a valid IBAN: ")
    assert broken["bic"].startswith("not a valid BIC: ")
    assert len(broken["iban"]) > len("not a valid IBAN: ")
    assert len(broken["bic"]) > len("not a valid BIC: ")


def test_what_a_refused_credit_note_says():
    line = domain.CreditableLine(1, "Location", 10000, 0, "O", None)
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([], [line], 5000, fully_open=False)
    assert raised.value.detail == (
        "Part of this invoice is paid or credited: say which lines to credit"
    )
    with pytest.raises(InvalidInput) as raised:
        domain.credit_note_lines([(9, 100)], [line], 10000, fully_open=True)
    assert raised.value.errors == [
        {"field": "lines.0.line", "message": "the invoice has no such line", "type": "no_line"}
    ]


def test_an_invoice_names_where_to_pay_on_the_supplier_and_the_buyers_references():
    seller = profile(SUPPLIER, "standard")
    seller.email, seller.additional_street = "compta@example.fr", "BP 12"
    parties = domain.Parties()
    parties.add({SUPPLIER: seller, CUSTOMER: profile(CUSTOMER)})
    charges = [charge(1, CUSTOMER, 20, 100, "BC-1")]
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    (issued,) = run.invoices
    address = {"street": "Place de la Mairie", "postal_code": "42000", "city": "Ville"}
    siren = seller.siret[:9]
    vat_number = f"FR{(12 + 3 * (int(siren) % 97)) % 97:02d}{siren}"  # the key of a SIREN
    assert issued.supplier == {
        "insee_code": SUPPLIER,
        "name": domain.commune_name(SUPPLIER),
        "legal_name": "Commune 42044",
        "siren": seller.siret[:9],
        "siret": seller.siret,
        "address": address | {"additional_street": "BP 12", "country_code": "FR"},
        "vat_number": vat_number,
        "service_code": None,
        "engagement_number": None,
        "iban": seller.iban,
        "bic": seller.bic,
        "email": "compta@example.fr",
    }
    buyer = parties.profiles[CUSTOMER]
    assert issued.customer == {
        "insee_code": CUSTOMER,
        "name": domain.commune_name(CUSTOMER),
        "legal_name": "Commune 42218",
        "siren": buyer.siret[:9],
        "siret": buyer.siret,
        "address": address | {"additional_street": None, "country_code": "FR"},
        "vat_number": None,  # not subject to VAT: no number (EN 16931)
        "service_code": "SVC-42218",
        "engagement_number": "BC-1",
        "iban": None,
        "bic": None,
        "email": None,
    }
    assert parties.party(CUSTOMER, False) == issued.customer | {"engagement_number": None}


def test_invoice_lines_come_by_date_then_booking_with_the_rental_first():
    def line(n: int, day: int, source: str, kind: str):
        return SimpleNamespace(
            id=f"c{n}",
            customer_commune=CUSTOMER,
            charge_date=date(2026, 11, day),
            source_reference=source,
            kind=kind,
            amount_cents=100,
            order_reference=None,
            agreement_reference=None,
        )

    charges = [
        line(1, 5, "booking:b2:damage:1", "damage"),
        line(2, 5, "booking:b1:late_fee", "late_fee"),
        line(3, 5, "booking:b2:rental", "rental"),
        line(4, 5, "booking:b1:rental", "rental"),
        line(5, 4, "timesheet:t9", "consulting"),
        line(6, 5, "booking:b1:operator", "operator"),
    ]
    parties = domain.Parties()
    parties.add({SUPPLIER: profile(SUPPLIER), CUSTOMER: profile(CUSTOMER)})
    run = domain.invoices_for(SUPPLIER, "2026-11", date(2026, 12, 1), charges, parties, 0, NOW)
    assert list(run.lines.values()) == [["c5", "c4", "c6", "c2", "c3", "c1"]]
    assert domain.line_order(date(2026, 11, 5), "booking:b1:rental", "rental") < (
        domain.line_order(date(2026, 11, 5), "booking:b1:operator", "operator")
    )

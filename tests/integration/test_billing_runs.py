"""Billing runs, payments and settlements on a real database, PostgreSQL and SQLite: numbers
stay gapless and each charge is invoiced once under concurrent runs; statements imported
twice record nothing twice; concurrent settlements settle once."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import eventlet
import pytest
from sqlalchemy import func, select

from contracts.billing import ChargeKind, profile_blocked
from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.database import DuplicateEvent
from infra.messaging_tables import outbox, processed_events
from services.billing import domain, repository
from services.billing.models import ChargeRow, InvoiceLineRow, InvoiceRow, PaymentRow
from services.billing.service import charge_at_commit
from tests.integration.billing_support import (
    add_charges,
    assert_every_document_valid,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
    iban_for,
)
from tests.integration.test_database import statements_naming

SUPPLIERS = ["42044", "42095", "42218"]
CUSTOMERS = ["42207", "42189", "42218", "42044"]
OPERATOR = caller("42218", "operator")


@pytest.fixture
def db(database_url):
    access = billing_database(database_url)
    declare_profiles(access, sorted(set(SUPPLIERS + CUSTOMERS)))
    yield access
    assert_every_document_valid(access)  # whatever the test issued passes EN 16931


def random_charges(rng: random.Random, count: int) -> list[tuple[str, str, int]]:
    pairs = []
    while len(pairs) < count:
        supplier, customer = rng.choice(SUPPLIERS), rng.choice(CUSTOMERS)
        if supplier != customer:
            pairs.append((supplier, customer, rng.randint(1, 500_000)))
    return pairs


def test_concurrent_runs_give_gapless_numbers_and_invoice_each_charge_once(db):
    service = billing_service(db)
    period = domain.period_of(paris_today())
    rng = random.Random(7)
    callers = [OPERATOR, OPERATOR] + [caller(s, "finance") for s in SUPPLIERS]
    for _ in range(3):  # charges keep arriving between rounds of simultaneous runs
        add_charges(db, random_charges(rng, 40), paris_today())
        runs = [
            eventlet.spawn(service.run_billing, who, {"period": period})
            for who in rng.sample(callers, len(callers))
        ]
        for run in runs:
            run.wait()

    with db.reading() as session:
        numbers = session.execute(select(InvoiceRow.supplier_commune, InvoiceRow.number)).all()
        charged = session.scalar(select(func.sum(ChargeRow.amount_cents)))
        invoiced = session.scalar(select(func.sum(InvoiceRow.total_cents)))
        lines = session.scalar(select(func.count()).select_from(InvoiceLineRow))
        charges = session.scalar(select(func.count()).select_from(ChargeRow))
    by_supplier: dict[str, list[int]] = defaultdict(list)
    for supplier, number in numbers:
        assert number.startswith(f"{supplier}-{paris_today().year}-")
        by_supplier[supplier].append(int(number.rsplit("-", 1)[1]))
    for supplier, sequence in by_supplier.items():
        assert sorted(sequence) == list(range(1, len(sequence) + 1)), supplier
    assert lines == charges == 120
    assert invoiced == charged

    # one more run has nothing left to issue
    assert service.run_billing(OPERATOR, {"period": period})["invoices"] == []


def test_a_finance_team_issues_only_its_communes_invoices_and_pairs_without_profile_wait(db):
    service = billing_service(db)
    today = paris_today()
    period = domain.period_of(today)
    add_charges(
        db, [("42044", "42218", 1000), ("42095", "42218", 2000), ("42044", "69123", 30)], today
    )

    mine = service.run_billing(caller("42044", "finance"), {"period": period})
    assert [i["supplier_commune"] for i in mine["invoices"]] == ["42044"]
    assert [(s["customer_commune"], s["charges"]) for s in mine["skipped"]] == [("69123", 1)]
    assert "no billing profile" in mine["skipped"][0]["reason"]
    rest = service.run_billing(OPERATOR, {"period": period})
    assert [i["supplier_commune"] for i in rest["invoices"]] == ["42095"]

    with pytest.raises(InvalidInput) as refused:
        service.run_billing(OPERATOR, {"period": "2999-01"})
    assert refused.value.errors[0]["field"] == "period"
    with pytest.raises(InvalidInput) as refused:
        service.run_billing(OPERATOR, {"period": "2026-13"})
    assert refused.value.errors[0]["field"] == "period"


def test_statements_pay_by_number_or_amount_and_an_import_twice_records_nothing_twice(db):
    service = billing_service(db)
    today = paris_today()
    add_charges(db, [("42044", "42218", 99000), ("42044", "42207", 25000)], today)
    run = service.run_billing(OPERATOR, {"period": domain.period_of(today)})
    number = {i["customer_commune"]: i for i in run["invoices"]}
    chambon = caller("42044", "finance")
    csv = (
        "date,amount,counterparty,iban,remittance\n"
        f"{today},400.00,COMMUNE DE SAINT ETIENNE,,FACT {number['42218']['number']}\n"
        f"{today},250.00,TRESOR PUBLIC,{iban_for('42207')},loyer matériel\n"
        f"{today},12.34,INCONNU,,don\n"
        f"{today},-50.00,EDF,,prélèvement\n"
    ).encode()
    import base64

    content = base64.b64encode(csv).decode()
    first = service.import_statement(chambon, content)
    assert (len(first["matched"]), len(first["unmatched"]), first["ignored"]) == (2, 1, 1)
    second = service.import_statement(chambon, content)
    assert (second["matched"], second["unmatched"], second["duplicates"]) == ([], [], 3)
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(PaymentRow)) == 2

    partly = service.get_invoice(chambon, number["42218"]["id"])
    assert (partly["status"], partly["balance_cents"]) == ("partially_paid", 59000)
    paid = service.get_invoice(chambon, number["42207"]["id"])
    assert (paid["status"], paid["balance_cents"]) == ("paid", 0)

    # the unknown credit waits for a hand match; paying too much is kept as overpaid, when
    # the finance officer says so
    (line,) = service.unmatched_payments(chambon)["items"]
    assert line["amount_cents"] == 1234
    service.record_payment(
        chambon, {"invoice_id": number["42218"]["id"], "amount_cents": 59000, "date": str(today)}
    )
    with pytest.raises(InvalidInput) as refused:
        service.match_statement_line(chambon, line["id"], {"invoice_id": number["42218"]["id"]})
    assert refused.value.errors[0]["type"] == "over_balance"
    matched = service.match_statement_line(
        chambon, line["id"], {"invoice_id": number["42218"]["id"], "overpayment": True}
    )
    assert matched["status"] == "matched"
    over = service.get_invoice(chambon, number["42218"]["id"])
    assert (over["status"], over["balance_cents"], over["overpaid_cents"]) == ("paid", 0, 1234)
    assert service.unmatched_payments(chambon)["items"] == []
    with pytest.raises(Conflict):
        service.match_statement_line(chambon, line["id"], {"invoice_id": number["42218"]["id"]})


def test_only_the_issuer_records_payments_and_credits_and_strangers_see_nothing(db):
    service = billing_service(db)
    today = paris_today()
    add_charges(db, [("42044", "42218", 5000)], today)
    (invoice,) = service.run_billing(OPERATOR, {"period": domain.period_of(today)})["invoices"]
    payment = {"invoice_id": invoice["id"], "amount_cents": 100, "date": str(today)}
    from contracts.errors import Forbidden

    with pytest.raises(Forbidden):
        service.record_payment(caller("42218", "finance"), payment)
    with pytest.raises(Forbidden):
        service.issue_credit_note(caller("42218", "finance"), invoice["id"], {"reason": "non"})
    with pytest.raises(NotFound):
        service.get_invoice(caller("42207", "finance"), invoice["id"])
    with pytest.raises(NotFound):
        service.get_invoice(caller("42044", "agent"), invoice["id"])

    whole = service.issue_credit_note(
        caller("42044", "finance"), invoice["id"], {"reason": "annulée"}
    )
    assert whole["totals"]["total_cents"] == 5000
    cancelled = service.get_invoice(caller("42218", "manager"), invoice["id"])
    assert (cancelled["status"], cancelled["balance_cents"]) == ("cancelled", 0)
    with pytest.raises(Conflict):
        service.record_payment(caller("42044", "finance"), payment)


def test_a_profile_is_refused_field_by_field(db):
    service = billing_service(db)
    with pytest.raises(InvalidInput) as refused:
        service.put_profile(
            caller("42044", "finance"),
            {
                "siret": domain.siret_for("214202186"),  # Saint-Étienne's
                "iban": "FR7630001007941234567890186",
                "bic": "BDFEFRPPCCT",
                "address": {"street": "Place", "postal_code": "4250", "city": "Le Chambon"},
            },
        )
    assert {e["field"] for e in refused.value.errors} == {"address.postal_code"}
    with pytest.raises(InvalidInput) as refused:
        service.put_profile(
            caller("42044", "finance"),
            {
                "siret": domain.siret_for("214202186"),
                "iban": "FR7630001007941234567890186",
                "bic": "BDFEFRPPCCT",
                "address": {"street": "Place", "postal_code": "42500", "city": "Le Chambon"},
                "service_code_required": True,
            },
        )
    assert {e["field"] for e in refused.value.errors} == {"siret", "iban", "service_code"}


def test_two_nettings_of_the_same_invoices_accepted_at_once_settle_them_once(db):
    """Two proposals of the same period, every party accepting both at the same moment:
    one takes effect, the other is void (its invoices were settled), nothing twice."""
    service = billing_service(db)
    today = paris_today()
    period = domain.period_of(today)
    add_charges(
        db,
        [
            ("42044", "42218", 99000),
            ("42095", "42218", 112500),
            ("42218", "42044", 40000),
            ("42218", "42095", 30000),
            ("42044", "42095", 1000),
        ],
        today,
    )
    service.run_billing(OPERATOR, {"period": period})
    proposals = [service.settle(OPERATOR, {"period": period}) for _ in range(2)]
    parties = ["42044", "42095", "42218"]

    def accept(proposal_id: str, commune: str):
        try:
            return service.accept_settlement(caller(commune, "finance"), proposal_id)
        except Conflict as exc:
            return exc

    attempts = [
        eventlet.spawn(accept, proposal["id"], commune)
        for commune in parties
        for proposal in proposals
    ]
    for attempt in attempts:
        attempt.wait()
    final = [service.get_settlement(OPERATOR, p["id"]) for p in proposals]
    assert sorted(f["status"] for f in final) == ["effective", "void"]
    (done,) = [f for f in final if f["status"] == "effective"]
    assert done["invoices_settled"] == 5
    assert len(done["transfers"]) <= len(done["positions"]) - 1
    assert sum(t["amount_cents"] for t in done["transfers"]) == sum(
        p["net_cents"] for p in done["positions"] if p["net_cents"] > 0
    )
    with db.reading() as session:
        rows = list(session.scalars(select(InvoiceRow)))
    assert {r.status for r in rows} == {"settled"}
    assert all(domain.balance(r) == 0 for r in rows)


def damage_line(reference: str, cents: int) -> domain.ChargeDraft:
    return domain.ChargeDraft(
        kind=ChargeKind.DAMAGE,
        supplier="42044",
        customer="42218",
        source_reference=reference,
        description="Dommage",
        quantity=Decimal(1),
        unit="C62",
        unit_price_cents=cents,
        amount_cents=cents,
        charge_date=date(2026, 12, 1),
        order_reference=None,
    )


def charges_and_announcements(db) -> tuple[dict[str, str], list[str]]:
    """The charges stored (id: source line) and the ids charge.recorded announced."""
    with db.engine.connect() as conn:
        stored = dict(conn.execute(select(ChargeRow.id, ChargeRow.source_reference)).all())
        bodies = conn.scalars(
            select(outbox.c.body).where(outbox.c.routing_key == "charge.recorded")
        ).all()
    return stored, [json.loads(body)["payload"]["charge_id"] for body in bodies]


def test_an_event_charges_each_source_line_once_and_tells_of_each_new_charge(db):
    """charge_at_commit writes an event's lines in one statement: a line repeated inside the
    event, or seen in an earlier one, is charged once and announced once."""
    line = damage_line
    with db.transaction() as tx:
        charge_at_commit(
            tx, [line("b1:rental", 2000), line("b1:rental", 2000), line("b1:damage", 150)], "e1"
        )
    first, _ = charges_and_announcements(db)
    with db.transaction() as tx:
        charge_at_commit(tx, [line("b1:damage", 150), line("b2", 90)], "e2")

    stored, announced = charges_and_announcements(db)
    again = set(stored) - set(first)
    assert len(first) == 2 and len(again) == 1
    assert sorted(stored.values()) == ["b1:damage", "b1:rental", "b2"]
    assert sorted(announced) == sorted(stored)  # each new charge told of once
    assert len(announced) == 3


def test_a_handled_event_charges_its_new_lines_announced_in_order_in_one_statement(db):
    """charge_at_commit in billing's handler (handling_keyed): on PostgreSQL the charges,
    their charge.recorded and the processed_events row are one statement committing alone;
    either way each source line is charged and announced once, in the event's order, and a
    second delivery changes nothing."""
    returned = SimpleNamespace(event_id=uuid.uuid4(), type="booking.returned")
    lines = [damage_line("b1:rental", 2000), damage_line("b1:rental", 2000)]
    lines += [damage_line("b1:operator", 500), damage_line("b1:damage", 150)]
    with (
        statements_naming(db.engine, "charges") as statements,
        db.handling_keyed(returned) as tx,
    ):
        charge_at_commit(tx, lines, str(returned.event_id))
    if db.engine.dialect.name == "postgresql":
        assert len(statements) == 1 and "processed_events" in statements[0]
    with pytest.raises(DuplicateEvent), db.handling_keyed(returned) as tx:
        charge_at_commit(tx, lines, str(returned.event_id))
    again = SimpleNamespace(event_id=uuid.uuid4(), type="booking.returned")  # re-emitted
    with db.handling_keyed(again) as tx:
        charge_at_commit(tx, [damage_line("b1:damage", 150), damage_line("b2", 90)], "e2")

    with db.engine.connect() as conn:
        stored = dict(conn.execute(select(ChargeRow.id, ChargeRow.source_reference)).all())
        announced = [
            json.loads(body)["payload"]
            for body in conn.scalars(
                select(outbox.c.body)
                .where(outbox.c.routing_key == "charge.recorded")
                .order_by(outbox.c.id)
            )
        ]
        handled = conn.scalar(select(func.count()).select_from(processed_events))
    assert sorted(stored.values()) == ["b1:damage", "b1:operator", "b1:rental", "b2"]
    assert [stored[charge["charge_id"]] for charge in announced] == [
        "b1:rental",
        "b1:operator",
        "b1:damage",
        "b2",
    ]
    assert handled == 2


def test_a_profile_that_cannot_produce_a_valid_invoice_blocks_its_customer_only(db):
    service = billing_service(db)
    today = paris_today()
    period = domain.period_of(today)
    add_charges(db, [("42044", "42218", 1000), ("42044", "42207", 2000)], today)
    with db.transaction() as tx:  # stored by an older version: Saint-Étienne's SIRET
        row = repository.profile_of(tx.session, "42207")
        row.siret, row.service_code_required = domain.siret_for("214202186"), True

    run = service.run_billing(caller("42044", "finance"), {"period": period})
    assert [i["customer_commune"] for i in run["invoices"]] == ["42218"]
    (held,) = run["skipped"]
    assert (held["customer_commune"], held["code"]) == ("42207", "billing_profile_incomplete")
    assert {(e["field"], e["type"], e["cause"]) for e in profile_blocked(run)} == {
        ("profiles.42207.siret", "billing_profile_incomplete", "siret_siren"),
        ("profiles.42207.service_code", "billing_profile_incomplete", "service_code"),
    }
    with db.reading() as session:
        assert (
            session.scalar(
                select(func.count())
                .select_from(InvoiceRow)
                .where(InvoiceRow.customer_commune == "42207")
            )
            == 0
        )

    # the commune fixes its profile: the next run issues what waited
    declare_profiles(db, ["42207"])
    rerun = service.run_billing(caller("42044", "finance"), {"period": period})
    assert [i["customer_commune"] for i in rerun["invoices"]] == ["42207"]


def test_a_billing_run_previews_what_it_would_issue_and_stores_nothing(db):
    service = billing_service(db)
    today = paris_today()
    period = domain.period_of(today)
    add_charges(
        db, [("42044", "42218", 99000), ("42044", "42218", 1500), ("42044", "42207", 25000)], today
    )
    chambon = caller("42044", "finance")
    preview = service.preview_billing_run(chambon, {"period": period})
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(InvoiceRow)) == 0
    assert preview["total_cents"] == 125500
    run = service.run_billing(chambon, {"period": period})
    expected = sorted(
        (i["customer_commune"], i["total_cents"], i["lines"]) for i in run["invoices"]
    )
    shown = sorted(
        (i["customer_commune"], i["total_cents"], i["lines"]) for i in preview["invoices"]
    )
    assert shown == expected == [("42207", 25000, 1), ("42218", 100500, 2)]
    assert service.preview_billing_run(chambon, {"period": period})["invoices"] == []
    with pytest.raises(InvalidInput):
        service.preview_billing_run(chambon, {"period": "2999-01"})
    with pytest.raises(Forbidden):
        service.preview_billing_run(caller("42044", "manager"), {"period": period})

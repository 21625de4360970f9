"""Billing end to end, through the gateway: Saint-Étienne returns Le Chambon-Feugerolles'
snowplough with a damage and approves Firminy's urbanist's days; a billing run issues the two
invoices, their UBL passes the XSD and EN 16931; CAMT.053 statements pay one fully and one
partly; aging and statements show it; a netting among the three, once all three accepted it, settles
in two transfers that stay owed."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update

from contracts.consultants import EngagementTimesheetApproved, TimesheetApproval
from services.billing import domain
from services.billing.models import BillingProfileRow
from services.billing.validation import factur_x_problems, problems
from tests.integration.messaging import publish_event
from tests.support import Stack, assert_problem, day, paris_today, this_period, wait_until

CHAMBON, FIRMINY, SAINT_ETIENNE, SAINT_CHAMOND = "42044", "42095", "42218", "42207"
ROCHE = "42189"  # Roche-la-Molière
SNOWPLOUGH = {
    "title": "Chasse-neige Unimog, lame 3 m",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 42000,
    "deposit_cents": 150000,
    "quantity": 1,
}
CAMT = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">
 <BkToCstmrStmt>
  <GrpHdr><MsgId>{id}</MsgId><CreDtTm>{day}T18:00:00</CreDtTm></GrpHdr>
  <Stmt>
   <Id>{id}</Id><CreDtTm>{day}T18:00:00</CreDtTm>
   <Acct><Id><IBAN>{account}</IBAN></Id></Acct>
   <Ntry>
    <Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>BOOK</Sts>
    <BookgDt><Dt>{day}</Dt></BookgDt><AcctSvcrRef>{id}-1</AcctSvcrRef>
    <NtryDtls><TxDtls>
     <RltdPties><Dbtr><Nm>COMMUNE DE SAINT-ETIENNE</Nm></Dbtr>
      <DbtrAcct><Id><IBAN>FR283000100794C422180000093</IBAN></Id></DbtrAcct></RltdPties>
     <RmtInf><Ustrd>{remittance}</Ustrd></RmtInf>
    </TxDtls></NtryDtls>
   </Ntry>
  </Stmt>
 </BkToCstmrStmt>
</Document>"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def billing_stack(request, tmp_path_factory):
    """A stack of its own: billing runs and nettings span every commune's open invoices, so
    other tests' bookings must not be part of them."""
    workdir = tmp_path_factory.mktemp(f"billing-{request.param}")
    with Stack(request.param, workdir).running() as running:
        yield running


def approve_timesheet(stack: Stack, lender: str, borrower: str, days: str, rate: int, **extra):
    """A timesheet approval with chosen days and rate, published straight on the stack's
    consultants.events exchange: this test is about what billing charges for it (the
    consultants service's own event is proven in test_consultants_flow)."""
    amount = int((Decimal(days) * rate).to_integral_value())
    event = EngagementTimesheetApproved.new(
        TimesheetApproval(
            engagement_id=str(uuid.uuid4()),
            timesheet_id=str(uuid.uuid4()),
            consultant_id=str(uuid.uuid4()),
            consultant_name=extra.pop("name", "Claire Martin, urbaniste"),
            lender_commune=lender,
            borrower_commune=borrower,
            work_date=paris_today(),
            days=Decimal(days),
            day_rate_cents=rate,
            amount_cents=amount,
            **extra,
        ),
        producer="consultants",
        correlation_id="e2e-billing",
    )
    publish_event(stack.vhost.amqp_uri, event)
    return event


MIRROR = {"description": "Rétroviseur gauche", "amount_cents": 15000}


def return_snowplough(stack: Stack, damage: dict = MIRROR) -> str:
    """Through the gateway, as the bookings flow: book, approve, check out, return with a
    150.00 EUR damage (by default)."""
    lender = stack.as_role("manager", CHAMBON)
    borrower = stack.as_role("agent", SAINT_ETIENNE)
    listing = lender.post(f"{stack.url}/api/v1/listings", json=SNOWPLOUGH)
    assert listing.status_code == 201, listing.text
    request = {
        "listing_id": listing.json()["id"],
        "start": day(0),  # handed over on its first day: today
        "end": day(2),
        "purpose": "Déneigement des côtes de Montreynaud",
        "order_reference": "EJ-2026-0042",
    }

    def booked():
        answer = borrower.post(f"{stack.url}/api/v1/bookings", json=request)
        return answer.json() if answer.status_code == 201 else None

    booking = wait_until(booked, timeout=10)  # once bookings has its copy of the listing
    path = f"{stack.url}/api/v1/bookings/{booking['id']}"
    assert lender.post(f"{path}/approve").json()["status"] == "approved"
    assert lender.post(f"{path}/check-out", json={"condition": "Lame neuve"}).status_code == 200
    back = lender.post(
        f"{path}/return",
        json={
            "condition": "Rétroviseur gauche cassé",
            "damages": [damage],
        },
    )
    assert back.json()["status"] == "returned", back.text
    return booking["id"]


def agent_of(stack: Stack):
    return stack.as_role("agent", SAINT_ETIENNE)


def statement_of(account: str, amount: str, remittance: str) -> bytes:
    """A CAMT.053 statement of `account` with one credit from Saint-Étienne."""
    return CAMT.format(
        id=f"STMT-{uuid.uuid4().hex[:8]}",
        day=paris_today().isoformat(),
        account=account,
        amount=amount,
        remittance=remittance,
    ).encode()


def assert_valid_ubl(session, url: str) -> None:
    answer = session.get(url)
    assert answer.status_code == 200, answer.text
    assert answer.headers["Content-Type"].startswith("application/xml")
    assert problems(answer.content) == [], url


def test_bookings_and_timesheets_are_invoiced_paid_reported_and_netted(billing_stack):
    stack = billing_stack
    api = f"{stack.url}/api/v1"
    period = this_period()
    operator = stack.login("operator@mutualis-demo.fr")
    finance = {c: stack.as_role("finance", c) for c in (CHAMBON, FIRMINY, SAINT_ETIENNE)}

    # the demo seed declared each commune's billing profile; a wrong SIRET is refused
    profile = finance[CHAMBON].get(f"{api}/billing/profile").json()
    assert (profile["siret"], profile["vat_regime"]) == ("21420044600018", "not_subject")
    declared = {k: profile[k] for k in ("siret", "iban", "bic", "address", "legal_name")}
    refused = finance[CHAMBON].put(
        f"{api}/billing/profile", json=declared | {"siret": "21420044600019", "bic": "X"}
    )
    assert refused.status_code == 422
    assert {e["field"] for e in refused.json()["errors"]} == {"siret", "bic"}
    assert finance[CHAMBON].put(f"{api}/billing/profile", json=declared).status_code == 200

    booking_id = return_snowplough(stack)
    approve_timesheet(stack, FIRMINY, SAINT_ETIENNE, "2.5", 45000, mission="Révision du PLU")

    def uninvoiced():
        answer = finance[SAINT_ETIENNE].get(
            f"{api}/charges", params={"status": "uninvoiced", "direction": "received"}
        )
        items = answer.json()["items"]
        return items if len(items) == 3 else None

    charges = wait_until(uninvoiced, timeout=10)
    assert sorted((c["kind"], c["amount_cents"]) for c in charges) == [
        ("consulting", 112500),
        ("damage", 15000),
        ("rental", 84000),
    ]
    assert {c["period"] for c in charges} == {period}

    # -- the billing run --------------------------------------------------------------
    run = operator.post(f"{api}/billing/runs", json={"period": period})
    assert run.status_code == 200, run.text
    issued = {i["supplier_commune"]: i for i in run.json()["invoices"]}
    assert set(issued) == {CHAMBON, FIRMINY}
    year = run.json()["issue_date"][:4]
    assert issued[CHAMBON]["number"] == f"{CHAMBON}-{year}-000001"
    assert issued[FIRMINY]["number"] == f"{FIRMINY}-{year}-000001"
    again = operator.post(f"{api}/billing/runs", json={"period": period})
    assert again.json()["invoices"] == []  # nothing is invoiced twice
    bad = operator.post(f"{api}/billing/runs", json={"period": "2026-13"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
    assert agent_of(stack).post(f"{api}/billing/runs", json={"period": period}).status_code == 403

    snowplough = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[CHAMBON]['id']}").json()
    assert [
        (line["kind"], line["quantity"], line["unit"], line["amount_cents"])
        for line in snowplough["lines"]
    ] == [("rental", "2", "DAY", 84000), ("damage", "1", "C62", 15000)]
    assert snowplough["lines"][0]["source_reference"] == f"booking:{booking_id}:rental"
    assert snowplough["totals"]["total_cents"] == 99000
    assert snowplough["vat_breakdown"][0]["category"] == "O"
    assert snowplough["customer"]["service_code"] == "DIRFIN"
    assert snowplough["customer"]["engagement_number"] == "EJ-2026-0042"
    assert snowplough["order_reference"] == "EJ-2026-0042"
    assert snowplough["supplier"]["siret"].startswith("214200446")
    assert date.fromisoformat(snowplough["due_date"]) - date.fromisoformat(
        snowplough["issue_date"]
    ) == timedelta(days=30)
    urbanist = finance[FIRMINY].get(f"{api}/invoices/{issued[FIRMINY]['id']}").json()
    assert [
        (line["quantity"], line["unit_price_cents"], line["amount_cents"])
        for line in urbanist["lines"]
    ] == [("2.5", 45000, 112500)]
    assert urbanist["totals"]["total_cents"] == 112500 and urbanist["status"] == "issued"

    # only the two communes concerned see an invoice
    stranger = stack.as_role("finance", SAINT_CHAMOND)
    assert stranger.get(f"{api}/invoices/{issued[CHAMBON]['id']}").status_code == 404
    assert stranger.get(f"{api}/invoices/{issued[CHAMBON]['id']}/ubl").status_code == 404
    agent = agent_of(stack)
    assert agent.get(f"{api}/invoices/{issued[CHAMBON]['id']}").status_code == 403

    for invoice in issued.values():
        assert_valid_ubl(finance[SAINT_ETIENNE], f"{api}/invoices/{invoice['id']}/ubl")
    printed = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[CHAMBON]['id']}/pdf")
    assert printed.headers["Content-Type"] == "application/pdf"
    assert printed.content.startswith(b"%PDF")
    assert factur_x_problems(printed.content) == []  # Factur-X EN 16931, French CTC rules

    # -- payments from bank statements -------------------------------------------------
    full = statement_of(
        "FR283000100794C420440000028",
        "990.00",
        f"VIR FACTURE {issued[CHAMBON]['number']}",
    )
    imported = finance[CHAMBON].post(
        f"{api}/payments/import", data=full, headers={"Content-Type": "application/xml"}
    )
    assert imported.status_code == 200, imported.text
    assert len(imported.json()["matched"]) == 1 and imported.json()["unmatched"] == []
    unreadable = finance[CHAMBON].post(
        f"{api}/payments/import", data=b"when;how\n1;2\n", headers={"Content-Type": "text/csv"}
    )
    assert unreadable.status_code == 422 and unreadable.json()["errors"][0]["field"] == "body"
    wrong_type = finance[CHAMBON].post(
        f"{api}/payments/import", data=full, headers={"Content-Type": "application/pdf"}
    )
    assert wrong_type.status_code == 415
    twice = finance[CHAMBON].post(
        f"{api}/payments/import", data=full, headers={"Content-Type": "application/xml"}
    )
    assert twice.json()["duplicates"] == 1 and twice.json()["matched"] == []

    partial = statement_of(
        "FR283000100794C420950000032",
        "500.00",
        f"ACOMPTE {issued[FIRMINY]['number'].replace('-', ' ')}",
    )
    imported = finance[FIRMINY].post(
        f"{api}/payments/import", data=partial, headers={"Content-Type": "application/xml"}
    )
    assert len(imported.json()["matched"]) == 1, imported.text

    snowplough = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[CHAMBON]['id']}").json()
    assert (snowplough["status"], snowplough["balance_cents"]) == ("paid", 0)
    assert len(snowplough["payments"]) == 1
    urbanist = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[FIRMINY]['id']}").json()
    assert (urbanist["status"], urbanist["balance_cents"]) == ("partially_paid", 62500)

    # -- aging and statements ----------------------------------------------------------
    late = (date.fromisoformat(urbanist["due_date"]) + timedelta(days=40)).isoformat()
    aging = (
        finance[SAINT_ETIENNE]
        .get(f"{api}/reports/aging", params={"direction": "payable", "as_of": late})
        .json()
    )
    assert [
        (r["counterparty"], r["days_31_60_cents"], r["total_cents"]) for r in aging["rows"]
    ] == [(FIRMINY, 62500, 62500)]
    aging_csv = finance[FIRMINY].get(f"{api}/reports/aging", params={"format": "csv"})
    assert aging_csv.headers["Content-Type"].startswith("text/csv")
    assert f"{SAINT_ETIENNE},Saint-Étienne,625.00,0.00" in aging_csv.text

    statement = (
        finance[FIRMINY].get(f"{api}/statements", params={"counterparty": SAINT_ETIENNE}).json()
    )
    assert [(e["kind"], e["debit_cents"], e["credit_cents"]) for e in statement["entries"]] == [
        ("invoice_issued", 112500, 0),
        ("payment_received", 0, 50000),
    ]
    assert statement["closing_balance_cents"] == 62500
    as_csv = finance[SAINT_ETIENNE].get(
        f"{api}/statements", params={"counterparty": CHAMBON}, headers={"Accept": "text/csv"}
    )
    assert as_csv.text.splitlines()[0] == (
        "date,kind,reference,description,debit_eur,credit_eur,balance_eur"
    )
    assert as_csv.text.splitlines()[-1].endswith(",0.00")

    # -- a credit note lowers what is owed ----------------------------------------------
    credit = finance[FIRMINY].post(
        f"{api}/invoices/{issued[FIRMINY]['id']}/credit-notes",
        json={
            "reason": "Demi-journée non effectuée",
            "lines": [{"line": 1, "amount_cents": 12500}],
        },
    )
    assert credit.status_code == 201, credit.text
    assert credit.json()["number"] == f"{FIRMINY}-AV-{year}-000001"
    urbanist = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[FIRMINY]['id']}").json()
    assert urbanist["balance_cents"] == 50000
    assert urbanist["lines"][0]["amount_cents"] == 112500  # the invoice itself never changes

    # -- netting among three communes with mutual debts --------------------------------
    approve_timesheet(stack, SAINT_ETIENNE, CHAMBON, "1", 40000, name="Marc Roux, juriste")
    approve_timesheet(stack, SAINT_ETIENNE, FIRMINY, "0.5", 60000, name="Marc Roux, juriste")
    wait_until(
        lambda: (
            len(
                finance[SAINT_ETIENNE]
                .get(f"{api}/charges", params={"status": "uninvoiced", "direction": "issued"})
                .json()["items"]
            )
            == 2
        ),
        timeout=10,
    )
    run = operator.post(f"{api}/billing/runs", json={"period": period}).json()
    assert sorted(i["customer_commune"] for i in run["invoices"]) == [CHAMBON, FIRMINY]
    assert {i["number"] for i in run["invoices"]} == {
        f"{SAINT_ETIENNE}-{year}-000001",
        f"{SAINT_ETIENNE}-{year}-000002",
    }

    # a netting is a proposal: nothing moves until every commune concerned accepted it
    proposed = operator.post(f"{api}/settlements", json={"period": period})
    assert proposed.status_code == 201, proposed.text
    assert proposed.json()["status"] == "proposed"
    netting_id = proposed.json()["id"]
    stranger = stack.as_role("finance", SAINT_CHAMOND)
    assert stranger.get(f"{api}/settlements/{netting_id}").status_code == 404
    assert stranger.post(f"{api}/settlements/{netting_id}/accept").status_code == 404
    for commune in (CHAMBON, FIRMINY):
        accepted = finance[commune].post(f"{api}/settlements/{netting_id}/accept")
        assert accepted.json()["status"] == "proposed", accepted.text
    before = finance[SAINT_ETIENNE].get(f"{api}/invoices/{issued[FIRMINY]['id']}").json()
    assert before["status"] == "partially_paid"
    last = finance[SAINT_ETIENNE].post(f"{api}/settlements/{netting_id}/accept")
    assert last.status_code == 200 and last.json()["status"] == "effective", last.text
    netting = operator.get(f"{api}/settlements/{netting_id}").json()
    positions = {p["commune"]: p["net_cents"] for p in netting["positions"]}
    # Saint-Étienne is owed 40000 + 30000 and owes Firminy 50000; Le Chambon owes 40000
    assert positions == {SAINT_ETIENNE: 20000, FIRMINY: 20000, CHAMBON: -40000}
    assert len(netting["transfers"]) <= len(positions) - 1
    assert sorted((t["payer"], t["payee"], t["amount_cents"]) for t in netting["transfers"]) == [
        (CHAMBON, FIRMINY, 20000),
        (CHAMBON, SAINT_ETIENNE, 20000),
    ]
    assert netting["invoices_settled"] == 3
    replay = operator.post(f"{api}/settlements", json={"period": period})
    assert replay.status_code == 409  # nothing open is left to net
    (owed,) = [
        o
        for o in finance[CHAMBON].get(f"{api}/obligations").json()["items"]
        if o["payee"] == SAINT_ETIENNE
    ]
    assert (owed["amount_cents"], owed["status"]) == (20000, "open")

    received = finance[SAINT_ETIENNE].get(f"{api}/invoices", params={"period": period}).json()
    statuses = {i["number"]: (i["status"], i["balance_cents"]) for i in received["items"]}
    assert statuses[issued[CHAMBON]["number"]] == ("paid", 0)
    assert statuses[issued[FIRMINY]["number"]] == ("settled", 0)
    assert {s for n, s in statuses.items() if n.startswith(SAINT_ETIENNE)} == {("settled", 0)}
    # what remains is the transfer Le Chambon owes, until it is paid
    aging = finance[SAINT_ETIENNE].get(f"{api}/reports/aging").json()
    assert [(r["counterparty"], r["total_cents"]) for r in aging["rows"]] == [(CHAMBON, 20000)]

    # every invoice and credit note this stack issued passes the XSD and EN 16931
    seen = 0
    for session in finance.values():
        for item in session.get(f"{api}/invoices", params={"direction": "issued"}).json()["items"]:
            assert_valid_ubl(session, f"{api}/invoices/{item['id']}/ubl")
            seen += 1
            for note in session.get(f"{api}/invoices/{item['id']}").json()["credit_notes"]:
                assert_valid_ubl(session, f"{api}/credit-notes/{note['id']}/ubl")
                seen += 1
    assert seen == 5


def test_a_profile_that_cannot_produce_a_valid_invoice_holds_its_customer_only(billing_stack):
    """A buyer's profile stored by an older version with another commune's SIRET: the run
    answers 422 naming what to fix, issues nothing for that buyer and the others' invoices;
    the run's page and the buyer's dashboard warn; once the profile is fixed, the next run
    issues it."""
    stack = billing_stack
    api = f"{stack.url}/api/v1"
    period = this_period()
    lender = stack.as_role("finance", SAINT_CHAMOND)
    buyer = stack.login(f"finance.{ROCHE}@mutualis-demo.fr")
    declared = buyer.get(f"{api}/billing/profile").json()
    with stack.database("billing").begin() as conn:  # what an older version let through
        conn.execute(
            update(BillingProfileRow)
            .where(BillingProfileRow.commune == ROCHE)
            .values(siret=domain.siret_for("214202186"))  # Saint-Étienne's
        )
    approve_timesheet(stack, SAINT_CHAMOND, ROCHE, "1", 40000)
    approve_timesheet(stack, SAINT_CHAMOND, FIRMINY, "0.5", 40000)

    def charged():
        answer = lender.get(
            f"{api}/charges", params={"status": "uninvoiced", "direction": "issued"}
        )
        items = answer.json()["items"]
        return items if len(items) == 2 else None

    wait_until(charged, timeout=10)
    # on the finance page first: the run's page says what waits and why, in French
    pages = stack.web_session(f"finance.{SAINT_CHAMOND}@mutualis-demo.fr")
    form = pages.get(f"{stack.url}/finances", timeout=10).text
    token = form_token(form)
    shown = pages.post(
        f"{stack.url}/finances/facturation",
        data={"csrf": token, "periode": period},
        timeout=30,
    )
    assert shown.status_code == 422
    assert "Profil de facturation de Roche-la-Molière : le SIRET n&#39;est pas celui" in shown.text
    assert "1 facture émise" in shown.text  # Firminy's
    refused = lender.post(f"{api}/billing/runs", json={"period": period})
    assert_problem(refused, 422)
    problem = refused.json()
    assert [(e["field"], e["type"]) for e in problem["errors"]] == [
        (f"profiles.{ROCHE}.siret", "billing_profile_incomplete")
    ]
    issued = problem["issued"]
    assert issued["invoices"] == []  # Firminy's was issued by the page's run
    assert [s["customer_commune"] for s in issued["skipped"]] == [ROCHE]
    assert buyer.get(f"{api}/billing/profile").json()["problems"] != []
    buyers_pages = stack.web_session(f"finance.{ROCHE}@mutualis-demo.fr")
    dashboard = buyers_pages.get(f"{stack.url}/tableau-de-bord", timeout=10).text
    assert "Votre profil de facturation ne permet pas de produire une facture valide" in dashboard
    assert "le SIRET n&#39;est pas celui de la commune" in dashboard

    fixed = {k: declared[k] for k in ("siret", "iban", "bic", "address", "legal_name")}
    assert buyer.put(f"{api}/billing/profile", json=fixed).status_code == 200
    again = lender.post(f"{api}/billing/runs", json={"period": period})
    assert again.status_code == 200, again.text
    assert [i["customer_commune"] for i in again.json()["invoices"]] == [ROCHE]


def form_token(html: str) -> str:
    return html.split('name="csrf" value="')[1].split('"')[0]


def test_payments_are_checked_reversed_and_ordered_through_the_gateway(billing_stack):
    """Firminy invoices Saint-Chamond 395.00 €: the API and the pages refuse too much, a
    date in the future and a double entry (problem+json, nothing recorded); a payment is
    reversed, and Saint-Chamond's payment order shows on Firminy's invoice."""
    stack = billing_stack
    api = f"{stack.url}/api/v1"
    supplier = stack.as_role("finance", FIRMINY)
    customer = stack.as_role("finance", SAINT_CHAMOND)
    approve_timesheet(stack, FIRMINY, SAINT_CHAMOND, "1", 39500, mission="Conseil voirie")

    def issued():
        run = supplier.post(f"{api}/billing/runs", json={"period": this_period()}).json()
        return run["invoices"] or None

    (invoice,) = wait_until(issued, timeout=10)
    assert invoice["customer_commune"] == SAINT_CHAMOND
    pay = {"invoice_id": invoice["id"], "date": paris_today().isoformat(), "reference": "V1"}

    too_much = supplier.post(f"{api}/payments", json=pay | {"amount_cents": 500000})
    assert too_much.status_code == 422
    assert too_much.headers["Content-Type"].startswith("application/problem+json")
    (error,) = too_much.json()["errors"]
    # nameko carries an error's details as text: the balance is said, in cents, both ways
    assert (error["type"], int(error["balance_cents"])) == ("over_balance", 39500)
    assert "Only 39500 cents are open" in too_much.json()["detail"]
    tomorrow = (paris_today() + timedelta(days=1)).isoformat()
    future = supplier.post(f"{api}/payments", json=pay | {"amount_cents": 100, "date": tomorrow})
    assert future.status_code == 422 and future.json()["errors"][0]["type"] == "future_date"
    old = supplier.post(f"{api}/payments", json=pay | {"amount_cents": 100, "date": "1990-01-01"})
    assert old.status_code == 422 and old.json()["errors"][0]["type"] == "before_issue_date"

    first = supplier.post(f"{api}/payments", json=pay | {"amount_cents": 10000})
    assert first.status_code == 201, first.text
    twice = supplier.post(f"{api}/payments", json=pay | {"amount_cents": 10000})
    assert twice.status_code == 409 and twice.json()["duplicate_of"]
    confirmed = supplier.post(
        f"{api}/payments", json=pay | {"amount_cents": 10000, "confirm_duplicate": True}
    )
    assert confirmed.status_code == 201 and confirmed.json()["balance_cents"] == 19500
    second = confirmed.json()["payments"][-1]["id"]

    reason = {"reason": "Saisi deux fois"}
    assert (
        stack.as_role("finance", CHAMBON)
        .post(f"{api}/payments/{second}/reverse", json=reason)
        .status_code
        == 404
    )
    assert customer.post(f"{api}/payments/{second}/reverse", json=reason).status_code == 403
    reversed_ = supplier.post(f"{api}/payments/{second}/reverse", json=reason)
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["balance_cents"] == 29500
    again = supplier.post(f"{api}/payments/{second}/reverse", json=reason)
    assert again.status_code == 409

    order = {"number": "M-2026-118", "date": paris_today().isoformat()}
    assert (
        supplier.post(f"{api}/invoices/{invoice['id']}/payment-order", json=order).status_code
        == 403
    )
    ordered = customer.post(f"{api}/invoices/{invoice['id']}/payment-order", json=order)
    assert ordered.status_code == 200, ordered.text
    seen = supplier.get(f"{api}/invoices/{invoice['id']}").json()
    assert seen["payment_order"]["number"] == "M-2026-118"
    assert [(p["amount_cents"], bool(p["reversed_at"])) for p in seen["payments"]] == [
        (10000, False),
        (10000, True),
    ]

    # the pages: the same rules, in French, and the payment order shown to the supplier
    pages = stack.web_session(f"finance.{FIRMINY}@mutualis-demo.fr")
    path = f"{stack.url}/finances/factures/{invoice['id']}"
    shown = pages.get(path, timeout=10)
    assert "Mandat de paiement n° <strong>M-2026-118</strong>" in shown.text
    assert "Annuler ce paiement" in shown.text and "Saisi deux fois" in shown.text
    refused = pages.post(
        f"{path}/paiement",
        data={"csrf": form_token(shown.text), "montant": "5000", "date": paris_today()},
        timeout=10,
    )
    assert refused.status_code == 422
    assert "Le montant dépasse le reste dû (295,00" in refused.text
    duplicate = pages.post(
        f"{path}/paiement",
        data={
            "csrf": form_token(shown.text),
            "montant": "100,00",
            "date": paris_today(),
            "reference": "V1",
        },
        timeout=10,
    )
    assert duplicate.status_code == 409 and "Second paiement identique" in duplicate.text
    assert len(supplier.get(f"{api}/invoices/{invoice['id']}").json()["payments"]) == 2


def test_the_story_of_a_month_between_three_communes(billing_stack):
    """Le Chambon-Feugerolles, Saint-Étienne and Firminy owe each other for a month.
    Saint-Étienne contests a damage; Le Chambon proposes a netting; Firminy declines and
    nothing changes; Le Chambon re-proposes without Firminy's invoices; both accept; one
    transfer remains, which Saint-Étienne's next bank statement import matches; the damage
    is credited; an overpayment becomes a credit used on the next invoice."""
    stack = billing_stack
    api = f"{stack.url}/api/v1"
    period = this_period()
    finance = {c: stack.as_role("finance", c) for c in (CHAMBON, FIRMINY, SAINT_ETIENNE)}
    operator = stack.login("operator@mutualis-demo.fr")

    def account() -> int:
        """What Le Chambon owes Saint-Étienne, as Saint-Étienne's statement says it."""
        answer = finance[SAINT_ETIENNE].get(f"{api}/statements", params={"counterparty": CHAMBON})
        return answer.json()["closing_balance_cents"]

    before = account()  # what earlier tests left between them
    return_snowplough(stack)  # Le Chambon lends Saint-Étienne: 840.00 + a 150.00 damage
    approve_timesheet(stack, SAINT_ETIENNE, CHAMBON, "1", 30000, name="Marc Roux, juriste")
    approve_timesheet(stack, FIRMINY, CHAMBON, "1", 20000)
    approve_timesheet(stack, SAINT_ETIENNE, FIRMINY, "1", 10000, name="Marc Roux, juriste")

    def issued():
        run = operator.post(f"{api}/billing/runs", json={"period": period}).json()["invoices"]
        return run or None

    found: dict = {}
    while len(found) < 4:
        for invoice in wait_until(issued, timeout=15):
            found[(invoice["supplier_commune"], invoice["customer_commune"])] = invoice
    snowplough = found[(CHAMBON, SAINT_ETIENNE)]
    assert snowplough["total_cents"] == 99000

    # Saint-Étienne's manager contests the damage: it is kept out of any netting
    lines = finance[SAINT_ETIENNE].get(f"{api}/invoices/{snowplough['id']}").json()["lines"]
    (damage,) = [line["line"] for line in lines if line["kind"] == "damage"]
    contested = stack.as_role("manager", SAINT_ETIENNE).post(
        f"{api}/invoices/{snowplough['id']}/disputes",
        json={"line": damage, "reason": "Rétroviseur déjà fêlé au départ"},
    )
    assert contested.status_code == 201, contested.text
    (dispute,) = contested.json()["disputes"]

    # Le Chambon proposes: its counterparties are asked; Saint-Chamond sees nothing
    first = finance[CHAMBON].post(f"{api}/settlements", json={"period": period}).json()
    assert {p["commune"] for p in first["parties"]} == {CHAMBON, SAINT_ETIENNE, FIRMINY}
    assert snowplough["number"] not in {i["number"] for i in first["invoices"]}
    stranger = stack.as_role("finance", SAINT_CHAMOND)
    assert stranger.get(f"{api}/settlements/{first['id']}").status_code == 404
    declined = finance[FIRMINY].post(
        f"{api}/settlements/{first['id']}/decline", json={"reason": "Facture à vérifier"}
    )
    assert declined.json()["status"] == "declined"
    still = finance[CHAMBON].get(f"{api}/invoices/{found[(FIRMINY, CHAMBON)]['id']}").json()
    assert (still["status"], still["balance_cents"]) == ("issued", 20000)

    # re-proposed without Firminy: both accept, one transfer remains
    second = (
        finance[CHAMBON]
        .post(f"{api}/settlements", json={"period": period, "communes": [CHAMBON, SAINT_ETIENNE]})
        .json()
    )
    assert [i["number"] for i in second["invoices"]] == [found[(SAINT_ETIENNE, CHAMBON)]["number"]]
    assert finance[CHAMBON].post(f"{api}/settlements/{second['id']}/accept").status_code == 200
    done = finance[SAINT_ETIENNE].post(f"{api}/settlements/{second['id']}/accept").json()
    assert done["status"] == "effective"
    (transfer,) = done["transfers"]
    assert (transfer["payer"], transfer["payee"], transfer["amount_cents"]) == (
        CHAMBON,
        SAINT_ETIENNE,
        30000,
    )

    # Saint-Étienne's next bank statement shows Le Chambon's transfer: matched
    chambon_iban = finance[CHAMBON].get(f"{api}/billing/profile").json()["iban"]
    own_iban = finance[SAINT_ETIENNE].get(f"{api}/billing/profile").json()["iban"]
    from_chambon = CAMT.replace("FR283000100794C422180000093", chambon_iban).replace(
        "COMMUNE DE SAINT-ETIENNE", "COMMUNE DU CHAMBON-FEUGEROLLES"
    )
    statement = from_chambon.format(
        id=f"STMT-{uuid.uuid4().hex[:8]}",
        day=paris_today().isoformat(),
        account=own_iban,
        amount="300.00",
        remittance="VIREMENT DE COMPENSATION",
    ).encode()
    imported = finance[SAINT_ETIENNE].post(
        f"{api}/payments/import", data=statement, headers={"Content-Type": "application/xml"}
    )
    assert imported.status_code == 200, imported.text
    assert len(imported.json()["matched"]) == 1, imported.text
    (paid,) = [
        o
        for o in finance[SAINT_ETIENNE].get(f"{api}/obligations").json()["items"]
        if o["settlement_id"] == done["settlement_id"]
    ]
    assert paid["status"] == "paid"

    # the contested damage is credited; Saint-Étienne pays too much, knowingly
    answered = finance[CHAMBON].post(
        f"{api}/invoices/{snowplough['id']}/disputes/{dispute['id']}/resolve",
        json={"outcome": "credit", "reason": "Constat de départ incomplet"},
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["balance_cents"] == 84000
    over = finance[CHAMBON].post(
        f"{api}/payments",
        json={
            "invoice_id": snowplough["id"],
            "amount_cents": 90000,
            "date": paris_today().isoformat(),
            "reference": "MANDAT 2026-77",
            "overpayment": True,
        },
    )
    assert over.status_code == 201 and over.json()["overpaid_cents"] == 6000

    # the next invoice: the credit pays part of it
    approve_timesheet(stack, CHAMBON, SAINT_ETIENNE, "1", 10000, name="Léa Blanc, paysagiste")

    def next_invoice():
        run = finance[CHAMBON].post(f"{api}/billing/runs", json={"period": period}).json()
        return run["invoices"] or None

    (following,) = wait_until(next_invoice, timeout=15)
    offered = finance[CHAMBON].get(f"{api}/invoices/{following['id']}").json()
    assert offered["payer_credit_cents"] == 6000
    used = finance[CHAMBON].post(f"{api}/invoices/{following['id']}/use-credit")
    assert used.status_code == 200 and used.json()["balance_cents"] == 4000
    # of the whole month, Saint-Étienne owes Le Chambon 40.00 more than before, no more
    assert account() == before - 4000


def test_a_damage_contested_at_the_return_is_disputed_on_its_invoice(billing_stack):
    """Saint-Étienne's manager, there at the return, contests the mirror: the return report
    says so, and the invoice that charges it opens a dispute on its line from its issue."""
    stack = billing_stack
    api = f"{stack.url}/api/v1"
    reserve = "Rétroviseur déjà fêlé au départ, selon notre responsable"
    booking_id = return_snowplough(stack, MIRROR | {"contest": reserve})
    borrower = stack.as_role("manager", SAINT_ETIENNE)
    (damage,) = borrower.get(f"{api}/bookings/{booking_id}").json()["damages"]
    assert damage["contest"] == reserve
    operator = stack.login("operator@mutualis-demo.fr")

    def disputed():
        run = operator.post(f"{api}/billing/runs", json={"period": this_period()}).json()
        return [
            i
            for i in run["invoices"]
            if (i["supplier_commune"], i["customer_commune"]) == (CHAMBON, SAINT_ETIENNE)
        ]

    (invoice,) = wait_until(disputed, timeout=30)
    finance = stack.as_role("finance", SAINT_ETIENNE)
    issued = finance.get(f"{api}/invoices/{invoice['id']}").json()
    (line,) = [x for x in issued["lines"] if x["kind"] == "damage"]
    (dispute,) = issued["disputes"]
    assert (dispute["line"], dispute["amount_cents"], dispute["reason"], dispute["status"]) == (
        line["line"],
        15000,
        reserve,
        "open",
    )
    assert issued["disputed_cents"] == 15000

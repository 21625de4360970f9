"""Billing end to end, through the gateway: Saint-Étienne returns Le Chambon-Feugerolles'
snowplough with a damage and approves Firminy's urbanist's days; a billing run issues the two
invoices, their UBL passes the XSD and EN 16931; CAMT.053 statements pay one fully and one
partly; aging and statements show it; a netting among the three settles in two transfers."""

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
    with Stack(request.param, tmp_path_factory.mktemp(f"billing-{request.param}")) as running:
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


def return_snowplough(stack: Stack) -> str:
    """Through the gateway, as the bookings flow: book, approve, check out, return with a
    150.00 EUR damage."""
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
            "damages": [{"description": "Rétroviseur gauche", "amount_cents": 15000}],
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

    settled = operator.post(f"{api}/settlements", json={"period": period})
    assert settled.status_code == 201, settled.text
    netting = settled.json()
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
    assert replay.status_code == 200 and replay.json()["id"] == netting["id"]
    assert replay.json()["created"] is False

    received = finance[SAINT_ETIENNE].get(f"{api}/invoices", params={"period": period}).json()
    statuses = {i["number"]: (i["status"], i["balance_cents"]) for i in received["items"]}
    assert statuses[issued[CHAMBON]["number"]] == ("paid", 0)
    assert statuses[issued[FIRMINY]["number"]] == ("settled", 0)
    assert {s for n, s in statuses.items() if n.startswith(SAINT_ETIENNE)} == {("settled", 0)}
    aging = finance[SAINT_ETIENNE].get(f"{api}/reports/aging").json()
    assert aging["rows"] == [] and aging["totals"]["total_cents"] == 0

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
    token = form.split('name="csrf" value="')[1].split('"')[0]
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

"""The ledger always adds up: a hypothesis state machine drives random sequences of issue,
pay (overpayment or not), reverse, credit, dispute, resolve, propose, accept and decline
against the real billing service on PostgreSQL, and after every step checks, for every
invoice, total − payments + reversals − credit notes − netting = balance ≥ 0 (or an
overpayment recorded as such), its status following its amounts, and for every pair of
communes, the statement of account = what its invoices and netting transfers still say."""

from __future__ import annotations

from collections import Counter, defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, text

from contracts.clock import paris_today
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from services.billing import domain
from services.billing.models import (
    CreditNoteRow,
    InvoiceRow,
    PaymentRow,
    SettlementAllocationRow,
    SettlementTransferRow,
)
from tests.integration.billing_support import (
    add_charges,
    billing_database,
    billing_service,
    caller,
    declare_profiles,
)

COMMUNES = ["42044", "42218", "42095"]
OPERATOR = caller("42218", "operator")
REFUSED = (Conflict, InvalidInput, Forbidden, NotFound)  # a 4xx: nothing may have changed
finance = {c: caller(c, "finance") for c in COMMUNES}
# everything but the communes' billing profiles, emptied before each example
MONEY_TABLES = (
    "invoice_disputes",
    "netting_invoices",
    "netting_parties",
    "netting_proposals",
    "settlement_allocations",
    "settlement_transfers",
    "settlements",
    "payments",
    "statement_lines",
    "bank_statements",
    "credit_notes",
    "invoice_lines",
    "invoices",
    "charges",
    "number_sequences",
    "outbox",
)
pairs = st.sampled_from([(s, c) for s in COMMUNES for c in COMMUNES if s != c])


class Ledger(RuleBasedStateMachine):
    db = None  # set by the test: one migrated PostgreSQL database for every example
    done: Counter = Counter()  # what the examples did, not only tried

    invoices = Bundle("invoices")
    payments = Bundle("payments")
    disputes = Bundle("disputes")
    proposals = Bundle("proposals")

    def __init__(self):
        super().__init__()
        with self.db.transaction() as tx:  # each example starts from no money at all
            tx.session.execute(text(f"TRUNCATE {', '.join(MONEY_TABLES)} CASCADE"))
        self.service = billing_service(self.db)
        self.today = paris_today()
        self.period = domain.period_of(self.today)

    def _try(self, call, what: str):
        """A refusal is a fine answer; the invariants check it changed nothing."""
        try:
            answer = call()
        except REFUSED:
            Ledger.done[f"{what} refused"] += 1
            return None
        Ledger.done[what] += 1
        return answer

    @rule(target=invoices, pair=pairs, cents=st.integers(1, 200_000))
    def issue(self, pair, cents):
        supplier, customer = pair
        add_charges(self.db, [(supplier, customer, cents)], self.today)
        run = self.service.run_billing(finance[supplier], {"period": self.period})
        return multiple(*[(i["id"], i["supplier_commune"]) for i in run["invoices"]])

    @rule(
        target=payments,
        invoice=invoices,
        cents=st.integers(1, 250_000),
        overpayment=st.booleans(),
        reference=st.sampled_from(["VIR 1", "VIR 2"]),
    )
    def pay(self, invoice, cents, overpayment, reference):
        invoice_id, supplier = invoice
        body = {
            "invoice_id": invoice_id,
            "amount_cents": cents,
            "date": str(self.today),
            "reference": reference,
            "overpayment": overpayment,
        }
        answer = self._try(lambda: self.service.record_payment(finance[supplier], body), "pay")
        if answer is None:
            return multiple()
        return (answer["payments"][-1]["id"], supplier)

    @rule(invoice=invoices)
    def use_credit(self, invoice):
        invoice_id, supplier = invoice
        self._try(lambda: self.service.use_payer_credit(finance[supplier], invoice_id), "use")

    @rule(payment=consumes(payments))
    def reverse(self, payment):
        payment_id, supplier = payment
        self._try(
            lambda: self.service.reverse_payment(
                finance[supplier], payment_id, {"reason": "erreur"}
            ),
            "reverse",
        )

    @rule(invoice=invoices, cents=st.integers(1, 100_000))
    def credit(self, invoice, cents):
        invoice_id, supplier = invoice
        body = {"reason": "correction", "lines": [{"line": 1, "amount_cents": cents}]}
        self._try(
            lambda: self.service.issue_credit_note(finance[supplier], invoice_id, body), "credit"
        )

    @rule(target=disputes, invoice=invoices)
    def dispute(self, invoice):
        invoice_id, supplier = invoice
        customer = self._customer(invoice_id)
        answer = self._try(
            lambda: self.service.open_dispute(
                finance[customer], invoice_id, {"line": 1, "reason": "contesté"}
            ),
            "dispute",
        )
        if answer is None:
            return multiple()
        return (invoice_id, supplier, answer["disputes"][-1]["id"])

    @rule(dispute=consumes(disputes), outcome=st.sampled_from(["credit", "reject"]))
    def resolve(self, dispute, outcome):
        invoice_id, supplier, dispute_id = dispute
        body = {"outcome": outcome, "reason": "réponse"}
        self._try(
            lambda: self.service.resolve_dispute(finance[supplier], invoice_id, dispute_id, body),
            "resolve",
        )

    @rule(target=proposals, communes=st.sets(st.sampled_from(COMMUNES), min_size=2))
    def propose(self, communes):
        body = {"period": self.period, "communes": sorted(communes)}
        answer = self._try(lambda: self.service.settle(OPERATOR, body), "propose")
        return multiple() if answer is None else answer["id"]

    @rule(proposal=proposals, party=st.sampled_from(COMMUNES))
    def accept(self, proposal, party):
        self._try(lambda: self.service.accept_settlement(finance[party], proposal), "accept")

    @rule(proposal=proposals)
    def accept_by_all(self, proposal):
        """Every party accepts in turn: the netting takes effect unless it is void."""
        for party in COMMUNES:
            answer = self._try(
                lambda p=party: self.service.accept_settlement(finance[p], proposal), "accept"
            )
            if answer and answer["status"] == "effective":
                Ledger.done["effective"] += 1

    @rule(proposal=proposals, party=st.sampled_from(COMMUNES))
    def decline(self, proposal, party):
        self._try(lambda: self.service.decline_settlement(finance[party], proposal, {}), "decline")

    def _customer(self, invoice_id: str) -> str:
        with self.db.reading() as session:
            return session.get(InvoiceRow, invoice_id).customer_commune

    # -- what must hold after every step ----------------------------------------------

    @invariant()
    def every_invoice_adds_up(self):
        with self.db.reading() as session:
            paid = dict(
                session.execute(
                    select(PaymentRow.invoice_id, func.sum(PaymentRow.amount_cents))
                    .where(PaymentRow.reversed_at.is_(None))
                    .group_by(PaymentRow.invoice_id)
                ).all()
            )
            overpaid_knowingly = set(
                session.scalars(select(PaymentRow.invoice_id).where(PaymentRow.overpayment))
            )
            credited = dict(
                session.execute(
                    select(CreditNoteRow.invoice_id, func.sum(CreditNoteRow.total_cents)).group_by(
                        CreditNoteRow.invoice_id
                    )
                ).all()
            )
            settled = dict(
                session.execute(
                    select(
                        SettlementAllocationRow.invoice_id,
                        func.sum(SettlementAllocationRow.amount_cents),
                    ).group_by(SettlementAllocationRow.invoice_id)
                ).all()
            )
            for row in session.scalars(select(InvoiceRow)):
                assert row.paid_cents == (paid.get(row.id) or 0), row.number
                assert row.credited_cents == (credited.get(row.id) or 0), row.number
                assert row.settled_cents == (settled.get(row.id) or 0), row.number
                balance = row.total_cents - row.paid_cents - row.credited_cents - row.settled_cents
                assert balance >= 0 or row.id in overpaid_knowingly, row.number
                expected = domain.status_of(
                    row.total_cents, row.credited_cents, row.paid_cents, row.settled_cents
                )
                assert row.status == expected.value, (row.number, row.status, expected)

    @invariant()
    def every_statement_is_what_its_invoices_and_transfers_say(self):
        owed: dict[tuple[str, str], int] = defaultdict(int)  # (creditor, debtor) -> cents
        with self.db.reading() as session:
            for row in session.scalars(select(InvoiceRow)):
                owed[(row.supplier_commune, row.customer_commune)] += domain.balance(row)
            for transfer in session.scalars(
                select(SettlementTransferRow).where(SettlementTransferRow.paid_on.is_(None))
            ):
                owed[(transfer.payee, transfer.payer)] += transfer.amount_cents
        for commune in COMMUNES:
            for other in COMMUNES:
                if other == commune:
                    continue
                statement = self.service.statement(finance[commune], {"counterparty": other})
                expected = owed[(commune, other)] - owed[(other, commune)]
                assert statement["closing_balance_cents"] == expected, (commune, other)

    @invariant()
    def every_effective_netting_conserves_and_needs_at_most_n_minus_1_transfers(self):
        for item in self.service.list_settlements(OPERATOR)["items"]:
            assert sum(p["net_cents"] for p in item["positions"]) == 0
            movers = [p for p in item["positions"] if p["net_cents"]]
            assert len(item["transfers"]) <= max(len(movers) - 1, 0)
            received = sum(t["amount_cents"] for t in item["transfers"])
            assert received == sum(p["net_cents"] for p in movers if p["net_cents"] > 0)


def test_the_ledger_always_adds_up(pg_database):
    db = billing_database(pg_database.url)
    declare_profiles(db, COMMUNES)
    Ledger.db = db
    run_state_machine_as_test(
        Ledger,
        settings=settings(
            max_examples=16,
            stateful_step_count=14,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        ),
    )
    # any broken invariant raised above; and the examples did more than be refused. The
    # steps' order follows the services' answers (ids are random), so which rules are drawn
    # varies from run to run: a reversal, which needs a payment drawn before it, was not
    # drawn once in 12 examples, so it is not required here (the invariants hold after every
    # reversal drawn; tests/integration/test_billing_payments.py reverses deterministically)
    for what in ("pay", "credit", "dispute", "propose", "effective"):
        assert Ledger.done[what] > 0, (what, dict(Ledger.done))

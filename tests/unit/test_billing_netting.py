"""Multilateral netting, property-based: whatever the open invoices among communes, the
transfers conserve every position to the cent, nobody both pays and receives, n communes
with a non-zero position need at most n - 1 transfers, and the audit trail covers every
invoice and every transfer exactly."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.billing import domain

COMMUNES = [f"42{n:03d}" for n in range(12)]

debts_strategy = st.lists(
    st.tuples(
        st.sampled_from(COMMUNES),
        st.sampled_from(COMMUNES),
        st.integers(min_value=1, max_value=10_000_000),
    ).filter(lambda d: d[0] != d[1]),
    max_size=60,
)


def settle(debts):
    positions = domain.net_positions(debts)
    transfers = domain.settling_transfers(positions)
    return positions, transfers


@settings(max_examples=3 * settings.default.max_examples, deadline=None)
@given(debts_strategy)
def test_transfers_conserve_every_position_to_the_cent(debts):
    positions, transfers = settle(debts)
    moved: dict[str, int] = defaultdict(int)
    for payer, payee, cents in transfers:
        assert cents > 0
        moved[payer] -= cents
        moved[payee] += cents
    assert {c: p for c, p in moved.items() if p} == positions
    assert sum(positions.values()) == 0
    owed = sum(cents for _, _, cents in debts)
    assert sum(c for _, _, c in transfers) <= owed  # netting never moves more money


@settings(max_examples=3 * settings.default.max_examples, deadline=None)
@given(debts_strategy)
def test_no_commune_pays_and_receives_in_the_same_settlement(debts):
    _, transfers = settle(debts)
    payers = {payer for payer, _, _ in transfers}
    payees = {payee for _, payee, _ in transfers}
    assert not payers & payees


@settings(max_examples=3 * settings.default.max_examples, deadline=None)
@given(debts_strategy)
def test_n_communes_with_a_position_need_at_most_n_minus_1_transfers(debts):
    positions, transfers = settle(debts)
    assert len(transfers) <= max(len(positions) - 1, 0)


@settings(max_examples=2 * settings.default.max_examples, deadline=None)
@given(debts_strategy)
def test_the_audit_trail_covers_each_invoice_and_each_transfer_exactly(debts):
    open_debts = [
        domain.OpenDebt(f"inv-{n}", creditor, debtor, cents)
        for n, (creditor, debtor, cents) in enumerate(debts)
    ]
    _, transfers = settle(debts)
    keyed = [(f"t-{n}", *t) for n, t in enumerate(transfers)]
    allocations = domain.allocate_settlement(open_debts, keyed)

    per_invoice: dict[str, int] = defaultdict(int)
    per_transfer: dict[str, int] = defaultdict(int)
    for invoice_id, cents, transfer in allocations:
        assert cents > 0
        per_invoice[invoice_id] += cents
        if transfer is not None:
            per_transfer[transfer] += cents
    assert per_invoice == {d.invoice_id: d.open_cents for d in open_debts}
    assert per_transfer == {key: cents for key, _, _, cents in keyed}
    customer_of = {d.invoice_id: d.customer for d in open_debts}
    payer_of = {key: payer for key, payer, _, _ in keyed}
    for invoice_id, _, transfer in allocations:
        if transfer is not None:  # a transfer only carries its payer's own invoices
            assert payer_of[transfer] == customer_of[invoice_id]


@settings(max_examples=2 * settings.default.max_examples, deadline=None)
@given(debts_strategy, st.randoms(use_true_random=False))
def test_a_settlement_trails_what_its_transfers_carry_and_leaves_the_rest_compensated(debts, rng):
    """The settlement allocates only its payers' invoices, oldest first, and trails only
    the invoices a transfer carries: exactly what allocating every invoice would say, the
    other invoices each compensated wholly in one part (what the database writes)."""
    start = date(2026, 11, 1)
    settled = [
        (debtor, start + timedelta(days=rng.randrange(3)), f"F-{n:03d}", f"inv-{n}", creditor, c)
        for n, (creditor, debtor, c) in enumerate(debts)
    ]
    result = domain.settlement_of(settled, "2026-11", 1, None, datetime(2026, 12, 1, tzinfo=UTC))
    every = domain.allocate_settlement(
        [
            domain.OpenDebt(i, supplier, customer, c)
            for customer, _, _, i, supplier, c in sorted(settled)
        ],
        [(t.id, t.payer, t.payee, t.amount_cents) for t in result.transfers],
    )
    carried = {row["invoice_id"] for row in result.trail}
    assert [(r["invoice_id"], r["amount_cents"], r["transfer_id"]) for r in result.trail] == [
        allocation for allocation in every if allocation[0] in carried
    ]
    assert all(r["transfer_id"] for r in result.trail if r["part"] == 1)
    rest = [allocation for allocation in every if allocation[0] not in carried]
    assert all(key is None for _, _, key in rest)
    assert sorted(i for i, _, _ in rest) == sorted(i for *_, i, _, _ in settled if i not in carried)
    assert result.columns["invoices_settled"] == len(settled)


def test_three_communes_with_mutual_debts_settle_in_two_transfers():
    debts = [("42044", "42218", 99000), ("42095", "42218", 112500), ("42218", "42044", 50000)]
    positions, transfers = settle(debts)
    assert positions == {"42044": 49000, "42095": 112500, "42218": -161500}
    assert sorted(transfers) == [("42218", "42044", 49000), ("42218", "42095", 112500)]


def test_a_cycle_nets_to_nothing():
    positions, transfers = settle([("A", "B", 100), ("B", "C", 100), ("C", "A", 100)])
    assert positions == {} and transfers == []


def test_equal_and_opposite_positions_are_paired_first():
    # greedy alone would split A's 60 over C (70) and D, taking 3 transfers
    positions = {"A": -60, "B": -40, "C": 70, "D": 30}
    assert len(domain.settling_transfers(positions)) <= 3
    assert domain.settling_transfers({"A": -30, "B": -70, "C": 70, "D": 30}) == [
        ("B", "C", 70),
        ("A", "D", 30),
    ]


def test_unbalanced_positions_are_refused():
    with pytest.raises(ValueError):
        domain.settling_transfers({"A": -1, "B": 2})

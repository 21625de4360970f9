"""`python -m bench.billing`: a billing run over 100,000 charges among 500 communes (target
< 10 s) and a netting among 1,000 communes with 50,000 open invoices (target < 1 s): its
proposal, then the last party's acceptance, which settles them all (`seconds`).

Each scenario gets a fresh PostgreSQL database, migrated as production is, seeded directly
(not timed), then runs the billing service's own entrypoint on it and times that call.
Writes test-output/bench/billing.json.
"""

from __future__ import annotations

import warnings

# nameko (imported through the service) pulls in eventlet, which warns that it is deprecated;
# the bench never monkey-patches: it times plain blocking calls
warnings.filterwarnings("ignore", message="\nEventlet is deprecated")

import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from decimal import Decimal  # noqa: E402

from sqlalchemy import func, select, update  # noqa: E402

from contracts.clock import paris_today  # noqa: E402
from infra.communes import communes, great_circle_km  # noqa: E402
from infra.heap import freeze_startup_heap  # noqa: E402
from infra.settings import PROJECT_ROOT  # noqa: E402
from services.billing import domain  # noqa: E402
from services.billing.models import (  # noqa: E402
    BillingProfileRow,
    ChargeRow,
    InvoiceLineRow,
    InvoiceRow,
    NettingPartyRow,
    SettlementAllocationRow,
)
from tests.integration.billing_support import (  # noqa: E402
    billing_database,
    billing_service,
    iban_for,
)
from tests.support import PostgresDatabase  # noqa: E402

OUTPUT = PROJECT_ROOT / "test-output" / "bench"
OPERATOR = {"user_id": "bench", "commune": "42218", "roles": ["operator"]}
CHARGES, RUN_COMMUNES, NEIGHBOURS = 100_000, 500, 10
INVOICES, NETTING_COMMUNES = 50_000, 1_000
RUN_TARGET_SECONDS, NETTING_TARGET_SECONDS = 10.0, 1.0


def _communes(count: int) -> list[str]:
    """The `count` most populous communes of the Loire and its neighbours, with a position."""
    departments = {"42", "43", "69", "01", "03", "07", "38", "63", "71", "26", "15"}
    found = [
        c
        for c in communes().search(limit=40_000)
        if c.department_code in departments and c.latitude is not None
    ]
    found.sort(key=lambda c: -c.population)
    return [c.insee_code for c in found[:count]]


def _profiles(session, codes: list[str]) -> None:
    now = datetime.now(UTC)
    session.execute(
        BillingProfileRow.__table__.insert(),
        [
            {
                "commune": code,
                "legal_name": f"Commune {code}",
                "siret": domain.siret_for(communes().get(code).siren),
                "iban": iban_for(code),
                "bic": "BDFEFRPPCCT",
                "street": "Hôtel de ville",
                "additional_street": None,
                "postal_code": (communes().get(code).postal_codes or ("42000",))[0],
                "city": communes().get(code).name,
                "country_code": "FR",
                "email": None,
                "service_code": None,
                "service_code_required": False,
                "vat_regime": "not_subject",
                "updated_at": now,
                "updated_by": None,
            }
            for code in codes
        ],
    )


def _neighbours(codes: list[str], count: int) -> dict[str, list[str]]:
    """Each commune borrows from and lends to its nearest ones, as neighbours do."""
    points = {c: (communes().get(c).latitude, communes().get(c).longitude) for c in codes}
    return {
        code: sorted(
            (other for other in codes if other != code),
            key=lambda other: great_circle_km(*points[code], *points[other]),
        )[:count]
        for code in codes
    }


def bench_billing_run(
    rng: random.Random,
    charges: int = CHARGES,
    run_communes: int = RUN_COMMUNES,
    database_name: str = "mutualis_bench_billing_run",
) -> dict:
    """A billing run over `charges` charges among `run_communes` communes (bench.scale
    varies both)."""
    database = PostgresDatabase(f"{database_name}_{os.getpid()}")
    try:
        db = billing_database(database.url)
        codes = _communes(run_communes)
        near = _neighbours(codes, NEIGHBOURS)
        today = paris_today()
        period = domain.period_of(today)
        now = datetime.now(UTC)
        with db.transaction() as tx:
            _profiles(tx.session, codes)
            rows = []
            for n in range(charges):
                supplier = rng.choice(codes)
                cents = rng.randint(1_000, 200_000)
                rows.append(
                    {
                        "id": str(uuid.uuid4()),
                        "kind": "rental",
                        "supplier_commune": supplier,
                        "customer_commune": rng.choice(near[supplier]),
                        "source_reference": f"bench:{n}",
                        "source_event_id": str(uuid.uuid4()),
                        "description": f"Location n° {n}",
                        "quantity": Decimal(1),
                        "unit": "DAY",
                        "unit_price_cents": cents,
                        "amount_cents": cents,
                        "currency": "EUR",
                        "charge_date": today,
                        "period": period,
                        "order_reference": None,
                        "recorded_at": now,
                    }
                )
            for first in range(0, len(rows), 50_000):  # bounded statements at 1M charges
                tx.session.execute(ChargeRow.__table__.insert(), rows[first : first + 50_000])
        service = billing_service(db)
        started = time.perf_counter()
        result = service.run_billing(OPERATOR, {"period": period})
        elapsed = time.perf_counter() - started
        with db.reading() as session:
            lines = session.scalar(select(func.count()).select_from(InvoiceLineRow))
            invoiced = session.scalar(select(func.sum(InvoiceRow.total_cents)))
        assert lines == charges and invoiced == sum(r["amount_cents"] for r in rows)
        return {
            "charges": charges,
            "communes": run_communes,
            "invoices": len(result["invoices"]),
            "seconds": round(elapsed, 3),
            "charges_per_second": round(charges / elapsed),
            "target_seconds": RUN_TARGET_SECONDS,
            "met": elapsed < RUN_TARGET_SECONDS,
        }
    finally:
        database.drop()


@contextmanager
def _as_a_started_service():
    """The heap as a started service has it (infra.heap): what this process built so far,
    the seed's rows among it, kept out of the garbage collector's way while the service is
    timed; let go after, as bench.scale runs many."""
    freeze_startup_heap()
    try:
        yield
    finally:
        gc.unfreeze()


def bench_netting(
    rng: random.Random,
    netting_communes: int = NETTING_COMMUNES,
    invoices: int = INVOICES,
    database_name: str = "mutualis_bench_netting",
) -> dict:
    """A netting among `netting_communes` communes with `invoices` open invoices (bench.scale
    varies both)."""
    database = PostgresDatabase(f"{database_name}_{os.getpid()}")
    try:
        db = billing_database(database.url)
        codes = [f"{n:05d}" for n in range(10_000, 10_000 + netting_communes)]
        period_start = paris_today().replace(day=1) - timedelta(days=1)
        period = domain.period_of(period_start)
        now = datetime.now(UTC)
        party = {"insee_code": "00000", "name": "", "legal_name": "", "siren": "", "siret": ""}
        rows = []
        for n in range(invoices):
            supplier, customer = rng.sample(codes, 2)
            total = rng.randint(1_000, 500_000)
            paid = rng.choice((0, 0, 0, total // 3))
            rows.append(
                {
                    "id": str(uuid.uuid4()),
                    "number": f"{supplier}-2026-{n:06d}",
                    "supplier_commune": supplier,
                    "customer_commune": customer,
                    "period": period,
                    "issue_date": period_start,
                    "due_date": period_start + timedelta(days=30),
                    "currency": "EUR",
                    "supplier": party,
                    "customer": party,
                    "buyer_reference": None,
                    "order_reference": None,
                    "vat_category": "O",
                    "vat_rate": None,
                    "net_cents": total,
                    "vat_cents": 0,
                    "total_cents": total,
                    "vat_breakdown": [],
                    "credited_cents": 0,
                    "paid_cents": paid,
                    "settled_cents": 0,
                    "status": "partially_paid" if paid else "issued",
                    "issued_at": now,
                    "paid_at": None,
                }
            )
        with db.transaction() as tx:
            for first in range(0, len(rows), 50_000):
                tx.session.execute(InvoiceRow.__table__.insert(), rows[first : first + 50_000])
        debts = [
            (r["supplier_commune"], r["customer_commune"], r["total_cents"] - r["paid_cents"])
            for r in rows
        ]
        started = time.perf_counter()
        transfers = domain.settling_transfers(domain.net_positions(debts))
        computing = time.perf_counter() - started

        service = billing_service(db)
        with _as_a_started_service():
            started = time.perf_counter()
            proposal = service.settle(OPERATOR, {"period": period})
            proposing = time.perf_counter() - started
            # every party but one accepted already (not timed): the last acceptance is the one
            # that locks and checks the 50,000 invoices and settles them
            last = proposal["parties"][-1]["commune"]
            with db.transaction() as tx:
                tx.session.execute(
                    update(NettingPartyRow)
                    .where(
                        NettingPartyRow.proposal_id == proposal["id"],
                        NettingPartyRow.commune != last,
                    )
                    .values(decision="accepted")
                )
            started = time.perf_counter()
            result = service.accept_settlement(
                {"user_id": "bench", "commune": last, "roles": ["finance"]}, proposal["id"]
            )
            elapsed = time.perf_counter() - started
        with db.reading() as session:
            trail = session.scalar(select(func.count()).select_from(SettlementAllocationRow))
            settled = session.scalar(
                select(func.count()).select_from(InvoiceRow).where(InvoiceRow.status == "settled")
            )
        assert result["status"] == "effective" and settled == invoices
        assert proposal["invoices_settled"] == invoices
        assert len(proposal["transfers"]) == len(transfers) <= len(proposal["positions"]) - 1
        return {
            "communes": netting_communes,
            "open_invoices": invoices,
            "positions": len(proposal["positions"]),
            "transfers": len(proposal["transfers"]),
            "audit_rows": trail,
            "computing_seconds": round(computing, 3),
            "proposing_seconds": round(proposing, 3),
            "seconds": round(elapsed, 3),
            "target_seconds": NETTING_TARGET_SECONDS,
            "met": elapsed < NETTING_TARGET_SECONDS,
        }
    finally:
        database.drop()


def run() -> dict:
    """Both scenarios; `seconds` is the service call as the gateway would make it."""
    rng = random.Random(2026)
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "billing_run": bench_billing_run(rng),
        "netting": bench_netting(rng),
    }
    OUTPUT.mkdir(parents=True, exist_ok=True)
    (OUTPUT / "billing.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))

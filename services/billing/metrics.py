"""Business metrics of billing: amounts invoiced and paid (counters) and what is outstanding
(read from the database at scrape time)."""

from __future__ import annotations

from typing import Any

from nameko.extensions import DependencyProvider
from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine, func, select

from contracts.billing import OPEN_STATUSES
from infra.database import service_engine
from services.billing.models import InvoiceRow

INVOICED_CENTS = Counter(
    "mutualis_billing_invoiced_cents", "Total of the invoices issued, in euro cents"
)
PAID_CENTS = Counter("mutualis_billing_paid_cents", "Payments recorded, in euro cents")
REVERSED_CENTS = Counter(
    "mutualis_billing_reversed_cents", "Payments reversed (recorded by mistake), in euro cents"
)
INVOICES_ISSUED = Counter("mutualis_billing_invoices_issued", "Invoices issued")


class OutstandingCollector:
    """What is still owed on open invoices, summed by the database when Prometheus asks."""

    def __init__(self) -> None:
        self.engine: Engine | None = None

    def collect(self):
        gauge = GaugeMetricFamily(
            "mutualis_billing_outstanding_cents", "Still owed on open invoices, in euro cents"
        )
        if self.engine is not None:
            try:
                with self.engine.connect() as conn:
                    owed = conn.scalar(
                        select(
                            func.coalesce(
                                func.sum(
                                    InvoiceRow.total_cents
                                    - InvoiceRow.credited_cents
                                    - InvoiceRow.paid_cents
                                    - InvoiceRow.settled_cents
                                ),
                                0,
                            )
                        ).where(InvoiceRow.status.in_([s.value for s in OPEN_STATUSES]))
                    )
                gauge.add_metric([], float(owed))
            except Exception:  # a scrape must not fail because the database is down
                pass
        yield gauge

    def describe(self):
        return []


_outstanding = OutstandingCollector()
REGISTRY.register(_outstanding)


class BillingMetrics(DependencyProvider):
    """Points the outstanding gauge at the service's database."""

    def setup(self) -> None:
        _outstanding.engine = service_engine(self.container.config)

    def get_dependency(self, worker_ctx: Any) -> None:
        return None

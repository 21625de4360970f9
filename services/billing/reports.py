"""Statements of account and aging reports as CSV, for spreadsheets: amounts in euros with
two decimals (a dot), one row per entry."""

from __future__ import annotations

import csv
import io

from contracts.billing import AgingReport, StatementOfAccount
from services.billing.domain import euros


def _csv(header: list[str], rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def statement_csv(statement: StatementOfAccount) -> str:
    rows: list[list[object]] = [
        [
            statement.from_ or "",
            "opening_balance",
            "",
            "Solde d'ouverture",
            "",
            "",
            euros(statement.opening_balance_cents),
        ]
    ]
    rows += [
        [
            e.date,
            e.kind,
            e.reference,
            e.description,
            euros(e.debit_cents),
            euros(e.credit_cents),
            euros(e.balance_cents),
        ]
        for e in statement.entries
    ]
    rows.append(
        [
            statement.to or "",
            "closing_balance",
            "",
            "Solde de clôture",
            "",
            "",
            euros(statement.closing_balance_cents),
        ]
    )
    return _csv(
        ["date", "kind", "reference", "description", "debit_eur", "credit_eur", "balance_eur"],
        rows,
    )


def aging_csv(report: AgingReport) -> str:
    return _csv(
        [
            "counterparty",
            "name",
            "not_due_eur",
            "days_0_30_eur",
            "days_31_60_eur",
            "days_61_90_eur",
            "days_over_90_eur",
            "total_eur",
        ],
        [
            [
                r.counterparty,
                r.counterparty_name,
                euros(r.not_due_cents),
                euros(r.days_0_30_cents),
                euros(r.days_31_60_cents),
                euros(r.days_61_90_cents),
                euros(r.days_over_90_cents),
                euros(r.total_cents),
            ]
            for r in (*report.rows, report.totals)
        ],
    )

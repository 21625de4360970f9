"""The accountant's export, pure: a month's invoices and credit notes of a commune become
titres de recettes and mandats imputed on M57 accounts, written as one reproducible CSV."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from pathlib import Path

from contracts.accounting import (
    CATEGORY_LABELS,
    PERSONNEL,
    PRINCIPAL,
    UNKNOWN,
    Account,
    ExportChange,
    ExportRow,
    ImputationInput,
    Operation,
    Side,
)
from contracts.billing import ChargeKind
from contracts.errors import InvalidInput, field_error

CHART = Path(__file__).parent / "data" / "m57_accounts.csv"
# which class of accounts a side imputes to: receipts on class 7, expenses on class 6
CLASS_OF_SIDE = {Side.TITRE: "7", Side.MANDAT: "6"}


@cache
def chart() -> dict[str, Account]:
    """The M57 accounts an imputation may name (services/billing/data/m57_accounts.csv)."""
    lines = [line for line in CHART.read_text("utf-8").splitlines() if not line.startswith("#")]
    return {
        row["account"]: Account(
            account=row["account"],
            chapter=row["chapter"],
            label=row["label"],
            side=Side.TITRE if row["account"].startswith("7") else Side.MANDAT,
        )
        for row in csv.DictReader(lines)
    }


@dataclass(frozen=True)
class Imputed:
    chapter: str
    account: str
    budget: str = PRINCIPAL


# The defaults, our reading of the M57 nomenclature (docs/billing.md says which and why):
# equipment and vehicles lent are "locations diverses (autres qu'immeubles)" for the lender
# and "locations mobilières" for the borrower; a room or a space is a building's revenue and
# a "location immobilière"; an expert's days are staff made available to another body.
LOAN = {Side.TITRE: Imputed("70", "7083"), Side.MANDAT: Imputed("011", "6135")}
DEFAULTS: dict[str, dict[Side, Imputed]] = dict.fromkeys(CATEGORY_LABELS, LOAN) | {
    "salles": {Side.TITRE: Imputed("75", "752"), Side.MANDAT: Imputed("011", "6132")},
    PERSONNEL: {Side.TITRE: Imputed("70", "70848"), Side.MANDAT: Imputed("012", "6218")},
}


def imputation_errors(items: Sequence[ImputationInput]) -> list[dict]:
    """Why each imputation cannot be stored, as 422 field errors naming the rule: a category
    Mutualis does not know, an account not in the M57 chart shipped, an account under
    another chapter, a receipt on an expense account (or the reverse), twice the same."""
    errors, seen = [], set()
    accounts = chart()
    for n, item in enumerate(items):
        where = f"items.{n}"
        if item.category not in CATEGORY_LABELS:
            errors.append(_error(f"{where}.category", "unknown_category", item.category))
        known = accounts.get(item.account)
        if known is None:
            errors.append(
                _error(
                    f"{where}.account",
                    "not_an_m57_account",
                    f"{item.account} is not an account of the M57 nomenclature configured",
                )
            )
        elif known.chapter != item.chapter:
            errors.append(
                _error(
                    f"{where}.chapter",
                    "account_not_in_chapter",
                    f"account {item.account} is under chapter {known.chapter}, not {item.chapter}",
                )
            )
        elif not item.account.startswith(CLASS_OF_SIDE[item.side]):
            errors.append(
                _error(
                    f"{where}.account",
                    "account_of_the_other_side",
                    f"a {item.side.value} is imputed on a class "
                    f"{CLASS_OF_SIDE[item.side]} account, not {item.account}",
                )
            )
        if (item.category, item.side) in seen:
            errors.append(_error(where, "duplicate_imputation", "given twice"))
        seen.add((item.category, item.side))
    return errors


def _error(field: str, rule: str, message: str) -> dict:
    return field_error(field, message, rule)


def ensure_imputations(items: Sequence[ImputationInput]) -> None:
    errors = imputation_errors(items)
    if errors:
        raise InvalidInput("An imputation is not one the M57 nomenclature allows", errors)


def imputations_of(
    configured: Mapping[tuple[str, Side], Imputed],
) -> dict[tuple[str, Side], Imputed]:
    """Every (category, side) with its imputation: the commune's, else the default."""
    return {
        (category, side): configured.get((category, side), DEFAULTS[category][side])
        for category in CATEGORY_LABELS
        for side in Side
    }


def category_of(kind: str, listing_category: str | None) -> str:
    """An expert's days are staff lent; any other line goes with its listing's category."""
    if kind == ChargeKind.CONSULTING:
        return PERSONNEL
    return listing_category if listing_category in CATEGORY_LABELS else UNKNOWN


# -- documents to rows ------------------------------------------------------------------


@dataclass(frozen=True)
class Counterparty:
    insee: str
    name: str
    siret: str


@dataclass(frozen=True)
class Document:
    """An invoice or a credit note as the export reads it: `lines` are (category, net cents)."""

    credit_note: bool
    issued: bool  # by the exporting commune (its receipt), else received (its expense)
    number: str
    issue_date: date
    invoice_number: str
    whole_invoice: bool  # a credit note of all the invoice: it cancels the titre or mandat
    counterparty: Counterparty
    lines: tuple[tuple[str, int], ...]
    vat_cents: int
    engagement_number: str | None
    agreement_reference: str | None


Sources = Mapping[int, tuple[str, int, str | None]]  # line -> (kind, net cents, category)


def _counterparty(party: Mapping) -> Counterparty:
    return Counterparty(insee=party["insee_code"], name=party["name"], siret=party["siret"])


def invoice_document(invoice, commune: str, sources: Sources) -> Document:
    """An invoice row as the export reads it, from `commune`'s side."""
    issued = invoice.supplier_commune == commune
    return Document(
        credit_note=False,
        issued=issued,
        number=invoice.number,
        issue_date=invoice.issue_date,
        invoice_number=invoice.number,
        whole_invoice=False,
        counterparty=_counterparty(invoice.customer if issued else invoice.supplier),
        lines=tuple(
            (category_of(kind, category), cents)
            for _, (kind, cents, category) in sorted(sources.items())
        ),
        vat_cents=invoice.vat_cents,
        engagement_number=invoice.order_reference,
        agreement_reference=invoice.agreement_reference,
    )


def credit_note_document(note, invoice, commune: str, sources: Sources) -> Document:
    """A credit note row as the export reads it: each line on the category of the invoice
    line it credits; all of the invoice credited cancels it rather than reduces it."""
    issued = note.supplier_commune == commune
    lines = []
    for line in note.lines:
        kind, _, category = sources.get(line["invoice_line"], (line.get("kind", ""), 0, None))
        lines.append((category_of(kind, category), line["amount_cents"]))
    return Document(
        credit_note=True,
        issued=issued,
        number=note.number,
        issue_date=note.issue_date,
        invoice_number=invoice.number,
        whole_invoice=note.total_cents == invoice.total_cents,
        counterparty=_counterparty(invoice.customer if issued else invoice.supplier),
        lines=tuple(lines),
        vat_cents=note.vat_cents,
        engagement_number=invoice.order_reference,
        agreement_reference=invoice.agreement_reference,
    )


def operation_of(document: Document) -> Operation:
    if not document.credit_note:
        return Operation.TITRE if document.issued else Operation.MANDAT
    if document.whole_invoice:
        return Operation.ANNULATION_TITRE if document.issued else Operation.ANNULATION_MANDAT
    return Operation.REDUCTION_TITRE if document.issued else Operation.REDUCTION_MANDAT


def shares(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights`, to the cent, the cents left over going to
    the largest remainders (first in order on a tie): the parts add up to the total."""
    if not weights:
        return []
    whole = sum(weights)
    if whole == 0:
        return [total] + [0] * (len(weights) - 1)
    exact = [total * w for w in weights]
    parts = [e // whole for e in exact]
    left = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] % whole), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def rows_of(
    documents: Iterable[Document], imputations: Mapping[tuple[str, Side], Imputed]
) -> list[ExportRow]:
    """One row per document and imputation (its lines' net added up, its VAT shared in
    proportion), in the order an accountant reads them: titres then mandats, by date and
    number."""
    rows = []
    for document in documents:
        side = Side.TITRE if document.issued else Side.MANDAT
        nets: dict[tuple[Imputed, str], int] = defaultdict(int)
        for category, cents in document.lines:
            nets[(imputations[(category, side)], category)] += cents
        keys = sorted(nets, key=lambda k: (k[0].budget, k[0].chapter, k[0].account, k[1]))
        vats = shares(document.vat_cents, [nets[k] for k in keys])
        for (imputed, category), vat in zip(keys, vats, strict=True):
            rows.append(
                ExportRow(
                    side=side,
                    operation=operation_of(document),
                    budget=imputed.budget,
                    chapter=imputed.chapter,
                    account=imputed.account,
                    document_number=document.number,
                    document_date=document.issue_date,
                    invoice_number=document.invoice_number,
                    counterparty_insee=document.counterparty.insee,
                    counterparty_name=document.counterparty.name,
                    counterparty_siret=document.counterparty.siret,
                    category=category,
                    net_cents=nets[(imputed, category)],
                    vat_cents=vat,
                    total_cents=nets[(imputed, category)] + vat,
                    engagement_number=document.engagement_number,
                    agreement_reference=document.agreement_reference,
                )
            )
    return sorted(rows, key=_row_order)


def _row_order(row: ExportRow) -> tuple:
    return (row.side != Side.TITRE, row.document_date, row.document_number, row.account)


def signed_total(rows: Iterable[ExportRow], side: Side) -> int:
    """What the rows of one side come to: documents less the credit notes reducing them."""
    return sum(
        -r.total_cents
        if r.operation.value.startswith(("reduction", "annulation"))
        else r.total_cents
        for r in rows
        if r.side == side
    )


# -- the file ---------------------------------------------------------------------------

# The columns, named as French finance teams name them; ';' and a decimal comma, as a French
# spreadsheet or accounting package reads a CSV.
COLUMNS = (
    ("sens", "side"),
    ("operation", "operation"),
    ("budget", "budget"),
    ("chapitre", "chapter"),
    ("compte", "account"),
    ("numero_piece", "document_number"),
    ("date_piece", "document_date"),
    ("facture_origine", "invoice_number"),
    ("tiers_insee", "counterparty_insee"),
    ("tiers_nom", "counterparty_name"),
    ("tiers_siret", "counterparty_siret"),
    ("categorie", "category"),
    ("montant_ht", "net_cents"),
    ("montant_tva", "vat_cents"),
    ("montant_ttc", "total_cents"),
    ("numero_engagement", "engagement_number"),
    ("reference_convention", "agreement_reference"),
)


def _cell(value) -> str:
    """A CSV cell: dates DD/MM/YYYY, cents as euros with a decimal comma (a row's amounts
    are never negative: its operation says whether it adds or takes off)."""
    if value is None:
        return ""
    if isinstance(value, date):
        return f"{value:%d/%m/%Y}"
    if isinstance(value, int):
        return f"{value // 100},{value % 100:02d}"
    return str(value)


def csv_of(rows: Sequence[ExportRow]) -> bytes:
    """The CSV file of `rows`: the same rows always give the same bytes (no date of export
    in it), which is what lets a re-export be recognised by its checksum."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(name for name, _ in COLUMNS)
    for row in rows:
        writer.writerow(_cell(getattr(row, field)) for _, field in COLUMNS)
    return out.getvalue().encode("utf-8")


def checksum_of(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def filename_of(commune: str, period: str, checksum: str) -> str:
    return f"mutualis-{commune}-{period}-titres-mandats-{checksum[:12]}.csv"


def changes_since(before: Sequence[ExportRow], now: Sequence[ExportRow]) -> list[ExportChange]:
    """Rows added or removed since an earlier export of the same period (a credit note
    issued since, an imputation changed)."""
    old = {r.model_dump_json(): r for r in before}
    new = {r.model_dump_json(): r for r in now}
    removed = [ExportChange(change="removed", row=old[k]) for k in old if k not in new]
    added = [ExportChange(change="added", row=new[k]) for k in new if k not in old]
    return removed + added

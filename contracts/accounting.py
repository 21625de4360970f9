"""The accountant's export: what billing hands a commune's finance team for its public
accounting (M57), as titres de recettes and mandats, and how each is imputed."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator

from contracts.billing import Period
from contracts.fields import Input
from contracts.listings import CATEGORIES

NOMENCLATURE = "M57"
# an expert's days (staff lent), and a line whose listing billing never heard of
PERSONNEL = "personnel"
UNKNOWN = "autre"
CATEGORY_LABELS: dict[str, str] = CATEGORIES | {
    PERSONNEL: "Mise à disposition de personnel (experts)",
    UNKNOWN: "Autre (catégorie inconnue)",
}
PRINCIPAL = "principal"


class Side(StrEnum):
    """What a document is in the commune's accounts: a receipt it issued (titre de recettes)
    or an expense it pays (mandat)."""

    TITRE = "titre"
    MANDAT = "mandat"


class Operation(StrEnum):
    TITRE = "titre"
    REDUCTION_TITRE = "reduction_titre"  # a partial credit note issued
    ANNULATION_TITRE = "annulation_titre"  # a credit note of the whole invoice
    MANDAT = "mandat"
    REDUCTION_MANDAT = "reduction_mandat"
    ANNULATION_MANDAT = "annulation_mandat"


OPERATION_LABELS = {
    Operation.TITRE: "Titre de recettes",
    Operation.REDUCTION_TITRE: "Réduction de titre",
    Operation.ANNULATION_TITRE: "Annulation de titre",
    Operation.MANDAT: "Mandat",
    Operation.REDUCTION_MANDAT: "Réduction de mandat",
    Operation.ANNULATION_MANDAT: "Annulation de mandat",
}


class ImputationInput(Input):
    category: str = Field(description="a listing category, or 'personnel' for experts' days")
    side: Side
    chapter: str = Field(max_length=3, description="M57 chapter, e.g. 70, 011, 012")
    account: str = Field(max_length=8, description="M57 account of that chapter, e.g. 7083")
    budget: str = Field(
        default=PRINCIPAL,
        min_length=1,
        max_length=60,
        description="'principal', or the name of the annex budget it goes to",
    )


class ImputationsInput(Input):
    items: list[ImputationInput] = Field(min_length=1, max_length=100)


class Imputation(BaseModel):
    category: str
    category_label: str
    side: Side
    chapter: str
    account: str
    account_label: str
    budget: str
    configured: bool = Field(description="false: the documented default (docs/billing.md)")


class Account(BaseModel):
    account: str
    chapter: str
    label: str
    side: Side


class Imputations(BaseModel):
    nomenclature: str = NOMENCLATURE
    items: list[Imputation]
    accounts: list[Account] = Field(description="the accounts an imputation may name")


FIRST_PERIOD = "2000-01"  # no commune kept its accounts in M57, nor used Mutualis, before


class ExportRequest(Input):
    period: Period

    @field_validator("period")
    @classmethod
    def _not_before_mutualis(cls, period: str) -> str:
        if period < FIRST_PERIOD:
            raise ValueError(f"a month from {FIRST_PERIOD}")
        return period


class ExportRow(BaseModel):
    """One line for the accounting software: a document's amounts on one imputation."""

    side: Side
    operation: Operation
    budget: str
    chapter: str
    account: str
    document_number: str
    document_date: date
    invoice_number: str = Field(description="the invoice a credit note reduces; itself else")
    counterparty_insee: str
    counterparty_name: str
    counterparty_siret: str
    category: str
    net_cents: int
    vat_cents: int
    total_cents: int
    engagement_number: str | None = None
    agreement_reference: str | None = None


class ExportChange(BaseModel):
    change: str = Field(description="added or removed since the previous export")
    row: ExportRow


class ExportRecord(BaseModel):
    id: str
    commune: str
    period: str
    checksum: str = Field(description="SHA-256 of the CSV file")
    filename: str
    rows: int
    exported_at: datetime
    exported_by: str | None = None


class AccountingExport(ExportRecord):
    """An export as recorded, with what it contains and how it compares with the ones of the
    same period before it."""

    items: list[ExportRow]
    titres_cents: int = Field(description="titres less their reductions, TTC")
    mandats_cents: int = Field(description="mandats less their reductions, TTC")
    previous: list[ExportRecord] = Field(
        default=[], description="earlier exports of this period, latest first"
    )
    same_as_previous: bool | None = Field(
        default=None, description="none: first export of the period"
    )
    changes: list[ExportChange] = Field(
        default=[], description="rows added or removed since the latest previous export"
    )


class ExportPage(BaseModel):
    items: list[ExportRecord]

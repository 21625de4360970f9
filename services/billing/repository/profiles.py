"""Billing profiles in the billing database: what communes declared to invoice and be paid."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from services.billing.models import BillingProfileRow


def profile_of(session: Session, commune: str) -> BillingProfileRow | None:
    return session.get(BillingProfileRow, commune)


def save_profile(session: Session, commune: str, columns: dict) -> BillingProfileRow:
    """Creates or replaces a commune's profile with `columns`, under a row lock."""
    row = session.get(BillingProfileRow, commune, with_for_update=True)
    if row is None:
        row = BillingProfileRow(commune=commune)
        session.add(row)
    for name, value in columns.items():
        setattr(row, name, value)
    session.flush()
    return row


def profiles_of(session: Session, communes: Iterable[str]) -> dict[str, BillingProfileRow | None]:
    """The profiles of `communes`, None for a commune without one."""
    wanted = list(communes)
    found = session.scalars(select(BillingProfileRow).where(BillingProfileRow.commune.in_(wanted)))
    return dict.fromkeys(wanted) | {row.commune: row for row in found}


def accounts(session: Session) -> list[tuple[str, str]]:
    """(commune, IBAN) of every commune with a billing profile: who may have paid."""
    return [
        (commune, iban)
        for commune, iban in session.execute(
            select(BillingProfileRow.commune, BillingProfileRow.iban)
        )
    ]

"""Numbering sequences: gapless document numbers per supplier, year and series."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from infra.database import insert_new
from services.billing.models import NumberSequence


def locked_sequence(session: Session, supplier: str, year: int, series: str) -> NumberSequence:
    """The numbering sequence of a supplier, year and series, locked until the transaction
    ends (FOR UPDATE; SQLite's BEGIN IMMEDIATE already holds the database): concurrent
    issuers wait for each other, and a rollback gives the numbers back, leaving no gap."""
    insert_new(
        session,
        NumberSequence.__table__,
        [{"supplier_commune": supplier, "year": year, "series": series, "last_number": 0}],
    )
    return session.scalars(
        select(NumberSequence)
        .where(
            NumberSequence.supplier_commune == supplier,
            NumberSequence.year == year,
            NumberSequence.series == series,
        )
        .with_for_update()
    ).one()


def next_number(session: Session, supplier: str, year: int, series: str) -> int:
    """Takes the next number of the sequence, locked until the transaction ends."""
    sequence = locked_sequence(session, supplier, year, series)
    sequence.last_number += 1
    return sequence.last_number

"""Lists served a page at a time, and the rows a commune sees as one party or the other."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, bindparam, or_
from sqlalchemy.orm import Session

from contracts.pagination import decode_cursor, encode_cursor


def paged(stmt: Select) -> Select:
    """`stmt` with its offset and limit as parameters, so that a statement built once (and
    its compiled SQL cached once) serves every page; see `page_at`."""
    return stmt.offset(bindparam("page_offset")).limit(bindparam("page_limit"))


def one_page(
    session: Session, stmt: Select, cursor: str | None, limit: int, *, rows: bool = False
) -> tuple[list, str | None]:
    """The page of the (already ordered) `stmt` at `cursor`, and the next cursor if there is
    more. Entities by default; whole result rows with `rows=True`."""
    return page_at(session, paged(stmt), {}, cursor, limit, rows=rows)


def page_at(
    session: Session, stmt: Select, params: dict, cursor: str | None, limit: int, *, rows: bool
) -> tuple[list, str | None]:
    """`one_page` of a statement made by `paged`, its other values in `params`."""
    offset = decode_cursor(cursor)
    result = session.execute(stmt, params | {"page_offset": offset, "page_limit": limit + 1})
    found = (result if rows else result.scalars()).all()
    more = len(found) > limit
    return list(found[:limit]), encode_cursor(offset + limit) if more else None


def as_party(
    commune: str, side: str | None, borrower: ColumnElement, lender: ColumnElement
) -> ColumnElement:
    """Rows where `commune` is the borrower, the lender, or either (side None)."""
    if side == "borrower":
        return borrower == commune
    if side == "lender":
        return lender == commune
    return or_(borrower == commune, lender == commune)

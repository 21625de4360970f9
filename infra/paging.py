"""Lists served a page at a time, and the rows a commune sees as one party or the other."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, and_, bindparam, or_
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


def after_key(keys: list[tuple[ColumnElement, bool]]) -> ColumnElement:
    """Rows strictly after a keyset position in the order of `keys`, (expression,
    descending) pairs ending with a unique one: the position's values are the parameters
    `after0`, `after1`... (one statement serves every page)."""

    def value(n: int, expression: ColumnElement):
        return bindparam(f"after{n}", type_=expression.type)

    return or_(
        *(
            and_(
                *(earlier == value(m, earlier) for m, (earlier, _) in enumerate(keys[:n])),
                expression < value(n, expression)
                if descending
                else expression > value(n, expression),
            )
            for n, (expression, descending) in enumerate(keys)
        )
    )


def keyset_parameters(values: list | None) -> dict:
    """The parameters of `after_key` for a position (none for the first page)."""
    return {f"after{n}": value for n, value in enumerate(values or [])}


def as_party(
    commune: str, side: str | None, borrower: ColumnElement, lender: ColumnElement
) -> ColumnElement:
    """Rows where `commune` is the borrower, the lender, or either (side None)."""
    if side == "borrower":
        return borrower == commune
    if side == "lender":
        return lender == commune
    return or_(borrower == commune, lender == commune)

"""Many rows in one statement: what a billing run and a netting write."""

from __future__ import annotations

import json

from sqlalchemy import text
from sqlalchemy.orm import Session


def bulk_insert(session: Session, table, rows: list[dict], column_types: dict[str, str]) -> None:
    """Many rows in one statement. PostgreSQL gets them as one JSON document turned back
    into rows on the server: psycopg2 cannot COPY under eventlet, and a many-row VALUES or
    one array per column costs far more to build and adapt. SQLite gets an executemany."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(table.insert(), rows)
        return
    columns = ", ".join(column_types)
    record = ", ".join(f"{name} {kind}" for name, kind in column_types.items())
    session.execute(
        text(
            f"INSERT INTO {table.name} ({columns}) SELECT {columns} "
            f"FROM json_to_recordset(CAST(:rows AS json)) AS r({record})"
        ),
        {"rows": json.dumps(rows, default=str)},
    )

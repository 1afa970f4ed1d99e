"""Dialect-specific statements ingest needs (SQLite and PostgreSQL share the syntax)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def _insert(conn: Connection, table: Table) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    if conn.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ingest supports SQLite and PostgreSQL, not {conn.dialect.name}")


def insert_ignore(conn: Connection, table: Table, keys: list[str]) -> Any:
    """``INSERT ... ON CONFLICT (keys) DO NOTHING``."""
    return _insert(conn, table).on_conflict_do_nothing(index_elements=keys)


def insert_add(conn: Connection, table: Table, keys: list[str], counter: str, latest: str) -> Any:
    """``INSERT ... ON CONFLICT DO UPDATE`` adding to ``counter`` and setting ``latest``."""
    stmt = _insert(conn, table)
    return stmt.on_conflict_do_update(
        index_elements=keys,
        set_={counter: table.c[counter] + stmt.excluded[counter], latest: stmt.excluded[latest]},
    )

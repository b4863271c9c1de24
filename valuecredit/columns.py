"""A table gaining the columns a newer version writes: NULL in the rows it already holds."""

from __future__ import annotations

import duckdb

from valuecredit.sqltext import SQL, q, type_name


def columns_of(con: duckdb.DuckDBPyConnection, relation: SQL) -> list[tuple[str, str]]:
    """(name, SQL type) of each column of `relation`, in order."""
    return [(c, t) for c, t, *_ in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()]


def add_columns(con: duckdb.DuckDBPyConnection, table: SQL, columns: list[tuple[str, str]], have: set[str]) -> list[str]:
    """Add to `table` each (name, SQL type) of `columns` not in `have`, NULL in the rows it holds; the names added."""
    added = [(c, kind) for c, kind in columns if c not in have]
    for column, kind in added:
        con.execute(f"ALTER TABLE {table} ADD COLUMN {q(column)} {type_name(kind)}")
    return [c for c, _ in added]


def add_missing_columns(con: duckdb.DuckDBPyConnection, table: SQL, relation: SQL) -> list[str]:
    """Give `table` the columns of `relation` it lacks: a store written before a
    feature was added gains it, NULL on the dates before (their models did not use it); the names added."""
    have = {c for c, _ in columns_of(con, table)}
    return add_columns(con, table, columns_of(con, relation), have)

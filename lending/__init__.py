"""Loan products, eligibility and matching, publication to the partner banks, deadlines, warnings."""

from __future__ import annotations

from datetime import date

import duckdb

from valuecredit.sqltext import SQL


def replace_date_rows(con: duckdb.DuckDBPyConnection, table: SQL, as_of: date, select: SQL) -> None:
    """Replace the date's rows of `table` (created from the SELECT's columns on first use) in one
    transaction: a rerun is idempotent and a reader never sees half a date."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({select}) WHERE false")
        con.execute(f"DELETE FROM {table} WHERE as_of = ?", [as_of])
        con.execute(f"INSERT INTO {table} BY NAME {select}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise

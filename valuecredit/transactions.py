"""Transactions on the store: all of a block or none of it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """What the block writes commits together, or not at all (rolled back on any error, even an interrupt)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


@contextmanager
def atomically(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """The block in the caller's transaction, or in one of its own when the caller has none."""
    if in_transaction(con):  # the caller's commits or rolls back the whole
        yield
    else:
        with transaction(con):
            yield


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether a transaction is open on `con`: outside one, each statement runs in its own, with an id of its own."""
    txid = "SELECT txid_current()"
    return con.execute(txid).fetchone() == con.execute(txid).fetchone()

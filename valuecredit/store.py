"""The DuckDB store: one file, schemas per layer, created on first connection."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from data_contracts.contracts import CONTRACTS
from valuecredit.identifiers import USCC_SQL_MACROS
from valuecredit.sqltext import q

SCHEMAS = ("raw", "staging", "quarantine", "meta")


class StoreBusy(RuntimeError):
    """Another run holds the writer lock on this DuckDB file."""


def _column_ddl(contract, extra: str = "") -> str:
    cols = ", ".join(f"{q(c.name)} {c.sql_type}" for c in contract.columns)
    return f"({cols}{extra})"


def init_store(con: duckdb.DuckDBPyConnection) -> None:
    for s in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    con.execute(USCC_SQL_MACROS)
    con.execute("""
        CREATE TABLE IF NOT EXISTS meta.ingested_files (
            source VARCHAR, file VARCHAR, sha256 VARCHAR, delivered_on DATE, partition_date DATE,
            status VARCHAR, reason VARCHAR, rows_read BIGINT, rows_loaded BIGINT, rows_quarantined BIGINT)""")
    con.execute("""
        CREATE TABLE IF NOT EXISTS quarantine.rows (
            source VARCHAR, file VARCHAR, "row" BIGINT, rule VARCHAR, detail VARCHAR, record VARCHAR,
            partition_date DATE)""")
    for c in CONTRACTS:
        # raw keeps every valid row ever delivered; a row is superseded when a later delivery of the
        # same key arrives, and staging is the rows not superseded: one row per key, no second copy.
        # [_delivered_on, _valid_to) is when the row was the current version: what was known on a date.
        con.execute(f"CREATE TABLE IF NOT EXISTS raw.{q(c.source)} " + _column_ddl(
            c, ", _file VARCHAR, _row BIGINT, _delivered_on DATE, _partition DATE, _superseded_on DATE, _valid_to DATE"))
        _add_valid_to(con, c)
        cols = ", ".join(q(n) for n in c.column_names)
        con.execute(f"CREATE VIEW IF NOT EXISTS staging.{q(c.source)} AS SELECT {cols}, _file, _delivered_on "
                    f"FROM raw.{q(c.source)} WHERE _superseded_on IS NULL")


# every schema a store holds; DuckDB names the database after the file, so a file named like one
# of them makes `schema.table` ambiguous
ALL_SCHEMAS = (*SCHEMAS, "features", "scores", "ledger")


def _add_valid_to(con: duckdb.DuckDBPyConnection, contract) -> None:
    """A store written before rows carried `_valid_to` gets the column, filled from the versions it
    already holds: each superseded row was valid until the next version of its key was delivered."""
    has = con.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ? "
                      "AND column_name = '_valid_to'", [contract.source]).fetchone()[0]
    if has:
        return
    keys = ", ".join(q(k) for k in contract.key)
    con.execute(f"ALTER TABLE raw.{q(contract.source)} ADD COLUMN _valid_to DATE")
    con.execute(f"""UPDATE raw.{q(contract.source)} AS r SET _valid_to = v._next FROM (
                        SELECT rowid AS _rid, lag(_delivered_on) OVER (PARTITION BY {keys}
                            ORDER BY _delivered_on DESC, _file DESC, _row DESC) AS _next
                        FROM raw.{q(contract.source)}) v
                    WHERE r.rowid = v._rid AND r._superseded_on IS NOT NULL""")


def connect(db_path: str | Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    db_path = Path(db_path)
    if db_path.stem in ALL_SCHEMAS:
        raise ValueError(f"{db_path}: name the DuckDB file something other than {', '.join(ALL_SCHEMAS)} "
                         "(DuckDB would confuse the file with the schema of that name)")
    if not read_only:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    # DuckDB caches up to 80% of RAM by default; a bounded buffer pool spills instead, so the
    # nightly run stays within its memory budget next to other work on the machine.
    config = {"memory_limit": os.environ.get("VALUECREDIT_DUCKDB_MEMORY", "4GB")}
    try:
        con = duckdb.connect(str(db_path), read_only=read_only, config=config)
    except duckdb.IOException as exc:
        if "Could not set lock" not in str(exc):
            raise
        # DuckDB: one writing process, or any number of reading ones; never both
        holder = str(exc).split("Conflicting lock is held in ")[-1].split(". ")[0] if "held in" in str(exc) else "another process"
        raise StoreBusy(f"{db_path} is open in another process ({holder}): "
                        + ("the nightly run is writing it; read it when the run has finished" if read_only else
                           "a reader has it open; the nightly run waits for readers and retries")) from None
    if read_only:
        con.execute(USCC_SQL_MACROS.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO"))
    else:
        init_store(con)
    return con


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
def writer_lock(db_path: str | Path) -> Iterator[None]:
    """One writing run per DuckDB file: a second run for the same store is refused, not queued
    behind a half-finished one (the Dagster run queue serialises scheduled runs the same way)."""
    lock_path = Path(str(db_path) + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode(errors="replace").strip()
            raise StoreBusy(f"{db_path} is being written by another run ({holder or 'unknown process'}); "
                            "wait for it to finish or use another --db") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        yield
    finally:
        os.close(fd)

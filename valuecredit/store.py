"""The DuckDB store: one file, schemas per layer, created on first connection."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb

from data_contracts.contracts import CONTRACTS
from data_contracts.identifiers import USCC_SQL_MACROS
from valuecredit.columns import add_columns, add_missing_columns
from valuecredit.ranges import RANGED, ensure_ranged, relation, write_night
from valuecredit.schema import ensure
from valuecredit.sqltext import SQL, q
from valuecredit.transactions import transaction

SCHEMAS = ("raw", "staging", "quarantine", "meta")


class StoreBusy(RuntimeError):
    """Another process has this DuckDB file open in a way that excludes ours."""


class StoreLayoutError(RuntimeError):
    """The store holds something where its own layout needs another kind of object: named, never
    silently replaced."""


class StoreLocked(StoreBusy):
    """Another writer (a run, a backup, a restore) holds the writer lock on this store."""


def _column_ddl(contract, extra: str = "") -> str:
    cols = ", ".join(f"{q(c.name)} {c.sql_type}" for c in contract.columns)
    return f"({cols}{extra})"


def init_store(con: duckdb.DuckDBPyConnection) -> None:
    """Create what is missing and bring a store made by an earlier version up to its contracts. Every
    step of a night connects, so the common case (nothing to do) costs one catalogue read, not a
    query per source."""
    for s in SCHEMAS:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    con.execute(USCC_SQL_MACROS)
    ensure(con, "meta.ingested_files", "quarantine.rows")
    columns: dict[tuple[str, str], list[str]] = {}
    for schema, table, column in con.execute(
            "SELECT schema_name, table_name, column_name FROM duckdb_columns() WHERE schema_name IN ('raw', 'staging') "
            "AND database_name = current_database() ORDER BY schema_name, table_name, column_index").fetchall():
        columns.setdefault((schema, table), []).append(column)
    staging_tables = {t for (t,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE schema_name = 'staging' "
                                                "AND database_name = current_database()").fetchall()}
    for c in CONTRACTS:
        # raw keeps every valid row ever delivered; a row is superseded when a later delivery of the
        # same key arrives, and staging is the rows not superseded: one row per key, no second copy.
        # [_delivered_on, _valid_to) is when the row was the current version: what was known on a date.
        if c.source in staging_tables:
            raise StoreLayoutError(f"staging.{c.source} is a table: the store keeps a view there (the current rows of "
                                   f"raw.{c.source}); drop that table, or restore a backup")
        raw = columns.get(("raw", c.source))
        view = [*c.column_names, "_file", "_delivered_on"]
        if raw is not None and "_valid_to" in raw and set(c.column_names) <= set(raw) \
                and columns.get(("staging", c.source)) == view:
            continue
        # an upgrade is whole or not at all: a crash between its steps must not leave a column unfilled
        with transaction(con):
            if raw is None:
                con.execute(f"CREATE TABLE raw.{q(c.source)} " + _column_ddl(
                    c, ", _file VARCHAR, _row BIGINT, _delivered_on DATE, _partition DATE, _superseded_on DATE, "
                       "_valid_to DATE"))
            else:
                if "_valid_to" not in raw:
                    _add_valid_to(con, c)
                # a store made before the contract gained a column gets it (NULL in the rows delivered before)
                add_columns(con, f"raw.{q(c.source)}", [(col.name, col.sql_type) for col in c.columns], set(raw))
            # missing, or made before the contract gained a column: made again from the contract
            con.execute(f"CREATE OR REPLACE VIEW staging.{q(c.source)} AS SELECT {', '.join(q(n) for n in view)} "
                        f"FROM raw.{q(c.source)} WHERE _superseded_on IS NULL")


# every schema a store holds; DuckDB names the database after the file, so a file named like one
# of them makes `schema.table` ambiguous
ALL_SCHEMAS = (*SCHEMAS, "features", "scores", "ledger")


def _add_valid_to(con: duckdb.DuckDBPyConnection, contract) -> None:
    """A store written before rows carried `_valid_to` gets the column, filled from the versions it
    already holds: each superseded row was valid until the next version of its key was delivered."""
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
        raise busy(db_path, exc, read_only) from None
    if read_only:
        con.execute(USCC_SQL_MACROS.replace("CREATE OR REPLACE MACRO", "CREATE OR REPLACE TEMP MACRO"))
    else:
        init_store(con)
    return con


def is_busy(exc: BaseException) -> bool:
    """DuckDB refusing a file another process has open: one writing process, or any number of
    reading ones; never both."""
    return isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)


def busy(db_path: str | Path, exc: duckdb.IOException, read_only: bool) -> Exception:
    """DuckDB's lock conflict as StoreBusy naming the file and the other process; any other I/O
    error as it was."""
    if not is_busy(exc):
        return exc
    holder = str(exc).split("Conflicting lock is held in ")[-1].split(". ")[0] if "held in" in str(exc) else "another process"
    return StoreBusy(f"{db_path} is open in another process ({holder}): "
                     + ("the nightly run is writing it; read it when the run has finished" if read_only else
                        "a reader has it open; try again when it has closed it"))


def replace_date(con: duckdb.DuckDBPyConnection, table: SQL, as_of: date, select: SQL, create: bool = False) -> None:
    """Replace the date's rows of `table` with the rows of `select` (inside the caller's transaction,
    so that a rerun is idempotent and a reader never sees half a date). `create`: make the table from
    the select's columns on first use, and give a table made by an earlier version the columns added since.
    A table kept by validity range (`valuecredit.ranges`) is written as the night's change."""
    if table in RANGED:
        if create:
            ensure_ranged(con, table, f"({select})")
        write_night(con, table, as_of, select)
        return
    if create:
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} AS SELECT * FROM ({select}) WHERE false")
        add_missing_columns(con, table, f"({select})")
    con.execute(f"DELETE FROM {table} WHERE as_of = ?", [as_of])
    con.execute(f"INSERT INTO {table} BY NAME {select}")


def replace_date_with_frame(con: duckdb.DuckDBPyConnection, table: SQL, as_of: date, frame, create: bool = False) -> None:
    """`replace_date` with the rows of a DataFrame or an Arrow table."""
    con.register("_frame", frame)
    try:
        replace_date(con, table, as_of, "SELECT * FROM _frame", create)
    finally:
        con.unregister("_frame")


# locks this process holds: real path of the store -> [lock file fd, depth, store file fd or None]
_held: dict[str, list[int]] = {}
_held_guard = threading.Lock()


def lock_path(db_path: str | Path) -> Path:
    """The lock file of a store, keyed by its real path: a symlink or a relative path to the same
    file finds the same lock."""
    return Path(os.path.realpath(db_path) + ".lock")


def _lock_the_file_itself(db_path: str | Path, lock_fd: int) -> int | None:
    """The store's own file is locked too (flock, which DuckDB's fcntl locks do not see): a hard link
    or a bind mount reaches the same file by another path, and a deleted lock file would let a second
    writer in. None before the store exists (the path's lock alone guards its creation)."""
    try:
        db_fd = os.open(os.path.realpath(db_path), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(db_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(db_fd)
        os.close(lock_fd)
        raise StoreLocked(f"{db_path}: refused, another run holds the store's file itself (reached by another path, "
                          "such as a hard link, or after its lock file was deleted): wait for it to finish") from None
    return db_fd


@contextmanager
def writer_lock(db_path: str | Path, join: bool = False, run_id: str | None = None) -> Iterator[None]:
    """One writer per DuckDB file, whoever launches it (the CLI, a Dagster schedule, the UI, a
    backup): a second writer is refused, not queued behind a half-finished one.

    `join`: a Dagster run's store resource goes in under the lock its own process already holds
    (`valuecredit run` holds it and materialises several times), or, with `run_id`, under the lock
    its own run holds in another process (the scale-out job's orchestrating process holds it while
    its steps run in processes of their own). Two commands are never joined: a backup inside a
    process that is running a night is refused like any other."""
    path = lock_path(db_path)
    key, fd = str(path), None
    with _held_guard:
        if join and key in _held:
            _held[key][1] += 1
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                os.close(fd)
                if not (join and run_id and holder.endswith(f" run {run_id}")):
                    raise StoreLocked(f"{db_path}: refused, the store is being written by another run "
                                      f"({holder or 'unknown process'}; lock {path}): wait for it to finish "
                                      "or use another --db") from None
                fd = -1  # this run's orchestrating process holds the lock for it
            else:
                db_fd = _lock_the_file_itself(db_path, fd)
                os.ftruncate(fd, 0)
                os.write(fd, (f"pid {os.getpid()}" + (f" run {run_id}" if run_id else "")).encode())
                _held.setdefault(key, [fd, 0, db_fd])[1] += 1
    try:
        yield
    finally:
        if fd != -1:
            with _held_guard:
                entry = _held[key]
                entry[1] -= 1
                if entry[1] == 0:
                    del _held[key]
                    if entry[2] is not None:
                        os.close(entry[2])
                    os.close(entry[0])


def table_rows(con: duckdb.DuckDBPyConnection, schemas: tuple[str, ...], as_of: date | None = None) -> dict[str, int]:
    """Rows of every table of `schemas`, and of the staging views; not of the other views, which are
    joins (counting the eligibility view at provincial scale takes half a minute; its pairs table has
    the same rows). A table kept by validity range is named as it is read, and counted for the
    night `as_of` (its ranges, one row for many nights, mean nothing to a reader); with no date, its
    ranges are counted under their own name."""
    tables = con.execute("""SELECT table_schema, table_name FROM information_schema.tables
                            WHERE list_contains(?, table_schema) AND (table_type = 'BASE TABLE' OR table_schema = 'staging')
                            ORDER BY 1, 2""", [list(schemas)]).fetchall()
    read_as = {f"{t}_ranges": t for t in RANGED}  # the ranges' unquoted name -> the view
    rows = {}
    for s, n in tables:
        if as_of is not None and (table := read_as.get(f"{s}.{n}")) is not None:
            rows[table] = con.execute(f"SELECT count(*) FROM {relation(table)} WHERE as_of = ?", [as_of]).fetchone()[0]
        else:
            rows[f"{s}.{n}"] = con.execute(f"SELECT count(*) FROM {q(s)}.{q(n)}").fetchone()[0]
    return dict(sorted(rows.items()))

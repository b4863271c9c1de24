"""A bank's own DuckDB connection: its publication and nothing else.

The store holds every bank's schema, and DuckDB cannot hide one schema of a file from a connection
to it, so a bank never connects to the store. It gets an in-memory database loaded from its own
published folder (`publish/<bank>/<date>/`, LATEST unless a date is given; on a night without the
full table, the last full table with the change files since applied, as the bank's own loader does). A past date's folder is
cut to the firms of the bank's LATEST publication (which holds every firm authorised today, for every
one of the bank's products): a firm that has since withdrawn its consent is in no view of the past.
The bank id is looked up
in the product catalogue before it goes into any path. The connection has no temporary directory
(DuckDB's default, `./.tmp`, stays readable and writable when file access is off), a memory limit,
then file access switched off and the configuration locked: it can neither read another bank's folder,
the store or a temporary file, nor attach, copy out or write a file, nor lift a limit. A query is
stopped after a time limit (DuckDB has no statement timeout: a timer interrupts the connection)."""

import os
import re
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd

from lending.delta import RebuildError, chain_to, load_table
from lending.products import ProductCatalogue, load_products
from valuecredit.sqltext import q

TABLES = {"eligibility": "eligibility.parquet", "early_warnings": "early_warnings.csv"}  # the eligibility table may be
# rebuilt from the last full one and the change files since (`lending.delta.load_table`)
# the limits of a bank's query, unless the command line or these variables say otherwise
TIMEOUT_ENV, MEMORY_ENV = "VALUECREDIT_BANK_QUERY_TIMEOUT", "VALUECREDIT_BANK_QUERY_MEMORY"
DEFAULT_TIMEOUT_S, DEFAULT_MEMORY = 30.0, "1GB"
MAX_TIMEOUT_S, MAX_MEMORY = 600.0, "8GB"  # at most, whatever the flags say


class AccessError(RuntimeError):
    """The bank has no publication to open (no such date), or its query was refused or stopped."""


@dataclass(frozen=True)
class BankView:
    bank_id: str
    business_date: date
    folder: Path
    con: duckdb.DuckDBPyConnection

    def query(self, sql: str, timeout_s: float | None = None) -> pd.DataFrame:
        """The result of the bank's SQL, stopped after `timeout_s` seconds (default: the environment's, or 30)."""
        limit = checked_seconds(timeout_s, "timeout_s") if timeout_s is not None else default_timeout()
        timer = threading.Timer(limit, self.con.interrupt)
        timer.start()
        try:
            return self.con.execute(sql).df()
        except duckdb.InterruptException:
            raise AccessError(f"bank {self.bank_id}: the query ran longer than {limit:g} s and was stopped") from None
        finally:
            timer.cancel()


def default_timeout() -> float:
    text = os.environ.get(TIMEOUT_ENV, "")
    return checked_seconds(text, TIMEOUT_ENV) if text else DEFAULT_TIMEOUT_S


def checked_seconds(value: str | float, source: str) -> float:
    """A time limit from `source` (a flag, a variable, a caller) as seconds within (0, MAX_TIMEOUT_S]."""
    try:
        seconds = float(value)
    except ValueError:
        raise AccessError(f"{source}={value!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_TIMEOUT_S:  # inf, nan and 1e300 included
        raise AccessError(f"{source}={value!r} must be more than 0 and at most {MAX_TIMEOUT_S:g} seconds")
    return seconds


def default_memory() -> str:
    return os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def memory_bytes_of(text: str) -> int | None:
    """A size as DuckDB spells it, in bytes (None when it is not one)."""
    m = _SIZE.fullmatch(text or "")
    return int(float(m[1]) * _UNITS[(m[2] or "B").lower()]) if m else None


def memory_bytes(text: str) -> int:
    """A memory limit as DuckDB spells it (`512MB`, `1GiB`) in bytes; refused above MAX_MEMORY."""
    value = memory_bytes_of(text)
    if value is None:
        raise AccessError(f"memory limit {text!r}: expected a size such as 512MB or 1GB")
    if not 0 < value <= memory_bytes_of(MAX_MEMORY):
        raise AccessError(f"memory limit {text!r}: must be more than 0 and at most {MAX_MEMORY}")
    return value


def published_folder(publish_root: Path, bank_id: str, business_date: date | None = None,
                     products: ProductCatalogue | None = None) -> tuple[date, Path]:
    bank = Path(publish_root) / (products or load_products()).bank(bank_id)  # a known id, never a path
    if not (bank / "LATEST").exists():
        raise AccessError(f"no publication for bank {bank_id!r} in {publish_root}")
    day = business_date or date.fromisoformat((bank / "LATEST").read_text(encoding="utf-8").strip())
    folder = bank / day.isoformat()
    if not folder.is_dir():
        raise AccessError(f"bank {bank_id}: nothing published for {day} in {bank}")
    return day, folder


def bank_connection(publish_root: Path, bank_id: str, business_date: date | None = None,
                    products: ProductCatalogue | None = None, memory_limit: str | None = None) -> BankView:
    """Open `bank_id`'s publication as tables `eligibility` and `early_warnings` in a sandbox."""
    products = products or load_products()
    day, folder = published_folder(publish_root, bank_id, business_date, products)
    memory = memory_limit or default_memory()
    memory_bytes(memory)  # a size within the cap, before DuckDB reads it
    try:  # no temporary directory: nothing spills to disk, and no folder is left open to the bank's SQL
        con = duckdb.connect(":memory:", config={"temp_directory": "", "memory_limit": memory,
                                                 "max_temp_directory_size": "0B"})
    except duckdb.Error as exc:
        raise AccessError(f"bank {bank_id}: memory limit {memory!r} refused by DuckDB ({exc})") from None
    try:
        # the folder's full table, or the last one with the change files since (between full-table days),
        # checked against the manifests; one copy in memory
        load_table(con, "eligibility", folder.parent, day, temporary=False)
        con.execute("CREATE TABLE early_warnings AS SELECT * FROM read_csv(?, all_varchar = true, header = true)",
                    [str(folder / TABLES["early_warnings"])])
        latest_day, latest = published_folder(publish_root, bank_id, None, products)
        if latest != folder:  # a past date: only the firms still authorised today
            if (latest / TABLES["eligibility"]).is_file():
                chain_to(folder.parent, latest_day)  # the full table checked against its manifest
                con.execute("CREATE TEMP TABLE _current AS SELECT DISTINCT uscc FROM read_parquet(?)",
                            [str(latest / TABLES["eligibility"])])
            else:
                load_table(con, "_latest", folder.parent, latest_day)
                con.execute("CREATE TEMP TABLE _current AS SELECT DISTINCT uscc FROM _latest")
                con.execute("DROP TABLE _latest")
            for table in TABLES:
                con.execute(f"DELETE FROM {q(table)} WHERE NOT coalesce(uscc IN (SELECT uscc FROM _current), false)")
            con.execute("DROP TABLE _current")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except RebuildError as exc:
        con.close()
        raise AccessError(f"bank {bank_id}: the table of {day} cannot be read ({exc})") from None
    except BaseException:
        con.close()
        raise
    return BankView(bank_id, day, folder, con)

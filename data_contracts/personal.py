"""Personal data of natural persons: the columns the data contracts mark `personal` (the legal
representative's name and ID number, the ID of a person on the dishonest-debtor list).

The pipeline reads them in three places only: ingestion (loading the department's delivery),
publication and the firm report (the legal representative's name, masked 张*明). Each of those
logs the read with its purpose, through `log_read`, in a JSON-lines file beside the store
(`<store>.personal_data_reads.jsonl`). Only this module names the columns: `tests/lending/test_access.py`
fails if any other module does. ID numbers are never read after ingestion."""

import getpass
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from data_contracts.contracts import CONTRACTS
from data_contracts.identifiers import NAME_BLANKS_RE2
from valuecredit.sqltext import SQL, lit

PERSONAL_COLUMNS: dict[str, tuple[str, ...]] = {
    c.source: cols for c in CONTRACTS if (cols := tuple(col.name for col in c.columns if col.personal))}
LEGAL_REP_NAME = "legal_rep_name"
READS_LOG_SUFFIX = ".personal_data_reads.jsonl"

PURPOSES = {
    "ingest": "load the department's delivery into the store, as delivered",
    "contract_check": "validate a sample of the night's delivery against its data contract (Great Expectations)",
    "publication": "legal representative's name, masked, in each bank's tables and files",
    "firm_report": "legal representative's name, masked, on the firm's score report",
}

# 张三明 -> 张*明, 张三 -> 张*, as data_contracts.identifiers.mask_name
_MASK_SQL = ("CASE WHEN {c} IS NULL OR length({c}) = 0 THEN {c} WHEN length({c}) = 1 THEN '*' "
             "WHEN length({c}) = 2 THEN left({c}, 1) || '*' "
             "ELSE left({c}, 1) || repeat('*', length({c}) - 2) || right({c}, 1) END")


def mask_sql(expression: SQL) -> str:
    """SQL masking a name the way `data_contracts.identifiers.mask_name` does: blanks inside the name
    (`张　三`, padded to three characters with an ideographic space) do not count as characters."""
    return _MASK_SQL.format(c=f"regexp_replace({expression}, {lit(NAME_BLANKS_RE2)}, '', 'g')")


def masked_legal_rep_sql(aggregate: SQL = "") -> str:
    """The masked legal representative's name: `mask(legal_rep_name)`, or `mask(any_value(...))`
    with aggregate="any_value". The caller logs the read with `log_read`."""
    column = f"{aggregate}({LEGAL_REP_NAME})" if aggregate else LEGAL_REP_NAME
    return mask_sql(column)


def log_path(con: duckdb.DuckDBPyConnection) -> Path | None:
    """The store's log of personal-data reads, beside its file: appended to by read-only connections
    too (a report or an export reads without writing the store), and never rewritten."""
    path = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()[0]
    return Path(path + READS_LOG_SUFFIX) if path else None


def log_read(con: duckdb.DuckDBPyConnection, purpose: str, source: str, business_date: date, records: int,
             masked: bool, columns: tuple[str, ...] | None = None) -> None:
    """Record that the pipeline read these firms' personal columns of `source`, and why: one JSON
    line, appended (an in-memory store, which has no file, keeps none)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r} for reading personal data; known: {', '.join(PURPOSES)}")
    path = log_path(con)
    if path is None:
        return
    entry = {"read_at": datetime.now(UTC).isoformat(timespec="seconds"), "business_date": business_date.isoformat(),
             "purpose": purpose, "why": PURPOSES[purpose], "source": source,
             "columns": list(columns or PERSONAL_COLUMNS[source]), "records": int(records), "masked": masked,
             "os_user": _os_user(), "pid": os.getpid()}
    with open(path, "a", encoding="utf-8") as log:  # O_APPEND: concurrent writers' lines do not interleave
        log.write(json.dumps(entry, ensure_ascii=False) + "\n")


def reads(db: Path) -> list[dict]:
    """Every logged read of personal data from the store at `db`, oldest first."""
    path = Path(str(db) + READS_LOG_SUFFIX)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container user with no passwd entry and no USER
        return f"uid {os.getuid()}"

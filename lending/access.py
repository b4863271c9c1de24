"""A bank's own DuckDB connection: its publication and nothing else.

The store holds every bank's schema, and DuckDB cannot hide one schema of a file from a connection
to it, so a bank never connects to the store. It gets an in-memory database loaded from its own
published folder (`publish/<bank>/<date>/`, LATEST unless a date is given); file access is then
switched off and the configuration locked, so the connection can neither read another bank's
folder or the store, nor attach, copy out or write a file, nor switch file access back on."""

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

TABLES = {"eligibility": "eligibility.parquet", "early_warnings": "early_warnings.csv"}


class AccessError(RuntimeError):
    """The bank has no publication to open (no such bank, or no such date)."""


@dataclass(frozen=True)
class BankView:
    bank_id: str
    business_date: date
    folder: Path
    con: duckdb.DuckDBPyConnection


def published_folder(publish_root: Path, bank_id: str, business_date: date | None = None) -> tuple[date, Path]:
    bank = Path(publish_root) / bank_id
    if not (bank / "LATEST").exists():
        known = sorted(p.name for p in Path(publish_root).iterdir() if (p / "LATEST").exists()) \
            if Path(publish_root).is_dir() else []
        raise AccessError(f"no publication for bank {bank_id!r} in {publish_root}"
                          + (f" (banks published: {', '.join(known)})" if known else ""))
    day = business_date or date.fromisoformat((bank / "LATEST").read_text(encoding="utf-8").strip())
    folder = bank / day.isoformat()
    if not folder.is_dir():
        raise AccessError(f"bank {bank_id}: nothing published for {day} in {bank}")
    return day, folder


def bank_connection(publish_root: Path, bank_id: str, business_date: date | None = None) -> BankView:
    """Open `bank_id`'s publication as tables `eligibility` and `early_warnings` in a sandbox."""
    day, folder = published_folder(publish_root, bank_id, business_date)
    con = duckdb.connect(":memory:")
    try:
        con.execute("CREATE TABLE eligibility AS SELECT * FROM read_parquet(?)", [str(folder / TABLES["eligibility"])])
        con.execute("CREATE TABLE early_warnings AS SELECT * FROM read_csv(?, all_varchar = true, header = true)",
                    [str(folder / TABLES["early_warnings"])])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return BankView(bank_id, day, folder, con)

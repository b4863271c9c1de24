"""Publication to each partner bank: its own products' rows only, authorised firms only, personal data
masked, with the model, catalogue and product-catalogue versions and the data snapshot on every row.

In DuckDB each bank has a schema (`bank_b01`, ...) whose `eligibility` table is replaced inside one
transaction for all banks: a reader sees yesterday's tables or today's, never a mix or a partial
one. On disk each bank has a folder `<out>/<bank_id>/<date>/` with `eligibility.parquet`,
`eligibility.csv` (UTF-8 with BOM, so Excel shows the Chinese text), `eligibility.xlsx` (the
eligible rows and the near misses, for people) and `early_warnings.csv` (the bank's borrowers' open
warnings and those closed that day; also the table `early_warnings`); the folder is written aside and renamed into place,
then `LATEST` is replaced. Files go first, the tables second: a failure anywhere leaves the previous
publication as it was.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import xlsxwriter

from lending.products import ProductCatalogue
from lending.warnings import DDL as WARNINGS_DDL
from valuecredit.scoring.sql import PointInTime, lit

# 张三明 -> 张*明, 张三 -> 张*, as valuecredit.identifiers.mask_name: ID numbers are never published
MASK_SQL = ("CASE WHEN {c} IS NULL OR length({c}) = 0 THEN {c} WHEN length({c}) = 1 THEN '*' "
            "WHEN length({c}) = 2 THEN left({c}, 1) || '*' "
            "ELSE left({c}, 1) || repeat('*', length({c}) - 2) || right({c}, 1) END")


class PublishError(RuntimeError):
    """Publication could not be completed; the previous one stands."""


def bank_schema(bank_id: str) -> str:
    if not bank_id.replace("_", "").isalnum():
        raise PublishError(f"bank id {bank_id!r} cannot name a schema")
    return f"bank_{bank_id.lower()}"


def bank_rows_sql(as_of: date, bank_id: str) -> str:
    """The bank's rows for the date: its products only, authorised firms only, masked."""
    d = f"DATE {lit(as_of.isoformat())}"
    reg = PointInTime("", as_of).rows("registry")
    return f"""
    SELECT e.uscc, r.name AS firm_name, {MASK_SQL.format(c="r.legal_rep_name")} AS legal_rep, r.district_code, r.industry,
           e.product_id, e.product_name, e.eligible, e.limit_fen, e.rate_bp, e.term_months, e.match_degree,
           array_to_string(e.gates, ', ') AS gates,
           array_to_string([s.condition || ': ' || s.value || ' (needs ' || s.required || ')' FOR s IN e.shortfalls], '; ')
               AS shortfalls,
           e.pd, e.grade, e.total AS score, e.as_of, e.model_version, e.catalogue_version, e.products_version,
           e.snapshot_id
    FROM decisions.eligibility e
    LEFT JOIN (SELECT uscc, any_value(name) AS name, any_value(legal_rep_name) AS legal_rep_name,
                      any_value(district_code) AS district_code, any_value(industry) AS industry FROM {reg} GROUP BY uscc) r
        USING (uscc)
    WHERE e.as_of = {d} AND e.bank_id = {lit(bank_id)} AND e.authorised
    ORDER BY e.uscc, e.product_id"""


def bank_warnings_sql(as_of: date, bank_id: str) -> str:
    """The bank's early warnings as they stand on the date: open ones, and those closed that day."""
    d = f"DATE {lit(as_of.isoformat())}"
    return f"""
    SELECT warning_id, uscc, kind, severity, evidence, status, raised_on, updated_on, closed_on
    FROM decisions.early_warnings
    WHERE bank_id = {lit(bank_id)} AND raised_on <= {d} AND (status = 'open' OR closed_on = {d})
    ORDER BY uscc, kind, raised_on"""


@dataclass
class PublishSummary:
    as_of: date
    banks: int
    rows: dict[str, int]
    folder: str


def _write_files(frame: pd.DataFrame, folder: Path, warnings: pd.DataFrame) -> None:
    folder.mkdir(parents=True)
    warnings.to_csv(folder / "early_warnings.csv", index=False, encoding="utf-8-sig")
    frame.to_parquet(folder / "eligibility.parquet", index=False)
    frame.to_csv(folder / "eligibility.csv", index=False, encoding="utf-8-sig")
    # the workbook is for people: the eligible rows, and the firms one condition short of a product
    near = (~frame["eligible"]) & (frame["gates"] == "") & (frame["shortfalls"] != "") & ~frame["shortfalls"].str.contains(";")
    _workbook(folder / "eligibility.xlsx", {"eligible 可贷": frame[frame["eligible"]], "near misses 差一步": frame[near]})


def _workbook(path: Path, sheets: dict[str, pd.DataFrame]) -> None:
    """Rows written straight through xlsxwriter in constant-memory mode (pandas' writer is ~3x slower)."""
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "strings_to_numbers": False})
    try:
        for name, frame in sheets.items():
            sheet = book.add_worksheet(name)
            sheet.write_row(0, 0, list(frame.columns))
            columns = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in frame.columns]
            for i, row in enumerate(zip(*columns), start=1):
                sheet.write_row(i, 0, [v.isoformat() if hasattr(v, "isoformat") else v for v in row])
    finally:
        book.close()


def publish(con: duckdb.DuckDBPyConnection, as_of: date, products: ProductCatalogue, out: Path) -> PublishSummary:
    """Publish the date's eligibility to every bank: files aside, then one transaction, then renames."""
    out = Path(out)
    frames = {b: con.execute(bank_rows_sql(as_of, b)).df() for b in sorted(products.banks)}
    con.execute(WARNINGS_DDL)  # a store that has never warned publishes an empty list
    alerts = {b: con.execute(bank_warnings_sql(as_of, b)).df() for b in frames}
    staged: dict[str, Path] = {}
    try:
        for bank, frame in frames.items():
            tmp = out / bank / f".{as_of.isoformat()}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            _write_files(frame, tmp, alerts[bank])
            staged[bank] = tmp
        con.execute("BEGIN TRANSACTION")
        try:
            for bank in frames:
                schema = bank_schema(bank)
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                con.execute(f"CREATE OR REPLACE TABLE {schema}.eligibility AS {bank_rows_sql(as_of, bank)}")
                con.execute(f"CREATE OR REPLACE TABLE {schema}.early_warnings AS {bank_warnings_sql(as_of, bank)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    except BaseException:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    for bank, tmp in staged.items():
        final = out / bank / as_of.isoformat()
        if final.exists():  # a re-run of the date: keep the old folder until the new one is in place
            old = out / bank / f".{as_of.isoformat()}.replaced"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old)
        else:
            os.replace(tmp, final)
        latest = out / bank / ".LATEST.tmp"
        latest.write_text(as_of.isoformat() + "\n", encoding="utf-8")
        os.replace(latest, out / bank / "LATEST")
    return PublishSummary(as_of, len(frames), {b: len(f) for b, f in frames.items()}, str(out))

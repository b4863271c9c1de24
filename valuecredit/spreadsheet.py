"""Text bound for a spreadsheet, neutralised (OWASP, CSV injection): Excel and its kind take a cell
starting with `=`, `+`, `-`, `@`, a tab or a carriage return for a formula, so a firm named
`=HYPERLINK(...)` would run in a bank officer's spreadsheet. Such a text cell gets a leading `'`,
which the spreadsheet shows as text. Only text: numbers stay numbers. Every CSV a person may open goes
through here; Parquet keeps the raw values."""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pandas as pd

from valuecredit.sqltext import SQL, lit, q

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _starts_with_formula(text: SQL) -> SQL:
    """SQL: the text starts with a formula character. Comparisons joined by OR, not `IN (...)`: DuckDB
    plans an IN list of six as a join, which gives up the rows' order, so a CSV of a few hundred
    thousand rows came out in another order from one run to the next."""
    return "(" + " OR ".join(f"left({text}, 1) = {lit(c)}" for c in FORMULA_START) + ")"


def neutral(value: object) -> object:
    return "'" + value if isinstance(value, str) and value.startswith(FORMULA_START) else value


def neutral_sql(con: duckdb.DuckDBPyConnection, select: SQL) -> SQL:
    """`select` with its text columns neutralised; the other columns, the names and the order as they are."""
    columns = con.execute(f"DESCRIBE {select}").fetchall()
    text = {name: q(name) if kind == "VARCHAR" else f"CAST({q(name)} AS VARCHAR)"  # an ENUM is text too
            for name, kind, *_ in columns if kind == "VARCHAR" or kind.startswith("ENUM(")}
    exprs = [f"CASE WHEN {_starts_with_formula(text[name])} THEN '''' || {text[name]} ELSE {text[name]} END AS {q(name)}"
             if name in text else q(name) for name, *_ in columns]
    return f"SELECT {', '.join(exprs)} FROM ({select})"


def excel_csv(con: duckdb.DuckDBPyConnection, select: SQL, path: Path) -> None:
    """UTF-8 with a byte-order mark, which is how Excel knows the Chinese text is UTF-8 (DuckDB
    writes none, so the body is written aside and appended after the mark); text that a spreadsheet
    would run as a formula is neutralised (`neutral_sql`)."""
    body = path.with_name(path.name + ".body")
    con.execute(f"COPY ({neutral_sql(con, select)}) TO {lit(str(body))} (FORMAT csv, HEADER true)")
    with open(path, "wb") as out, open(body, "rb") as src:
        out.write(b"\xef\xbb\xbf")
        shutil.copyfileobj(src, out, 1 << 20)
    body.unlink()


def neutral_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of `frame` with its text cells (and column names) neutralised; numbers untouched."""
    out = frame.rename(columns=lambda c: neutral(c) if isinstance(c, str) else c)
    for i in range(out.shape[1]):
        column = out.iloc[:, i]
        if isinstance(column.dtype, pd.CategoricalDtype):  # a DuckDB ENUM arrives as a category
            column = column.astype(object)
        if column.dtype == object or pd.api.types.is_string_dtype(column.dtype):
            out.isetitem(i, column.map(neutral))
    return out

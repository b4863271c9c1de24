"""Compare two runs of the same night: every table of the two stores, row for row, and every file
they published or reported, byte for byte.

    python -m benchmarks.compare_runs A/valuecredit.duckdb B/valuecredit.duckdb [--files A/publish B/publish ...]

A refactoring that claims "behaviour unchanged" runs the same universe and date before and after
and quotes this script's output. Tables are compared as sets of rows (ordered by every column), so
the physical order DuckDB happened to write does not count; files are compared by SHA-256.
Exit 0 when identical, 1 when anything differs (each difference listed).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import duckdb

from valuecredit.sqltext import q

# bookkeeping that records when and how long, not what: differs between any two runs
VOLATILE_TABLES = {"meta.runs", "meta.night_plans", "ledger.runs"}


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {f"{s}.{t}" for s, t in con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()}


def _table_digest(con: duckdb.DuckDBPyConnection, table: str) -> tuple[int, str]:
    schema, name = table.split(".", 1)
    ident = f"{q(schema)}.{q(name)}"
    columns = [r[0] for r in con.execute(
        "SELECT column_name FROM duckdb_columns() WHERE schema_name = ? AND table_name = ? ORDER BY column_index",
        [schema, name]).fetchall()]
    order = ", ".join(q(c) for c in columns) or "1"
    digest = hashlib.sha256()
    n = 0
    cursor = con.execute(f"SELECT * FROM {ident} ORDER BY {order}")
    while rows := cursor.fetchmany(50_000):
        for row in rows:
            digest.update(repr(row).encode())
        n += len(rows)
    return n, digest.hexdigest()


def compare_stores(a: Path, b: Path, skip: set[str] = VOLATILE_TABLES) -> list[str]:
    differences = []
    con_a, con_b = duckdb.connect(str(a), read_only=True), duckdb.connect(str(b), read_only=True)
    try:
        ta, tb = _tables(con_a) - skip, _tables(con_b) - skip
        differences += [f"table {t}: only in {a}" for t in sorted(ta - tb)]
        differences += [f"table {t}: only in {b}" for t in sorted(tb - ta)]
        for t in sorted(ta & tb):
            (na, da), (nb, db) = _table_digest(con_a, t), _table_digest(con_b, t)
            if da != db:
                differences.append(f"table {t}: {na:,} rows vs {nb:,} rows, contents differ")
    finally:
        con_a.close()
        con_b.close()
    return differences


def _files(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def compare_folders(a: Path, b: Path) -> list[str]:
    fa, fb = _files(a), _files(b)
    out = [f"file {f}: only in {a}" for f in sorted(fa.keys() - fb.keys())]
    out += [f"file {f}: only in {b}" for f in sorted(fb.keys() - fa.keys())]
    out += [f"file {f}: bytes differ" for f in sorted(fa.keys() & fb.keys()) if fa[f] != fb[f]]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store_a", type=Path)
    parser.add_argument("store_b", type=Path)
    parser.add_argument("--files", nargs=2, action="append", type=Path, default=[], metavar=("A", "B"),
                        help="two folders whose files must be byte-identical (repeatable)")
    args = parser.parse_args(argv)
    differences = compare_stores(args.store_a, args.store_b)
    for a, b in args.files:
        differences += compare_folders(a, b)
    if differences:
        print("\n".join(differences))
        print(f"{len(differences)} difference(s)")
        return 1
    with duckdb.connect(str(args.store_a), read_only=True) as con:
        n = len(_tables(con) - VOLATILE_TABLES)
    files = sum(len(_files(a)) for a, _ in args.files)
    print(f"identical: {n} tables and {files} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The store after 30 nights: tables kept by validity range, against a copy of every row per night.

A universe (20,000 firms, seed 0, 36 months to last month) runs 30 consecutive nights ending today.
Each night after the first, 1 % of the firms (a different 1 % each night) have their latest tax
month corrected, on top of what the simulator delivers. After the last night every table of the
store is copied into two fresh files: as stored, and with each ranged table written out night by
night (its view's rows, by night and firm), which is what the per-night layout held. The two
files' sizes are compared after a checkpoint, with the rows each layout stores.

    python -m benchmarks.store_growth [--firms 20000] [--nights 30] [--work benchmarks/work/growth]

Writes benchmarks/results/store_growth.json."""

from __future__ import annotations

import argparse
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

import duckdb

from benchmarks.ingest import write_result
from data_contracts.contracts import contract_for
from pipelines.run import run_nightly
from simulate.landing import deliver
from simulate.universe import SimConfig, simulate
from valuecredit.ranges import RANGED, ranges_of
from valuecredit.sqltext import lit, q


def correct_tax(db: Path, landing: Path, night: date, i: int) -> int:
    """The night's correction: the latest tax month of every 100th firm (offset by the night) at a third."""
    con = duckdb.connect(str(db), read_only=True)
    period = con.execute("SELECT max(period) FROM staging.tax_monthly").fetchone()[0]
    frame = con.execute("""
        SELECT * EXCLUDE (_file, _delivered_on) REPLACE (revenue_fen // 3 AS revenue_fen) FROM staging.tax_monthly
        WHERE period = ? AND uscc IN (SELECT uscc FROM (SELECT uscc, row_number() OVER (ORDER BY uscc) AS n
                                                          FROM staging.registry) WHERE n % 100 = ?)
        ORDER BY ALL""", [period, i % 100]).df()
    con.close()
    deliver(landing, contract_for("tax_monthly"), f"deltas/tax_corrections_{night:%Y%m%d}.parquet", period, frame, night)
    return len(frame)


def copy_store(db: Path, out: Path, per_night: bool) -> dict[str, int]:
    """Every table of `db` into a fresh file `out`; `per_night`: each ranged table as its view's rows
    instead of its ranges (the per-night layout). Rows stored per table."""
    out.unlink(missing_ok=True)
    con = duckdb.connect(str(out))
    con.execute(f"ATTACH {lit(str(db))} AS src (READ_ONLY)")
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = 'src' "
                         "ORDER BY ALL").fetchall()
    ranged = {ranges_of(t): t for t in RANGED}
    rows = {}
    for schema, name in tables:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {q(schema)}")
        source = f"{q(schema)}.{q(name)}"
        if per_night and source in ranged:
            view = ranged[source]
            con.execute(f"CREATE TABLE {view} AS SELECT * FROM src.{view} ORDER BY as_of, uscc")
            rows[view] = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
        else:
            con.execute(f"CREATE TABLE {source} AS SELECT * FROM src.{source}")
            rows[f"{schema}.{name}"] = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    con.execute("DETACH src")
    con.execute("CHECKPOINT")
    con.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--firms", type=int, default=20_000)
    p.add_argument("--nights", type=int, default=30)
    p.add_argument("--work", default=str(Path(__file__).parent / "work" / "growth"))
    args = p.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    landing, db = work / "landing", work / "store.duckdb"
    simulate(SimConfig(firms=args.firms, out=landing))
    nights = [date.today() - timedelta(days=args.nights - 1 - i) for i in range(args.nights)]
    log = []
    for i, night in enumerate(nights):
        corrected = correct_tax(db, landing, night, i) if i else 0
        started = time.perf_counter()
        summary = run_nightly(night, landing, db)
        log.append({"night": night.isoformat(), "corrected_firms": corrected,
                    "seconds": round(time.perf_counter() - started, 1), "succeeded": summary.succeeded,
                    "errors": summary.errors, "failed_checks": summary.failed_checks})
        print(log[-1], flush=True)
    sizes, rows = {}, {}
    for layout, per_night in (("ranges", False), ("per_night", True)):
        rows[layout] = copy_store(db, work / f"{layout}.duckdb", per_night)
        sizes[layout] = (work / f"{layout}.duckdb").stat().st_size
    kept = {*RANGED, *(f"{t}_ranges" for t in RANGED)}
    ranged_rows = {layout: {t: r for t, r in rows[layout].items() if t in kept} for layout in rows}
    result = {
        "firms": args.firms, "nights": len(nights), "from": nights[0].isoformat(), "to": nights[-1].isoformat(),
        "nights_failed": [r["night"] for r in log if not r["succeeded"]],
        "store_bytes": sizes, "ratio": round(sizes["ranges"] / sizes["per_night"], 3),
        "ranged_tables_rows": ranged_rows,
        "runs": log,
        "note": "both files are fresh copies of the same store after the last night (CHECKPOINT), so free blocks "
                "left by the nights count in neither",
    }
    write_result("store_growth.json", result)


if __name__ == "__main__":
    main()

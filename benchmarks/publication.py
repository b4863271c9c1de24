"""Publication to every bank on a night with the full table and on a night with the change files alone.

Runs on a store decided on two dates (`--base` D0, then `--date` D1, e.g. two `valuecredit run`
nights). Each run starts the banks afresh (their tables dropped, `decisions.published_tables` and
`published_table_sha256` emptied: this rewrites the store's bank tables, so use a benchmark store), publishes D0 untimed,
then times the publication of D1 in its own process:

- `full`: every bank's full-table day is D1's weekday (the weekly night: full table, CSV, workbook,
  change files against D0's full table);
- `changes_only`: no bank's full-table day is D1's: only the change files (against D0's full table),
  early warnings, dictionary and manifest are written.

The two alternate, `--repeats` times each. After each `changes_only` run every bank's D1 table
rebuilt from D0's full table and the change files must equal, byte for byte, the `full` run's
Parquet. Medians, the ratio, peak memory and the bytes each bank receives go
to benchmarks/results/publication.json.

    python -m benchmarks.publication --db STORE --base 2026-11-27 --date 2026-11-30 [--repeats 3]
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result

STAGE = """
import dataclasses, json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from lending.products import load_products
from lending.publish import bank_schema, publish
from valuecredit.schema import ensure
con = connect({db!r})
base, day, out, scenario = date.fromisoformat({base!r}), date.fromisoformat({day!r}), Path({out!r}), {scenario!r}
products = load_products()
for bank in products.banks:  # the banks afresh: D0 is their first publication
    con.execute(f"DROP SCHEMA IF EXISTS {{bank_schema(bank)}} CASCADE")
ensure(con, "decisions.published_tables", "decisions.published_table_sha256")
con.execute("DELETE FROM decisions.published_tables")
con.execute("DELETE FROM decisions.published_table_sha256")
publish(con, base, products, out)
weekdays = frozenset({{day.isoweekday()}}) if scenario == "full" else frozenset()
timed = dataclasses.replace(products, full_table_days={{b: weekdays for b in products.banks}})
t = time.perf_counter(); p = publish(con, day, timed, out); seconds = time.perf_counter() - t
sizes = [sum(f.stat().st_size for f in (out / b / day.isoformat()).iterdir()) for b in products.banks]
manifests = [json.loads((out / b / day.isoformat() / "manifest.json").read_text()) for b in products.banks]
out = {{"scenario": scenario, "publication_seconds": round(seconds, 1), "published_rows": sum(p.rows.values()),
        "banks": p.banks, "bytes_per_bank_median": sorted(sizes)[len(sizes) // 2],
        "full_tables": sum(m["full_table"] is not None for m in manifests),
        "changes": {{k: sum(m["changes"][k] for m in manifests) for k in ("insert", "update", "withdraw")}}}}
"""


def main() -> None:
    p = store_parser()
    p.add_argument("--base", required=True, help="the decided date published before --date (untimed)")
    args = parse_store_args(p, "two `valuecredit run` nights")
    base, day = date.fromisoformat(args.base), date.fromisoformat(args.date)
    work = Path(tempfile.mkdtemp(prefix="publication-", dir=Path(args.db).parent))
    runs, reference = [], work / "reference"
    try:
        for i in range(args.repeats):
            for scenario in ("full", "changes_only"):
                shutil.rmtree(work / "run", ignore_errors=True)
                out = work / "run" / "publish"
                runs.append(_child(STAGE.format(db=args.db, base=args.base, day=args.date, out=str(out),
                                                scenario=scenario)))
                print("run", i, runs[-1], flush=True)
                if scenario == "full" and not reference.exists():
                    shutil.copytree(out, reference)
                if scenario == "changes_only":
                    _check_rebuilt(out, reference, base, day)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def med(scenario: str, key: str) -> float:
        return round(statistics.median(r[key] for r in runs if r["scenario"] == scenario), 1)

    full, changes = med("full", "publication_seconds"), med("changes_only", "publication_seconds")
    result = {
        "store": str(args.db), "base": args.base, "as_of": args.date, "banks": runs[0]["banks"],
        "published_rows": runs[0]["published_rows"],
        "repeats": args.repeats, "full_seconds_median": full, "changes_only_seconds_median": changes,
        "changes_only_against_full": round(changes / full, 3),
        "bytes_per_bank_median": {s: int(statistics.median(r["bytes_per_bank_median"] for r in runs if r["scenario"] == s))
                                  for s in ("full", "changes_only")},
        "changes": runs[1]["changes"], "peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs),
        "rebuilt_tables_identical": True,  # _check_rebuilt raised otherwise
        "runs": runs,
    }
    write_result("publication.json", result)


def _check_rebuilt(out: Path, reference: Path, base: date, day: date) -> None:
    """Every bank's table of `day` rebuilt from `base`'s full table and the change files is the full
    run's Parquet, byte for byte; the folder of `day` holds no full table."""
    from lending.delta import FULL, rebuild

    for folder in sorted(p for p in out.iterdir() if p.is_dir()):
        if (folder / day.isoformat() / FULL).exists():
            raise SystemExit(f"bank {folder.name}: a full table on {day}, a night of change files alone")
        rebuilt = rebuild(folder, day, base, out.parent / "rebuilt" / folder.name)
        if rebuilt.read_bytes() != (reference / folder.name / day.isoformat() / FULL).read_bytes():
            raise SystemExit(f"bank {folder.name}: the table of {day} rebuilt from the change files differs from "
                             "the full run's")

if __name__ == "__main__":
    main()

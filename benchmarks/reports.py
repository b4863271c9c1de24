"""A bank's nightly batch of 1,000 firm score reports, at provincial scale.

Runs on the store `benchmarks.eligibility` decided (1,000,000 firms): the first 1,000 firms eligible
for one of the bank's products, each report rendered from the stored night (one query per section
for 500 firms at a time), written with an index page; `--repeats` times in a fresh process each.
Also the floor it compares with: the same template rendered 1,000 times from data already in memory.
Medians and peak memory go to benchmarks/results/reports.json. Target: under 2 minutes.

    python -m benchmarks.reports [--db benchmarks/work/bench.duckdb] [--bank B03] [--repeats 3]
"""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result

STAGE = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from reports.firm import bank_batch, gather, render
con = connect({db!r}, read_only=True)
d, cat = date.fromisoformat({as_of!r}), load_catalogue()
t = time.perf_counter(); s = bank_batch(con, {bank!r}, d, cat, Path({out!r}), limit={n}); batch = time.perf_counter() - t
firms = [p.stem for p in sorted(Path(s.folder).glob("9*.html"))]
data = gather(con, firms[:1], d)[firms[0]]
t = time.perf_counter()
for _ in range({n}):
    render(data, cat)
floor = time.perf_counter() - t
out = {{"reports": s.reports, "batch_seconds": round(batch, 2), "render_only_seconds": round(floor, 2)}}
"""


def main() -> None:
    p = store_parser()
    p.add_argument("--bank", default="B03")
    p.add_argument("--reports", type=int, default=1000)
    args = parse_store_args(p, "the ingest, model and eligibility benchmarks")
    out = Path(args.db).parent / "reports"
    runs = []
    for i in range(args.repeats):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(_child(STAGE.format(db=args.db, as_of=args.date, bank=args.bank, out=str(out), n=args.reports)))
        print("run", i, runs[-1], flush=True)
    batch = statistics.median(r["batch_seconds"] for r in runs)
    floor = statistics.median(r["render_only_seconds"] for r in runs)
    result = {
        "bank": args.bank, "as_of": args.date, "reports": runs[0]["reports"], "store_firms": 1_000_000,
        "repeats": args.repeats,
        "batch_seconds_median": batch, "render_only_seconds_median": floor,
        "batch_over_render_only": round(batch / floor, 2) if floor else None,
        "target_seconds": 120, "meets_target": batch < 120,
        "peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs), "runs": runs,
    }
    write_result("reports.json", result)


if __name__ == "__main__":
    main()

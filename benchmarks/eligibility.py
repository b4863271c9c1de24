"""Eligibility for every firm and product, and publication to every bank, at provincial scale.

Runs on a store that `benchmarks.model` has scored (PDs for the date): eligibility of 1,000,000
firms x 70 products, then publication to the 17 banks (tables swapped in one transaction, Parquet,
CSV and Excel files per bank), each stage in its own process, `--repeats` times; medians and peak
memory go to benchmarks/results/eligibility.json.

    python -m benchmarks.eligibility [--db benchmarks/work/bench.duckdb] [--repeats 3]
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
from lending.products import load_products
from lending.eligibility import build_eligibility
from lending.publish import publish
con = connect({db!r})
d, products = date.fromisoformat({as_of!r}), load_products()
t = time.perf_counter(); s = build_eligibility(con, d, products); t_elig = time.perf_counter() - t
t = time.perf_counter(); p = publish(con, d, products, Path({out!r})); t_pub = time.perf_counter() - t
out = {{"firms": s.firms, "products": s.products, "rows": s.firms * s.products, "eligible_pairs": s.eligible_pairs,
        "eligible_firms": s.eligible_firms, "gated": s.gated, "eligibility_seconds": round(t_elig, 1),
        "publication_seconds": round(t_pub, 1), "published_rows": sum(p.rows.values()), "banks": p.banks}}
"""


def main() -> None:
    args = parse_store_args(store_parser(), "`python -m benchmarks.ingest` and `benchmarks.model`")
    out = Path(args.db).parent / "publish"
    runs = []
    for i in range(args.repeats):
        shutil.rmtree(out, ignore_errors=True)
        runs.append(_child(STAGE.format(db=args.db, as_of=args.date, out=str(out))))
        print("run", i, runs[-1], flush=True)

    def med(key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 1)

    total = round(statistics.median(r["eligibility_seconds"] + r["publication_seconds"] for r in runs), 1)
    result = {
        "firms": runs[0]["firms"], "products": runs[0]["products"], "banks": runs[0]["banks"], "as_of": args.date,
        "repeats": args.repeats,
        "eligibility_seconds_median": med("eligibility_seconds"), "publication_seconds_median": med("publication_seconds"),
        "total_seconds_median": total, "target_seconds": 120, "meets_target": total < 120,
        "peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs), "runs": runs,
    }
    write_result("eligibility.json", result)


if __name__ == "__main__":
    main()

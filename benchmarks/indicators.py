"""The 19 indicators and the score at provincial scale, against a straightforward pandas baseline.

Runs on the store `benchmarks.ingest` leaves behind (1,000,000 firms x 36 months by default). Each
stage runs in its own process, three times, alternating SQL and pandas so that noise on this shared
machine hits both alike; the medians and their ratio are written to benchmarks/results/indicators.json
with each stage's peak RSS. The pandas result is checked equal to the SQL result, firm by firm.

    python -m benchmarks.indicators [--db benchmarks/work/bench.duckdb] [--repeats 3]
"""

from __future__ import annotations

import statistics

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result

SQL_STAGE = """
import json, time
from datetime import date
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from scoring.score import build_indicators, build_scores
con = connect({db!r})
d = date.fromisoformat({as_of!r})
t = time.perf_counter(); firms = build_indicators(con, d); t_ind = time.perf_counter() - t
t = time.perf_counter(); s = build_scores(con, d, load_catalogue()); t_score = time.perf_counter() - t
out = {{"firms": firms, "indicators_seconds": round(t_ind, 2), "score_seconds": round(t_score, 2),
        "excluded": s.excluded, "negative_hits": s.hits}}
"""

PANDAS_STAGE = """
import json, time
from datetime import date
from valuecredit.store import connect
from benchmarks.pandas_indicators import compare, pandas_indicators
con = connect({db!r}, read_only=True)
d = date.fromisoformat({as_of!r})
t = time.perf_counter(); frame = pandas_indicators(con, d); t_pd = time.perf_counter() - t
sql = con.execute("SELECT * EXCLUDE (as_of, snapshot_id) FROM features.indicators WHERE as_of = ?", [d]).df()
diffs = compare(sql, frame)
out = {{"firms": len(frame), "indicators_seconds": round(t_pd, 2), "differences": diffs}}
"""


def main() -> None:
    args = parse_store_args(store_parser(), "`python -m benchmarks.ingest`")
    sql_runs, pandas_runs = [], []
    for i in range(args.repeats):
        sql_runs.append(_child(SQL_STAGE.format(db=args.db, as_of=args.date)))
        print("sql", i, sql_runs[-1], flush=True)
        pandas_runs.append(_child(PANDAS_STAGE.format(db=args.db, as_of=args.date)))
        print("pandas", i, {k: v for k, v in pandas_runs[-1].items() if k != "differences"}, flush=True)

    def med(runs: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 2)

    sql_ind, sql_score = med(sql_runs, "indicators_seconds"), med(sql_runs, "score_seconds")
    pd_ind = med(pandas_runs, "indicators_seconds")
    differences = pandas_runs[-1]["differences"]
    result = {
        "firms": sql_runs[0]["firms"], "as_of": args.date,
        "repeats": args.repeats,
        "sql": {"indicators_seconds_median": sql_ind, "score_seconds_median": sql_score,
                "indicators_and_score_seconds_median": round(sql_ind + sql_score, 2),
                "process_seconds_median": med(sql_runs, "seconds"),
                "peak_rss_gib_max": max(r["peak_rss_gib"] for r in sql_runs), "runs": sql_runs},
        "pandas_baseline": {"indicators_seconds_median": pd_ind, "process_seconds_median": med(pandas_runs, "seconds"),
                            "peak_rss_gib_max": max(r["peak_rss_gib"] for r in pandas_runs),
                            "runs": [{k: v for k, v in r.items() if k != "differences"} for r in pandas_runs]},
        "speedup_indicators_vs_pandas": round(pd_ind / max(sql_ind, 0.01), 2),
        "pandas_equals_sql": all(v == 0 for v in differences.values()),
        "differences_by_indicator": differences,
        "targets": {"indicators_and_score_seconds": 60, "speedup_vs_pandas": 3},
        "note": "indicators and score computed by the product's SQL in DuckDB (store limited to "
                "VALUECREDIT_DUCKDB_MEMORY); the pandas baseline loads the same raw tables and computes the same "
                "definitions; both timings include reading the data; medians over alternating runs",
    }
    firms = result["firms"]
    out = write_result("indicators.json" if firms >= 1_000_000 else f"indicators_{firms}.json", result, leave_out=())
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Five years of the compensation pool for 100,000 loans: every nightly posting, timed.

Writes a loan book straight into the raw tables (loans, monthly status with repayments and the
five-tier classification, recoveries and write-offs; deterministic, seed 0), then posts the
ledger business date by business date, as the nightly runs would: one posting date per monthly
delivery of the banks' files (60 dates). Wall time and peak RSS of the posting process go to
benchmarks/results/ledger.json, with the ledger's invariant checks.

    python -m benchmarks.ledger [--loans 100000] [--years 5] [--repeats 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
from pathlib import Path

from benchmarks.ingest import _child, write_result

BUILD_BOOK = """
import json
import numpy as np, pandas as pd
from datetime import date
from valuecredit.store import connect
con = connect({db!r})
rng = np.random.default_rng(0)
n, months = {loans}, {years} * 12
start = 2021 * 12  # January 2021
k0 = rng.integers(start, start + months - 12, n)          # disbursement month
day = rng.integers(1, 28, n)
amount = rng.integers(10_000, 300_000, n) * 1000           # 100,000 to 3,000,000 RMB, in fen
bank = np.array([f"B{{i:02d}}" for i in rng.integers(1, 18, n)])
defaults = rng.random(n) < 0.03
stop = rng.integers(1, 10, n)
ids = np.array([f"L{{i:09d}}" for i in range(n)])
def d(k, dd): return pd.to_datetime(pd.DataFrame({{"year": k // 12, "month": k % 12 + 1, "day": dd}}))
def delivered(k): return d(k + 1, np.full(len(k), 6))    # the banks deliver on the 6th of the next month
loans = pd.DataFrame({{"loan_id": ids, "application_id": ids, "uscc": ids, "bank_id": bank,
    "disbursed_on": d(k0, day).dt.date, "amount_fen": amount, "term_months": 12, "rate_bp": 450,
    "maturity_on": d(k0 + 12, np.full(n, 1)).dt.date, "product_kind": "credit"}})
loans["_delivered_on"] = delivered(k0).dt.date
status, recov = [], []
outstanding = amount.copy()
for m in range(1, 13):
    k = k0 + m
    alive = ~defaults | (m < stop)
    principal = np.where(alive, np.where(m == 12, outstanding, amount // 12), 0)
    outstanding = outstanding - principal
    dpd = np.where(alive, 0, (m - stop + 1) * 30)
    cls = np.select([dpd == 0, dpd <= 90, dpd <= 180, dpd <= 360], ["正常", "关注", "次级", "可疑"], "损失")
    status.append(pd.DataFrame({{"loan_id": ids, "period": [f"{{y}}-{{mm:02d}}" for y, mm in zip(k // 12, k % 12 + 1)],
        "principal_repaid_fen": principal, "interest_paid_fen": np.where(alive, outstanding // 200, 0),
        "outstanding_fen": outstanding, "dpd": dpd, "classification": cls, "_delivered_on": delivered(k).dt.date}}))
    rec = ~alive & (m == stop + 4)                         # a recovery of 10 % four months after the stop
    amt = outstanding[rec] // 10
    outstanding[rec] -= amt
    recov.append(pd.DataFrame({{"event_id": np.char.add("R", ids[rec]), "loan_id": ids[rec], "event_date": d(k[rec], np.full(rec.sum(), 28)).dt.date,
        "event_type": "recovery", "amount_fen": amt, "_delivered_on": delivered(k[rec]).dt.date}}))
wo = defaults & (outstanding > 0)
recov.append(pd.DataFrame({{"event_id": np.char.add("W", ids[wo]), "loan_id": ids[wo], "event_date": d(k0[wo] + 12, np.full(wo.sum(), 28)).dt.date,
    "event_type": "write_off", "amount_fen": outstanding[wo], "_delivered_on": delivered(k0[wo] + 12).dt.date}}))
status, recov = pd.concat(status), pd.concat(recov)
for name, frame in (("loans", loans), ("loan_status", status), ("loan_recoveries", recov)):
    cols = [c for c in frame.columns if c != "_delivered_on"]
    con.register("_f", frame)
    # by column name, as ingestion writes: the raw tables gain columns as the contracts do
    con.execute(f"INSERT INTO raw.{{name}} ({{', '.join(cols)}}, _file, _row, _delivered_on, _partition) "
                f"SELECT {{', '.join(cols)}}, 'bench', 0, _delivered_on, _delivered_on FROM _f")
    con.unregister("_f")
dates = sorted(set(loans._delivered_on) | set(status._delivered_on) | set(recov._delivered_on))
out = {{"loans": n, "status_rows": len(status), "recovery_rows": len(recov), "business_dates": len(dates),
        "dates": [x.isoformat() for x in dates]}}
"""

POST = """
import json, time
from datetime import date
from valuecredit.store import connect
from lending.calendar import WorkingDays
from lending.ledger.config import load_pool_config
from lending.ledger.store import post_business_date
from lending.ledger.checks import check_ledger
con = connect({db!r})
cfg, cal = load_pool_config(), WorkingDays.load()
per_date, events, postings, claims = [], 0, 0, {{}}
started = time.perf_counter()
for d in {dates!r}:
    t = time.perf_counter()
    s = post_business_date(con, date.fromisoformat(d), cfg, cal)
    per_date.append(round(time.perf_counter() - t, 3))
    events += s.events; postings += s.postings
    for k, v in s.claims.items(): claims[k] = claims.get(k, 0) + v
total = time.perf_counter() - started
t = time.perf_counter()
checks = {{name: o.passed for name, o in check_ledger(con, cfg)}}
out = {{"posting_seconds": round(total, 2), "events": events, "postings": postings, "claims": claims,
        "legs": con.execute("SELECT count(*) FROM ledger.postings").fetchone()[0],
        "slowest_date_seconds": max(per_date), "median_date_seconds": sorted(per_date)[len(per_date) // 2],
        "checks": checks, "checks_seconds": round(time.perf_counter() - t, 2)}}
"""


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--loans", type=int, default=100_000)
    p.add_argument("--years", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--work", default=str(Path(__file__).parent / "work"))
    args = p.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    template, db = work / "ledger_book.duckdb", work / "ledger_bench.duckdb"
    for f in (template, Path(str(template) + ".wal")):
        f.unlink(missing_ok=True)
    book = _child(BUILD_BOOK.format(db=str(template), loans=args.loans, years=args.years))
    dates = book.pop("dates")
    print("loan book", book, flush=True)
    runs = []
    for i in range(args.repeats):  # each run posts the whole history into a fresh copy of the book
        shutil.copy(template, db)
        runs.append(_child(POST.format(db=str(db), dates=dates)))
        print("posting", i, {k: v for k, v in runs[-1].items() if k != "checks"}, flush=True)
    median = statistics.median(r["posting_seconds"] for r in runs)
    result = {"loans": args.loans, "years": args.years,
              "loan_book": book, "posting_seconds_median": median,
              "peak_rss_gib_max": max(r["peak_rss_gib"] for r in runs),
              "checks_all_passed": all(all(r["checks"].values()) for r in runs), "runs": runs,
              "target": {"posting_seconds": 60},
              "note": "posting_seconds covers every nightly posting (events from the raw tables, the engine, the "
                      "writes) for all business dates in one process; the median of the runs; peak_rss_gib is the "
                      "posting process's peak"}
    write_result("ledger.json" if args.loans == 100_000 and args.years == 5 else f"ledger_{args.loans}.json", result)


if __name__ == "__main__":
    main()

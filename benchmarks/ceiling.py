"""The champion against the simulator's ceiling, out of time, for several seeds: how far one draw of
the out-of-time AUC moves, and how the gap shrinks as the loan book grows.

Trains the champion with each seed on a store (as `valuecredit model train` does, into a throwaway
registry) and writes benchmarks/results/ceiling_<firms>_firms.json: per seed, the out-of-time AUC,
calibration error and gap to the ceiling with its 90 % paired-bootstrap interval; then the median.

    python -m benchmarks.ceiling --db STORE --landing LANDING [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from datetime import date
from pathlib import Path

from benchmarks.ingest import write_result
from models.train import retrain
from valuecredit.scoring.catalogue import load_catalogue
from valuecredit.store import connect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--landing", required=True, help="the simulated landing zone, with its _truth/")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    args = p.parse_args()
    truth = Path(args.landing) / "_truth" / "loans.parquet"
    if not truth.exists():
        raise SystemExit(f"{truth} does not exist: the ceiling needs the simulator's truth")
    con = connect(args.db, read_only=True)
    firms = int(json.loads((truth.parent / "config.json").read_text())["firms"])  # the simulated universe
    runs = {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as registry:
            report = retrain(con, load_catalogue(), Path(registry), date(2026, 11, 28), truth, seed=seed)
        oot = report["out_of_time"]
        runs[seed] = {"auc": oot["gbm"]["auc"], "ece": oot["gbm"]["ece"], "ceiling_auc": oot["ceiling_pd_12m_observable"]["auc"],
                      **report["gap_to_ceiling"]}
        print(seed, runs[seed], flush=True)
    gaps = [r["auc_gap"] for r in runs.values()]
    write_result(f"ceiling_{firms}_firms.json", {
        "firms": firms, "training_loans": report["train"]["loans"], "training_defaults": report["train"]["defaults"],
        "out_of_time_loans": oot["gbm"]["loans"], "out_of_time_defaults": oot["gbm"]["defaults"],
        "target_gap": 0.01, "gap_median": statistics.median(gaps), "gap_max": max(gaps),
        "seeds_within_target": sum(g <= 0.01 for g in gaps), "runs": runs}, leave_out=())


if __name__ == "__main__":
    main()

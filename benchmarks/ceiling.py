"""The champion against the simulator's ceiling, out of time, for several seeds: how far one draw of
the out-of-time AUC moves, and how the gap shrinks as the loan book grows.

Trains the champion with each seed on a store (as `valuecredit model train` does, into a throwaway
registry) and writes benchmarks/results/ceiling_<firms>_firms.json: per seed, the out-of-time AUC,
calibration error and gap to the ceiling with its 90 % paired-bootstrap interval; then the median.
And where the gap comes from: the champion (seed 0) trained on a quarter and a half of the training
loans (how much more loans would teach), and a regressor fitted to the simulator's own
`pd_12m_observable` on the same features (how much of the signal the features hold; a diagnosis
only: no real loan book has that target).

    python -m benchmarks.ceiling --db STORE --landing LANDING [--seeds 0 1 2 3 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from datetime import date
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from benchmarks.ingest import write_result
from models.estimators import MonotoneGBM, _categorical, _known_categories
from models.features import FEATURES
from models.train import out_of_time_split, retrain, training_sample, validate
from scoring.catalogue import load_catalogue
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
    catalogue = load_catalogue()
    sample, runs = training_sample(con, catalogue), {}
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as registry:
            report = retrain(con, catalogue, Path(registry), date.today(), truth, seed=seed, sample=sample)
        oot = report["out_of_time"]
        runs[seed] = {"auc": oot["gbm"]["auc"], "ece": oot["gbm"]["ece"], "ceiling_auc": oot["ceiling_pd_12m_observable"]["auc"],
                      **report["gap_to_ceiling"]}
        print(seed, runs[seed], flush=True)
    gaps = [r["auc_gap"] for r in runs.values()]
    diagnosis = where_the_gap_comes_from(sample, truth)
    print(diagnosis, flush=True)
    write_result(f"ceiling_{firms}_firms.json", {
        "firms": firms, "training_loans": report["train"]["loans"], "training_defaults": report["train"]["defaults"],
        "out_of_time_loans": oot["gbm"]["loans"], "out_of_time_defaults": oot["gbm"]["defaults"],
        "target_gap": 0.01, "gap_median": statistics.median(gaps), "gap_max": max(gaps),
        "seeds_within_target": sum(g <= 0.01 for g in gaps), "runs": runs, "diagnosis": diagnosis}, leave_out=())


def where_the_gap_comes_from(sample: pd.DataFrame, truth: Path) -> dict:
    """Out-of-time AUC of the champion on a share of its training loans, and of a regressor of the
    ceiling's log-odds on the same features."""
    sample = sample.merge(pd.read_parquet(truth, columns=["loan_id", "pd_12m_observable"]), on="loan_id", validate="one_to_one")
    train, test = out_of_time_split(sample)
    y, features = test["defaulted"].astype(int).to_numpy(), list(FEATURES)
    curve = {}
    for share in (0.25, 0.5, 1.0):
        part = train.sample(frac=share, random_state=0) if share < 1 else train
        gbm = MonotoneGBM(monotone=FEATURES, random_state=0).fit(part[features], part["defaulted"].astype(int).to_numpy())
        curve[str(share)] = {"loans": len(part), "auc": validate(y, gbm.predict_proba(test[features])[:, 1])["auc"]}
    text = _categorical(train[features])
    categories = {c: sorted(train[c].dropna().astype(str).unique()) for c in text}

    def frame(X: pd.DataFrame) -> pd.DataFrame:  # text columns as categoricals, as the champion reads them
        return X.assign(**{c: _known_categories(X[c], categories[c]) for c in text})

    log_odds = lambda q: np.log(q / (1 - q))  # noqa: E731
    regressor = lgb.LGBMRegressor(n_estimators=600, learning_rate=0.05, num_leaves=63, random_state=0, verbose=-1,
                                  deterministic=True, force_row_wise=True)
    regressor.fit(frame(train[features]), log_odds(train["pd_12m_observable"].to_numpy()))
    fitted = regressor.predict(frame(test[features]))
    return {"training_share_curve": curve,
            "regressor_of_ceiling_on_features_auc": validate(y, 1 / (1 + np.exp(-fitted)))["auc"],
            "ceiling_auc": validate(y, test["pd_12m_observable"].to_numpy())["auc"]}


if __name__ == "__main__":
    main()

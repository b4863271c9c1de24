"""How far the court's record of default stands for default itself, by risk: why the population
PD's lowest tenth stays under its realised rate.

On a simulated store, fits the population booster of court default on the training months as
`models.train.retrain` ships it (its base rate from the latest training loans), then, by tenth of its score:
- on the out-of-time target months: the court-default rate, the simulator's realised default (one
  draw from each firm's true PD, `_truth/outcomes/`) and their ratio;
- on every firm of the scoring date: the model's PD against the realised rate, and what an oracle
  Platt line fitted on those very outcomes would say (the best any line in the booster's log-odds
  can do).
Writes benchmarks/results/court_record_<firms>_firms.json.

    python -m benchmarks.court_record --db STORE --landing LANDING --date 2026-11-27
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from benchmarks.ingest import write_result
from benchmarks.population import truth_for
from models.features import FEATURES
from models.nightly import model_inputs
from models.population import out_of_time_months, population_sample
from models.train import fit_population_gbm, latest_loans, out_of_time_split, training_sample
from scoring.catalogue import load_catalogue
from valuecredit.store import connect


def by_tenth(score: np.ndarray, frame: pd.DataFrame, columns: dict[str, str]) -> list[dict]:
    """Per tenth of `score` (lowest first): rows and the mean of each of `columns` (name: column)."""
    tenth = pd.qcut(pd.Series(score).rank(method="first"), 10, labels=False).to_numpy()
    return [{"tenth": int(t) + 1, "rows": int((tenth == t).sum()),
             **{name: round(float(frame[col].to_numpy()[tenth == t].mean()), 5) for name, col in columns.items()}}
            for t in range(10)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--landing", required=True)
    p.add_argument("--date", default="2026-11-27")
    args = p.parse_args()
    as_of, landing, F = date.fromisoformat(args.date), Path(args.landing), list(FEATURES)
    con = connect(Path(args.db), read_only=True)
    cat = load_catalogue()
    try:
        train, _ = out_of_time_split(training_sample(con, cat))
        pop_train, pop_test = out_of_time_months(population_sample(con, cat))
        night = model_inputs(con, as_of, cat, from_stored=False)
    finally:
        con.close()
    gbm = fit_population_gbm(pop_train, latest_loans(train), loans=train)  # as `retrain` fits it
    months = [part.merge(truth_for(landing, pd.Timestamp(m).date())[["uscc", "defaulted_12m"]], on="uscc")
              for m, part in pop_test.groupby("as_of")]
    oot = pd.concat(months, ignore_index=True)
    oot_tenths = by_tenth(gbm.raw_score(oot[F]), oot, {"court_default": "court_default", "realised": "defaulted_12m"})
    for row in oot_tenths:
        row["realised_over_court"] = round(row["realised"] / row["court_default"], 2) if row["court_default"] else None
    night = night.merge(truth_for(landing, as_of)[["uscc", "defaulted_12m"]], on="uscc")
    z = gbm.raw_score(night[F]).reshape(-1, 1)
    y = night["defaulted_12m"].astype(int).to_numpy()
    oracle = LogisticRegression(C=1e6).fit(z, y)
    night = night.assign(pd_model=gbm.predict_proba(night[F])[:, 1], pd_oracle=oracle.predict_proba(z)[:, 1])
    night_tenths = by_tenth(z[:, 0], night, {"realised": "defaulted_12m", "model_pd": "pd_model",
                                             "oracle_platt_pd": "pd_oracle"})
    write_result(f"court_record_{len(night)}_firms.json", {
        "as_of": args.date, "out_of_time_months": sorted(map(str, oot["as_of"].dt.date.unique())),
        "out_of_time_by_tenth": oot_tenths, "night_firms": len(night),
        "oracle_platt": {"slope": round(float(oracle.coef_[0][0]), 3), "intercept": round(float(oracle.intercept_[0]), 3)},
        "night_by_tenth": night_tenths}, leave_out=())


if __name__ == "__main__":
    main()

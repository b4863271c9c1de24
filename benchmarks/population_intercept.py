"""What the population's calibration would be if the champion's base rate (the intercept of its PD's
log-odds) were set on other loans than the earlier 70 % it was set on: all closed loans, or the later
30 %. The stored PDs of the date are shifted on the log-odds scale by the difference and measured as
`benchmarks.population` measures them. An analysis for the next step on the population PD; prints JSON.

    python -m benchmarks.population_intercept --db STORE --landing LANDING --registry DIR --date D
"""
import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

from benchmarks.population import measure, scored_population, truth_for
from models.estimators import log_odds_shift
from models.registry import champion, load_model
from models.train import FEATURES, out_of_time_split, training_sample
from scoring.catalogue import load_catalogue
from valuecredit.store import connect


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--db", "--landing", "--registry", "--date"):
        p.add_argument(flag, required=True)
    args = p.parse_args()
    db, landing, as_of = Path(args.db), Path(args.landing), date.fromisoformat(args.date)
    m = load_model(Path(args.registry), champion(Path(args.registry)))
    con = connect(db, read_only=True)
    sample = training_sample(con, load_catalogue())
    con.close()
    train, test = out_of_time_split(sample)
    F = list(FEATURES)

    def shift(frame):  # as `MonotoneGBM.calibrate_to` sets the base rate, on these loans
        z = m.calibration["coef"] * m.raw_score(frame[F]) + m.calibration["intercept"]
        return log_odds_shift(z, frame["defaulted"].astype(int).to_numpy())

    out = {"loans_all": len(sample), "loans_train": len(train), "shift_on_train": round(shift(train), 4),
           "shift_on_all": round(shift(sample), 4), "shift_on_later_30": round(shift(test), 4)}
    frame = scored_population(db, as_of)
    truth = truth_for(landing, as_of)
    joined = frame.merge(truth[["uscc", "pd_12m_observable", "pd_12m_true", "defaulted_12m"]], on="uscc", how="inner")
    for name in ("shift_on_all", "shift_on_later_30"):
        d = out[name] - out["shift_on_train"]
        lo = np.log(joined["pd"] / (1 - joined["pd"])) + d
        r = measure(joined.assign(pd=1 / (1 + np.exp(-lo))))
        out[name + "_population"] = {k: r[k] for k in ("mean_pd", "realised_rate", "ece", "max_decile_relative_gap")} | {
            "deciles": [(x["mean_pd"], x["observed"]) for x in r["by_predicted_decile"]]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

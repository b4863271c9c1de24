"""The PD model at provincial scale: training, out-of-time validation against the simulator's
ceiling, and the nightly scoring with exact TreeSHAP explanations of every firm, against
`shap.TreeExplainer` on the same model in the same run.

Runs on the store `benchmarks.ingest` leaves behind (1,000,000 firms x 36 months by default) and its
landing zone's `_truth/`. Stages, each in its own process:
1. indicators and scores for the date (the nightly steps the PD step reads);
2. retraining: the champion (default size) and a smaller model, each validated out of time
   (`benchmarks.ceiling` trains the champion with other seeds, for the spread);
3. the nightly PD step (inputs, PDs, SHAP, reason codes, PSI, writes) with the champion, `--repeats` times;
4. explanation only: LightGBM's TreeSHAP and shap.TreeExplainer on the same rows, alternating.
Medians and ratios go to benchmarks/results/model.json.

    python -m benchmarks.model [--db benchmarks/work/bench.duckdb] [--repeats 3]
"""

from __future__ import annotations

import platform
import shutil
import statistics
from pathlib import Path

from benchmarks.ingest import _child, parse_store_args, store_parser, write_result

PREPARE = """
import json, time
from datetime import date
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from scoring.score import build_indicators, build_scores
con = connect({db!r})
d = date.fromisoformat({as_of!r})
t = time.perf_counter(); firms = build_indicators(con, d); build_scores(con, d, load_catalogue())
out = {{"firms": firms, "indicators_and_scores_seconds": round(time.perf_counter() - t, 1)}}
"""

TRAIN = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from models.train import retrain
con = connect({db!r}, read_only=True)
t = time.perf_counter()
report = retrain(con, load_catalogue(), Path({registry!r}), date.fromisoformat({as_of!r}), Path({truth!r}),
                 gbm_params={params!r})
oot = report["out_of_time"]
strip = lambda m: {{k: v for k, v in m.items() if k != "reliability"}}
out = {{"training_seconds": round(time.perf_counter() - t, 1), "version": report["version"], "train": report["train"],
        "trees": report["gbm_trees"], "decision": report["decision"], "out_of_time": {{k: strip(v) for k, v in oot.items()}},
        "reliability_gbm": oot["gbm"]["reliability"], "gap_to_ceiling": report["gap_to_ceiling"]}}
"""

SCORE = """
import json, time
from datetime import date
from pathlib import Path
from valuecredit.store import connect
from scoring.catalogue import load_catalogue
from models.nightly import load_reason_codes, pinned_model, score_pd
con = connect({db!r})
model = pinned_model(Path({registry!r}))
t = time.perf_counter()
s = score_pd(con, date.fromisoformat({as_of!r}), load_catalogue(), model, load_reason_codes())
out = {{"firms": s.firms, "model_version": s.model_version, "pd_step_seconds": round(time.perf_counter() - t, 1),
        "mean_pd": round(s.mean_pd, 5), "psi_shift": s.shifted}}
"""

EXPLAIN = """
import json, time
from datetime import date
from pathlib import Path
import numpy as np
from valuecredit.store import connect
from models.registry import load_model
con = connect({db!r}, read_only=True)
model = load_model(Path({registry!r}), {version!r})
X = model.frame(con.execute("SELECT * FROM features.pd_inputs WHERE as_of = ? ORDER BY uscc", [date.fromisoformat({as_of!r})]).df())
X = X.iloc[:{rows}]
t = time.perf_counter()
if {which!r} == "lightgbm":
    phi = model.booster.predict(X, pred_contrib=True)[:, :-1]
else:
    import shap
    phi = shap.TreeExplainer(model.booster).shap_values(X)
seconds = time.perf_counter() - t
out = {{"rows": len(X), "seconds": round(seconds, 2), "firms_per_second": round(len(X) / seconds),
        "checksum": float(np.round(np.abs(phi).sum(), 3))}}
"""


SMALLER = {"num_leaves": 3, "n_estimators": 100}  # at most 100 trees of three leaves


def main() -> None:
    p = store_parser()
    p.add_argument("--landing", default=str(Path(__file__).parent / "work" / "landing"))
    p.add_argument("--baseline-rows", type=int, default=200_000,
                   help="rows for the explanation-only comparison (shap.TreeExplainer is the slow side)")
    args = parse_store_args(p, "`python -m benchmarks.ingest`")
    work = Path(args.db).parent
    truth = str(Path(args.landing) / "_truth" / "loans.parquet")
    prepared = _child(PREPARE.format(db=args.db, as_of=args.date))
    print("prepare", prepared, flush=True)
    trained = {}
    for name, params in (("champion", None), ("smaller", SMALLER)):
        registry = str(work / f"models_{name}")
        shutil.rmtree(registry, ignore_errors=True)  # each run trains and promotes its own first champion
        trained[name] = _child(TRAIN.format(db=args.db, registry=registry, as_of=args.date, truth=truth, params=params))
        print("train", name, {k: v for k, v in trained[name].items() if k != "reliability_gbm"}, flush=True)
    scoring = {}
    for name in ("smaller", "champion"):  # the champion last: its PDs stay in the store for the next benchmarks
        runs = []
        for i in range(args.repeats if name == "champion" else 1):
            runs.append(_child(SCORE.format(db=args.db, registry=str(work / f"models_{name}"), as_of=args.date)))
            print("score", name, i, runs[-1], flush=True)
        scoring[name] = runs
    explain = {"lightgbm": [], "shap_tree_explainer": []}
    version = trained["champion"]["version"]
    for i in range(args.repeats):
        for which, key in (("lightgbm", "lightgbm"), ("shap", "shap_tree_explainer")):
            explain[key].append(_child(EXPLAIN.format(db=args.db, registry=str(work / "models_champion"), version=version,
                                                      as_of=args.date, rows=args.baseline_rows, which=which)))
            print("explain", key, i, explain[key][-1], flush=True)

    def med(runs: list[dict], key: str) -> float:
        return round(statistics.median(r[key] for r in runs), 2)

    champion, smaller = trained["champion"], trained["smaller"]
    gbm, ceiling = champion["out_of_time"]["gbm"], champion["out_of_time"]["ceiling_pd_12m_observable"]
    pd_step = med(scoring["champion"], "pd_step_seconds")
    lgb_rate, shap_rate = med(explain["lightgbm"], "firms_per_second"), med(explain["shap_tree_explainer"], "firms_per_second")
    result = {
        "firms": prepared["firms"], "as_of": args.date, "machine": f"{platform.machine()}, 2 cores, 24 GiB",
        "repeats": args.repeats,
        "training": {"champion_seconds": champion["training_seconds"], "loans": champion["train"]["loans"],
                     "defaults": champion["train"]["defaults"], "trees": champion["trees"],
                     "version": champion["version"]},
        "out_of_time": {"loans": gbm["loans"], "defaults": gbm["defaults"], "champion": gbm,
                        "scorecard_challenger": champion["out_of_time"]["scorecard"], "ceiling_pd_12m_observable": ceiling,
                        "champion_gap_to_ceiling_auc": champion["gap_to_ceiling"]["auc_gap"],
                        "champion_gap_to_ceiling_interval_90": champion["gap_to_ceiling"]["interval_90"],
                        "reliability_champion": champion["reliability_gbm"]},
        "smaller_model": {**SMALLER, "trees": smaller["trees"],
                          "out_of_time_auc": smaller["out_of_time"]["gbm"]["auc"],
                          "auc_cost_vs_champion": round(gbm["auc"] - smaller["out_of_time"]["gbm"]["auc"], 4),
                          "pd_step_seconds": scoring["smaller"][0]["pd_step_seconds"],
                          "training_seconds": smaller["training_seconds"]},
        "nightly_pd_step": {"seconds_median": pd_step, "target_seconds": 180, "meets_target": pd_step < 180,
                            "firms_per_second": round(prepared["firms"] / pd_step),
                            "peak_rss_gib_max": max(r["peak_rss_gib"] for r in scoring["champion"]),
                            "runs": scoring["champion"]},
        "explanation_only": {"rows": args.baseline_rows, "lightgbm_treeshap_firms_per_second_median": lgb_rate,
                             "shap_tree_explainer_firms_per_second_median": shap_rate,
                             "speedup_vs_shap_tree_explainer": round(lgb_rate / shap_rate, 2),
                             "same_values_checksum": [explain["lightgbm"][0]["checksum"],
                                                      explain["shap_tree_explainer"][0]["checksum"]],
                             "runs": explain},
    }
    write_result("model.json", result, leave_out=("explanation_only",))


if __name__ == "__main__":
    main()

"""The PD where it is used: on every firm the eligibility decides for, against the simulator's
realised outcomes for all firms, not only borrowers.

Reads a store that has been scored for the date (`valuecredit run`, or `--train` here) and the
landing zone's `_truth/outcomes/<month>.parquet`: per firm active at the end of the month before the
date, its 12-month PD (`pd_12m_true`, `pd_12m_observable`: the ceiling) and one outcome drawn from
the true PD. Writes benchmarks/results/population_<firms>_firms.json:
- AUC against the drawn outcomes of the model PD, the 4+19+1 score and the ceiling, on every scored
  firm, with the model's paired-bootstrap 90 % interval against each;
- by decile of the simulator's observable PD: the truth's mean and the model's mean;
- by decile of the model's PD: its mean against the realised rate (and their relative gap), and the
  expected calibration error;
- by grade: firms, mean PD, realised rate.

    python -m benchmarks.population --db STORE --landing LANDING [--date 2026-11-29] [--train]

`--train` first trains a model as `valuecredit model train` does (into `<store folder>/models_population`,
a fresh registry) and scores the date with it; without it the PDs already stored for the date are
judged. `--firms` only names the result file (default: the firms scored).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from benchmarks.ingest import write_result
from models.metrics import auc_difference
from models.registry import code_version
from models.train import reliability
from valuecredit.store import connect


def truth_for(landing: Path, as_of: date) -> pd.DataFrame:
    """The simulator's truth for a business date: the month-end before the date's month, whose PDs
    read the data month the date's features read (the second month before)."""
    month = as_of.year * 12 + as_of.month - 2
    path = Path(landing) / "_truth" / "outcomes" / f"{month // 12:04d}-{month % 12 + 1:02d}.parquet"
    if not path.exists():
        raise SystemExit(f"{path}: no realised outcomes for {as_of} (simulate again with this version)")
    return pd.read_parquet(path)


def scored_population(db: Path, as_of: date) -> pd.DataFrame:
    """Every firm with a PD on the date, with its score and grade (and whether the eligibility decided on it)."""
    con = connect(db, read_only=True)
    try:
        return con.execute("""
            SELECT p.uscc, p.pd, c.total, c.grade, c.excluded FROM scores.pd p
            JOIN scores.commercial_value c ON c.uscc = p.uscc AND c.as_of = p.as_of
            WHERE p.as_of = ? ORDER BY p.uscc""", [as_of]).df()
    finally:
        con.close()


def measure(frame: pd.DataFrame, seed: int = 0) -> dict:
    """The figures of the module docstring for a frame of (pd, total, grade, pd_12m_observable, defaulted_12m)."""
    y = frame["defaulted_12m"].astype(int).to_numpy()
    model, score, ceiling = frame["pd"].to_numpy(), -frame["total"].to_numpy(), frame["pd_12m_observable"].to_numpy()
    auc = {name: round(float(roc_auc_score(y, r)), 4) for name, r in
           (("model_pd", model), ("score_4_19_1", score), ("ceiling_pd_12m_observable", ceiling))}
    by_truth = frame.assign(decile=pd.qcut(frame["pd_12m_observable"].rank(method="first"), 10, labels=False) + 1)
    truth_table = [{"decile": int(d), "firms": len(g), "observable_pd": round(float(g["pd_12m_observable"].mean()), 4),
                    "model_pd": round(float(g["pd"].mean()), 4), "realised": round(float(g["defaulted_12m"].mean()), 4)}
                   for d, g in by_truth.groupby("decile")]
    table, ece = reliability(y, model)
    for row in table:
        row["relative_gap"] = round(abs(row["mean_pd"] - row["observed"]) / row["observed"], 3) if row["observed"] else None
    grades = [{"grade": g, "firms": len(x), "mean_pd": round(float(x["pd"].mean()), 4),
               "realised": round(float(x["defaulted_12m"].mean()), 4), "mean_total": round(float(x["total"].mean()), 1)}
              for g, x in frame.groupby("grade")]
    grades.sort(key=lambda r: -r["mean_total"])
    return {
        "firms": len(frame), "defaults": int(y.sum()), "realised_rate": round(float(y.mean()), 4),
        "mean_pd": round(float(model.mean()), 4), "auc": auc,
        "model_minus_score": auc_difference(y, model, score, seed),
        "ceiling_minus_model": auc_difference(y, ceiling, model, seed),
        "ece": ece, "max_decile_relative_gap": max(r["relative_gap"] for r in table if r["relative_gap"] is not None),
        "by_predicted_decile": table, "by_observable_decile": truth_table, "by_grade": grades,
    }


def train_and_score(db: Path, landing: Path, as_of: date) -> dict:
    from models.nightly import load_reason_codes, pinned_model, score_pd
    from models.train import retrain
    from scoring.catalogue import load_catalogue

    registry = Path(db).parent / "models_population"
    shutil.rmtree(registry, ignore_errors=True)
    con = connect(db)
    try:
        cat = load_catalogue()
        started = time.perf_counter()
        report = retrain(con, cat, registry, as_of, Path(landing) / "_truth" / "loans.parquet")
        trained = round(time.perf_counter() - started, 1)
        if report["decision"]["promoted"]:
            score_pd(con, as_of, cat, pinned_model(registry), load_reason_codes())
    finally:
        con.close()
    strip = lambda m: {k: v for k, v in m.items() if k != "reliability"}  # noqa: E731
    return {"training_seconds": trained, "version": report["version"], "decision": report["decision"],
            "train": report["train"], "gbm_trees": report["gbm_trees"], "out_of_time": {k: strip(v) for k, v in report["out_of_time"].items()},
            **{k: report[k] for k in ("population", "gap_to_ceiling", "refinement") if k in report}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True)
    p.add_argument("--landing", required=True, help="the simulated landing zone, with its _truth/outcomes/")
    p.add_argument("--date", default="2026-11-29")
    p.add_argument("--train", action="store_true", help="train and score with this code first")
    p.add_argument("--firms", type=int, default=0, help="for the result's name (default: the firms scored)")
    p.add_argument("--label", default="", help="suffix of the result's name, e.g. before")
    p.add_argument("--note", default="", help="where the stored PDs came from, when not from --train")
    args = p.parse_args()
    as_of = date.fromisoformat(args.date)
    result: dict = {"command": "python -m benchmarks.population " + " ".join(
        f"--{k} {v}" for k, v in (("db", args.db), ("landing", args.landing), ("date", args.date)))
        + (" --train" if args.train else ""),
        "commit": code_version(), "as_of": args.date,
        **({"note": args.note} if args.note else {})}
    if args.train:
        result["training"] = train_and_score(Path(args.db), Path(args.landing), as_of)
        print("trained", json.dumps(result["training"]["decision"], ensure_ascii=False), flush=True)
    frame = scored_population(Path(args.db), as_of)
    if frame.empty:
        raise SystemExit(f"{args.db}: no PDs for {as_of} (no champion): nothing to measure")
    truth = truth_for(Path(args.landing), as_of)
    joined = frame.merge(truth[["uscc", "pd_12m_observable", "pd_12m_true", "defaulted_12m"]], on="uscc", how="inner")
    result["scored_firms"], result["with_truth"] = len(frame), len(joined)
    result["population"] = measure(joined)
    firms = args.firms or len(frame)
    write_result(f"population_{firms}_firms{'_' + args.label if args.label else ''}.json", result,
                 leave_out=("by_predicted_decile",))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()

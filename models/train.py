"""Training data from the loan book and out-of-time validation of the PD models."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss, roc_auc_score

from models.estimators import MonotoneGBM, WoEScorecard
from models.features import FEATURES, features_sql
from models.monitoring import reference
from models.registry import champion, load_model, record_decision, save_model
from valuecredit.scoring.calibrate import discrimination, loan_targets, outcome_sample
from valuecredit.scoring.catalogue import Catalogue


def training_sample(con: duckdb.DuckDBPyConnection, cat: Catalogue) -> pd.DataFrame:
    """Every loan with a closed 12-month window: its features as of disbursement and its outcome."""
    loans = outcome_sample(con)
    with loan_targets(con, loans):
        feats = con.execute(f"SELECT * FROM ({features_sql('_targets', cat.negative_rules)}) ORDER BY uscc, as_of").df()
    loans["as_of"] = pd.to_datetime(loans["disbursed_on"]).astype("datetime64[us]")
    feats["as_of"] = pd.to_datetime(feats["as_of"]).astype("datetime64[us]")
    return loans.merge(feats, on=["uscc", "as_of"], how="left", validate="many_to_one")


def out_of_time_split(sample: pd.DataFrame, share: float = 0.3) -> tuple[pd.DataFrame, pd.DataFrame]:
    cutoff = sample["disbursed_on"].sort_values().iloc[int(len(sample) * (1 - share))]
    return sample[sample["disbursed_on"] < cutoff], sample[sample["disbursed_on"] >= cutoff]


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> tuple[list[dict], float]:
    """Equal-count bins of predicted PD: mean prediction against observed rate, and the expected
    calibration error (their gap weighted by bin size)."""
    order = np.argsort(p, kind="stable")
    table, ece = [], 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk) == 0:
            continue
        pred, obs = float(p[chunk].mean()), float(y[chunk].mean())
        table.append({"n": int(len(chunk)), "mean_pd": round(pred, 5), "observed": round(obs, 5)})
        ece += len(chunk) / len(p) * abs(pred - obs)
    return table, round(ece, 5)


def validate(y: np.ndarray, p: np.ndarray) -> dict:
    table, ece = reliability(y, p)
    m = discrimination(y, p)
    return {"auc": m.auc, "ks": m.ks, "gini": m.gini, "brier": round(float(brier_score_loss(y, p)), 5),
            "ece": ece, "reliability": table, "loans": m.loans, "defaults": m.defaults}


def auc_gap(y: np.ndarray, reference: np.ndarray, model: np.ndarray, seed: int = 0, resamples: int = 200) -> dict:
    """How far the model's AUC falls short of a reference score's on the same loans, with a 90 %
    interval from a paired bootstrap (the same resampled loans for both): with a few thousand
    defaults the gap is known only to a few thousandths."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            gaps.append(roc_auc_score(y[rows], reference[rows]) - roc_auc_score(y[rows], model[rows]))
    lo, hi = np.quantile(gaps, [0.05, 0.95])
    return {"auc_gap": round(float(roc_auc_score(y, reference) - roc_auc_score(y, model)), 4),
            "interval_90": [round(float(lo), 4), round(float(hi), 4)], "resamples": resamples, "seed": seed}


def fit_champion_and_challenger(train: pd.DataFrame, seed: int = 0,
                                gbm_params: dict | None = None) -> tuple[MonotoneGBM, WoEScorecard]:
    X, y = train[list(FEATURES)], train["defaulted"].astype(int).to_numpy()
    gbm = MonotoneGBM(monotone=FEATURES, random_state=seed, **(gbm_params or {})).fit(X, y)
    card = WoEScorecard().fit(X, y)
    return gbm, card


MAX_ECE = 0.01  # a candidate calibrated worse than this is never promoted
MIN_LOANS, MIN_DEFAULTS = 1000, 50  # below this the out-of-time sample cannot tell one model from another


class TrainingError(RuntimeError):
    """The loan book cannot support training: too few loans or defaults with a closed window."""


def retrain(con: duckdb.DuckDBPyConnection, cat: Catalogue, registry: Path, decided_on: date,
            truth_loans: Path | None = None, seed: int = 0, gbm_params: dict | None = None,
            sample: pd.DataFrame | None = None) -> dict:
    """Fit the champion candidate (monotone GBM) and the challenger (scorecard) on the earlier 70 % of
    loans, validate both out of time (and the simulator's ceiling where its truth is at hand),
    register the GBM with its training reference distributions, and promote it only if it beats
    the current champion on the same out-of-time loans. Returns the report; the registry keeps it.
    `sample`: the store's `training_sample`, when the caller already holds it (several seeds)."""
    sample = training_sample(con, cat) if sample is None else sample
    if len(sample) < MIN_LOANS or sample["defaulted"].sum() < MIN_DEFAULTS:
        raise TrainingError(f"{len(sample)} loans with a closed 12-month window and {int(sample['defaulted'].sum())} "
                            f"defaults: at least {MIN_LOANS:,} loans and {MIN_DEFAULTS} defaults are needed to train "
                            "a PD model")
    train, test = out_of_time_split(sample)
    gbm, card = fit_champion_and_challenger(train, seed, gbm_params)
    y = test["defaulted"].astype(int).to_numpy()
    p_gbm = gbm.predict_proba(test[list(FEATURES)])[:, 1]
    report = {
        "train": {"loans": len(train), "defaults": int(train["defaulted"].sum()),
                  "from": str(train["disbursed_on"].min().date()), "to": str(train["disbursed_on"].max().date())},
        "out_of_time": {"gbm": validate(y, p_gbm),
                        "scorecard": validate(y, card.predict_proba(test[list(FEATURES)])[:, 1])},
        "gbm_trees": gbm.booster_params_["n_estimators"],
    }
    if truth_loans is not None and Path(truth_loans).exists():
        truth = pd.read_parquet(truth_loans, columns=["loan_id", "pd_12m_observable"])
        t = test.merge(truth, on="loan_id", how="inner")
        if len(t) == len(test):
            ceiling = t["pd_12m_observable"].to_numpy()
            report["out_of_time"]["ceiling_pd_12m_observable"] = validate(y, ceiling)
            report["gap_to_ceiling"] = auc_gap(y, ceiling, p_gbm, seed)
    snapshot = hashlib.sha256(pd.util.hash_pandas_object(
        sample[["loan_id", "defaulted", *FEATURES]].astype(str), index=False).to_numpy().tobytes()).hexdigest()
    gbm_metrics = {k: v for k, v in report["out_of_time"]["gbm"].items() if k != "reliability"}
    references = {f: reference(train[f]) for f in FEATURES}
    references["pd"] = reference(pd.Series(gbm.predict_proba(train[list(FEATURES)])[:, 1]))
    report["version"] = save_model(registry, gbm, {
        "training_data": {"snapshot_sha256": snapshot, "rows": len(train), **report["train"]},
        "out_of_time_metrics": gbm_metrics, "label": "次级 or worse, 90+ dpd, or written off within 12 months",
        "reference": references})
    report["decision"] = promotion(registry, report["version"], test, report["out_of_time"]["gbm"], decided_on)
    record_decision(registry, report["decision"])
    (Path(registry) / report["version"] / "validation.json").write_text(
        json.dumps(report, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
    return report


def promotion(registry: Path, version: str, test: pd.DataFrame, candidate: dict, decided_on: date) -> dict:
    """Promote the candidate only if it beats the champion out of time: a higher AUC on the same
    loans, calibrated within MAX_ECE (or no worse than the champion)."""
    current = champion(registry)
    decision = {"version": version, "champion": current, "decided_on": decided_on.isoformat(),
                "out_of_time_loans": len(test), "candidate": {"auc": candidate["auc"], "ece": candidate["ece"]}}
    if current is None:
        return decision | {"promoted": True, "reason": "no champion yet"}
    if current == version:
        return decision | {"promoted": False, "reason": "the candidate is the champion (same data, same model)"}
    old = load_model(registry, current)
    missing = sorted(set(old.metadata["features"]) - set(test.columns))
    if missing:
        return decision | {"promoted": True, "reason": f"the champion needs features no longer computed: {missing}"}
    y = test["defaulted"].astype(int).to_numpy()
    held = validate(y, old.pd(test))
    decision["champion_metrics"] = {"auc": held["auc"], "ece": held["ece"]}
    if candidate["auc"] <= held["auc"]:
        return decision | {"promoted": False,
                           "reason": f"out-of-time AUC {candidate['auc']} does not beat the champion's {held['auc']}"}
    if candidate["ece"] > max(MAX_ECE, held["ece"]):
        return decision | {"promoted": False,
                           "reason": f"better AUC but calibration error {candidate['ece']} exceeds {MAX_ECE}"}
    return decision | {"promoted": True,
                       "reason": f"out-of-time AUC {candidate['auc']} beats the champion's {held['auc']}"}

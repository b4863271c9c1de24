"""Training data from the loan book and out-of-time validation of the PD models."""

from __future__ import annotations

import hashlib
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
from sklearn.metrics import brier_score_loss

from models.estimators import MonotoneGBM, WoEScorecard
from models.features import FEATURES, features_sql
from models.registry import save_model
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


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected`, on the expected decile edges."""
    expected, actual = np.asarray(expected, float), np.asarray(actual, float)
    expected, actual = expected[~np.isnan(expected)], actual[~np.isnan(actual)]
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1) / len(expected)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1) / len(actual)
    e, a = np.clip(e, 1e-6, None), np.clip(a, 1e-6, None)
    return round(float(np.sum((a - e) * np.log(a / e))), 5)


def validate(y: np.ndarray, p: np.ndarray) -> dict:
    table, ece = reliability(y, p)
    m = discrimination(y, p)
    return {"auc": m.auc, "ks": m.ks, "gini": m.gini, "brier": round(float(brier_score_loss(y, p)), 5),
            "ece": ece, "reliability": table, "loans": m.loans, "defaults": m.defaults}


def fit_champion_and_challenger(train: pd.DataFrame, seed: int = 0) -> tuple[MonotoneGBM, WoEScorecard]:
    X, y = train[list(FEATURES)], train["defaulted"].astype(int).to_numpy()
    gbm = MonotoneGBM(monotone=FEATURES, calibration="isotonic", random_state=seed).fit(X, y)
    card = WoEScorecard().fit(X, y)
    return gbm, card


def train_and_register(con: duckdb.DuckDBPyConnection, cat: Catalogue, registry: Path, truth_loans: Path | None = None,
                       seed: int = 0) -> dict:
    """Fit the champion (monotone GBM) and the challenger (scorecard) on the earlier 70 % of loans,
    validate both out of time (and the simulator's ceiling where its truth is at hand), and register
    the champion. Returns the validation report, which names the registered version."""
    sample = training_sample(con, cat)
    train, test = out_of_time_split(sample)
    gbm, card = fit_champion_and_challenger(train, seed)
    y = test["defaulted"].astype(int).to_numpy()
    report = {
        "train": {"loans": len(train), "defaults": int(train["defaulted"].sum()),
                  "from": str(train["disbursed_on"].min().date()), "to": str(train["disbursed_on"].max().date())},
        "out_of_time": {"gbm": validate(y, gbm.predict_proba(test[list(FEATURES)])[:, 1]),
                        "scorecard": validate(y, card.predict_proba(test[list(FEATURES)])[:, 1])},
    }
    if truth_loans is not None and Path(truth_loans).exists():
        truth = pd.read_parquet(truth_loans, columns=["loan_id", "pd_12m_observable"])
        t = test.merge(truth, on="loan_id", how="inner")
        if len(t) == len(test):
            report["out_of_time"]["ceiling_pd_12m_observable"] = validate(y, t["pd_12m_observable"].to_numpy())
    snapshot = hashlib.sha256(pd.util.hash_pandas_object(
        sample[["loan_id", "defaulted", *FEATURES]].astype(str), index=False).to_numpy().tobytes()).hexdigest()
    gbm_metrics = {k: v for k, v in report["out_of_time"]["gbm"].items() if k != "reliability"}
    report["version"] = save_model(registry, gbm, {
        "training_data": {"snapshot_sha256": snapshot, "rows": len(train), **report["train"]},
        "out_of_time_metrics": gbm_metrics, "label": "次级 or worse, 90+ dpd, or written off within 12 months"})
    return report

"""`valuecredit model evaluate`: a bank's own sample testing of both models on any labelled table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from models.estimators import MonotoneGBM, WoEScorecard

MIN_BAD = 20  # per class, over the whole table: fewer cannot support 5-fold metrics


class EvaluationInputError(ValueError):
    """The table or the arguments cannot support an evaluation; the message says which and why."""


@dataclass
class Prepared:
    X: pd.DataFrame
    y: np.ndarray
    dropped_ids: list[str]


def prepare(path: Path, target: str, bad: str | None, drop: list[str]) -> Prepared:
    path = Path(path)
    if not path.exists():
        raise EvaluationInputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise EvaluationInputError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in [target, *drop] if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"{path}: no column {', '.join(map(repr, missing))}; columns are "
                                   f"{', '.join(frame.columns[:30])}")
    labels = frame[target]
    if labels.isna().any():
        raise EvaluationInputError(f"{path}: target {target!r} is empty in {int(labels.isna().sum())} rows")
    values = sorted(labels.astype(str).unique())
    if len(values) != 2:
        raise EvaluationInputError(f"{path}: target {target!r} must have exactly two values, found {len(values)}: "
                                   f"{values[:10]}")
    if bad is None:
        bad = "1" if "1" in values else None
        if bad is None:
            raise EvaluationInputError(f"{path}: say which of {values} is the bad outcome with --bad")
    if str(bad) not in values:
        raise EvaluationInputError(f"{path}: --bad {bad!r} is not a value of {target!r} ({values})")
    y = (labels.astype(str) == str(bad)).to_numpy().astype(int)
    if min(y.sum(), len(y) - y.sum()) < MIN_BAD:
        raise EvaluationInputError(f"{path}: {int(y.sum())} bad and {int(len(y) - y.sum())} good rows; at least "
                                   f"{MIN_BAD} of each are needed")
    X = frame.drop(columns=[target, *drop])
    # identifiers carry no signal: a column unique on every row that is text or a run of integers
    ids = [c for c in X.columns if X[c].is_unique and (not pd.api.types.is_numeric_dtype(X[c])
                                                       or pd.api.types.is_integer_dtype(X[c]))]
    X = X.drop(columns=ids)
    if X.shape[1] == 0:
        raise EvaluationInputError(f"{path}: no feature columns left after dropping the target and identifiers")
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("string")
    return Prepared(X, y, ids)


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    fpr, tpr, _ = roc_curve(y, p)
    return float(roc_auc_score(y, p)), float(np.max(tpr - fpr))


def evaluate(path: Path, target: str, bad: str | None = None, drop: list[str] | None = None, folds: int = 5,
             seed: int = 42) -> dict:
    data = prepare(path, target, bad, drop or [])
    if folds < 2 or folds > min(data.y.sum(), len(data.y) - data.y.sum()):
        raise EvaluationInputError(f"--folds {folds}: need at least 2 and no more than the smaller class")
    results: dict[str, list[tuple[float, float]]] = {"gbm": [], "scorecard": []}
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y):
        Xtr, Xte, ytr, yte = data.X.iloc[train], data.X.iloc[test], data.y[train], data.y[test]
        # a fixed size for sample testing: 400 trees at rate 0.03, no inner folds (small tables)
        gbm = MonotoneGBM(n_estimators=400, min_child_samples=20, calibration=None, cv_folds=0,
                          random_state=seed).fit(Xtr, ytr)
        results["gbm"].append(_metrics(yte, gbm.predict_proba(Xte)[:, 1]))
        card = WoEScorecard().fit(Xtr, ytr)
        results["scorecard"].append(_metrics(yte, card.predict_proba(Xte)[:, 1]))
    out = {"rows": int(len(data.y)), "bad_rate": round(float(data.y.mean()), 4)}
    for name, ms in results.items():
        aucs, kss = np.array([m[0] for m in ms]), np.array([m[1] for m in ms])
        out[name] = {"auc_mean": round(float(aucs.mean()), 4), "auc_std": round(float(aucs.std()), 4),
                     "ks_mean": round(float(kss.mean()), 4), "ks_std": round(float(kss.std()), 4),
                     "auc_folds": [round(float(a), 4) for a in aucs]}
    out["folds"], out["seed"], out["dropped_identifiers"] = folds, seed, data.dropped_ids
    return out

"""`valuecredit model evaluate`: a bank's own sample testing of both models on any labelled table."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import StratifiedKFold

from models.tuning import tune_gbm, tune_scorecard

MIN_BAD = 20  # per class, over the whole table: fewer cannot support 5-fold metrics


class EvaluationInputError(ValueError):
    """The table or the arguments cannot support an evaluation; the message says which and why."""


# identifiers by name only (a table's own key, a row number pandas wrote): a column that merely has a
# distinct value on every row may be a real feature on a small table, so uniqueness alone drops nothing
IDENTIFIER_NAME = re.compile(r"(?i)^(id|uuid|guid|key|index|row_?(id|no|number)|unnamed: ?\d+)$|(^|[_ .-])(id|uuid|no)$")


@dataclass
class Prepared:
    X: pd.DataFrame
    y: np.ndarray
    dropped_ids: list[str]
    special_codes: list[float] = field(default_factory=list)
    monotone: dict[str, int] = field(default_factory=dict)


def label_key(value) -> str:
    """One spelling per label: 1, 1.0, "1", " 1 " and True are the same label; "yes" stays "yes"."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    text = str(value).strip()
    if text.lower() in ("true", "false"):
        return "1" if text.lower() == "true" else "0"
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def parse_monotone(spec: str | None, columns) -> dict[str, int]:
    """`col:+1,col:-1` (+1: a higher value never lowers the risk). A column's name may itself hold
    commas and colons, so the pieces between commas are joined until they name a column and a sign."""
    out: dict[str, int] = {}
    pending = ""
    for piece in (spec or "").split(","):
        pending = f"{pending},{piece}" if pending else piece
        name, _, sign = pending.rpartition(":")
        if sign.strip() in ("+1", "1", "-1") and name.strip() in columns:
            out[name.strip()] = -1 if sign.strip() == "-1" else 1
            pending = ""
    if pending.strip():
        raise EvaluationInputError(f"--monotone {pending.strip()!r}: expected COLUMN:+1 or COLUMN:-1 with COLUMN one "
                                   "of the table's columns")
    return out


def prepare(path: Path, target: str, bad: str | None, drop: list[str], special_codes: list[float] | None = None,
            monotone: str | None = None) -> Prepared:
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError(f"{path}: no such file")
    try:
        frame = pd.read_csv(path, low_memory=False)
    except Exception as exc:  # any reader failure is a property of the file: say so in one line
        raise EvaluationInputError(f"{path}: not a readable CSV ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    missing = [c for c in [target, *drop] if c not in frame.columns]
    if missing:
        raise EvaluationInputError(f"{path}: no column {', '.join(map(repr, missing))}; columns are "
                                   f"{', '.join(map(str, frame.columns[:30]))}")
    labels = frame[target]
    if labels.isna().any():
        raise EvaluationInputError(f"{path}: target {target!r} is empty in {int(labels.isna().sum())} rows")
    keys = labels.map(label_key)
    values = sorted(keys.unique())
    if len(values) != 2:
        raise EvaluationInputError(f"{path}: target {target!r} must have exactly two values, found {len(values)}: "
                                   f"{values[:10]}")
    if bad is None:
        if "1" not in values:
            raise EvaluationInputError(f"{path}: say which of {values} is the bad outcome with --bad")
        bad = "1"
    if label_key(bad) not in values:
        raise EvaluationInputError(f"{path}: --bad {bad!r} is not a value of {target!r} ({values})")
    y = (keys == label_key(bad)).to_numpy().astype(int)
    if min(y.sum(), len(y) - y.sum()) < MIN_BAD:
        raise EvaluationInputError(f"{path}: {int(y.sum())} bad and {int(len(y) - y.sum())} good rows; at least "
                                   f"{MIN_BAD} of each are needed")
    X = frame.drop(columns=[target, *drop])
    ids = [c for c in X.columns if IDENTIFIER_NAME.search(str(c))]
    X = X.drop(columns=ids)
    if X.shape[1] == 0:
        raise EvaluationInputError(f"{path}: no feature columns left after dropping the target and identifiers")
    X.columns = [str(c) for c in X.columns]
    for c in X.columns:
        if not pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].astype("string")
    return Prepared(X, y, ids, sorted(special_codes or []), parse_monotone(monotone, X.columns))


def without_special_codes(X: pd.DataFrame, codes: list[float]) -> pd.DataFrame:
    """The GBM reads a special code ("no record") as missing: LightGBM then learns where missing goes,
    instead of placing -9 below every real value."""
    if not codes:
        return X
    X = X.copy()
    for c in X.columns:
        if pd.api.types.is_numeric_dtype(X[c]):
            X[c] = X[c].mask(X[c].isin(codes))
    return X


def _metrics(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    fpr, tpr, _ = roc_curve(y, p)
    return float(roc_auc_score(y, p)), float(np.max(tpr - fpr))


def roc_points(y: np.ndarray, p: np.ndarray, points: int = 51) -> list[tuple[float, float]]:
    """The ROC curve at `points` evenly spaced false-positive rates (for a chart: a fold's curve has
    as many corners as it has distinct scores)."""
    fpr, tpr, _ = roc_curve(y, p)
    grid = np.linspace(0, 1, points)
    return [(round(float(f), 4), round(float(t), 4)) for f, t in zip(grid, np.interp(grid, fpr, tpr))]


MODELS = ("gbm", "scorecard", "blend")
BUDGET_SECONDS = 100.0  # the GBM searches of all folds together; each fold gets its share


def blend(p_gbm: np.ndarray, p_card: np.ndarray) -> np.ndarray:
    """The two models' PDs averaged on the log-odds scale, with equal weights. Trees and a WoE
    scorecard err in different places (the scorecard is smooth where a tree steps, the tree sees
    interactions the card cannot), so the mean ranks better than either wherever they are close. The
    weight is fixed, chosen on no row: searched on an inner fold of a few hundred rows it would be
    chosen by noise, as the GBM's settings are there. A bank can implement it from the two models."""
    return expit((logit(np.clip(p_gbm, 1e-12, 1 - 1e-12)) + logit(np.clip(p_card, 1e-12, 1 - 1e-12))) / 2)


@dataclass
class Evaluation:
    """Everything the cross-validation produced: the JSON summary and, for the report, each row's
    out-of-fold PD by model and each fold's ROC curve."""

    summary: dict
    out_of_fold: dict[str, np.ndarray]
    roc: dict[str, list[list[tuple[float, float]]]]


def fit_models(data: Prepared, rows: np.ndarray, seed: int, budget_seconds: float | None):
    """The shared procedure (`models.tuning`) on the given rows: a tuned monotone GBM (special codes
    read as missing) and a tuned WoE scorecard."""
    X_gbm = without_special_codes(data.X.iloc[rows], data.special_codes)
    gbm, gbm_choice = tune_gbm(X_gbm, data.y[rows], data.monotone or None, seed, budget_seconds=budget_seconds)
    card, card_choice = tune_scorecard(data.X.iloc[rows], data.y[rows], data.special_codes or None,
                                       data.monotone or None, seed)
    return gbm, gbm_choice, card, card_choice


def cross_validate(data: Prepared, folds: int = 5, seed: int = 42, budget_seconds: float = BUDGET_SECONDS) -> Evaluation:
    if folds < 2 or folds > min(data.y.sum(), len(data.y) - data.y.sum()):
        raise EvaluationInputError(f"--folds {folds}: need at least 2 and no more than the smaller class")
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in MODELS}
    oof = {name: np.zeros(len(data.y)) for name in MODELS}
    roc: dict[str, list] = {name: [] for name in MODELS}
    fit_warnings: set[str] = set()
    per_fold = []
    X_gbm = without_special_codes(data.X, data.special_codes)
    for i, (train, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y)):
        gbm, gbm_choice, card, card_choice = fit_models(data, train, seed, budget_seconds / folds)
        fit_warnings.update(card.fit_warnings_)
        yte = data.y[test]
        oof["gbm"][test] = gbm.predict_proba(X_gbm.iloc[test])[:, 1]
        oof["scorecard"][test] = card.predict_proba(data.X.iloc[test])[:, 1]
        oof["blend"][test] = blend(oof["gbm"][test], oof["scorecard"][test])
        fold = {"fold": i + 1, "rows": int(len(test)), "bad": int(yte.sum())}
        for name, choice in (("gbm", gbm_choice.summary()), ("scorecard", card_choice.summary()), ("blend", {})):
            auc, ks = _metrics(yte, oof[name][test])
            results[name].append((auc, ks))
            roc[name].append(roc_points(yte, oof[name][test]))
            fold[name] = {"auc": round(auc, 4), "ks": round(ks, 4), **choice}
        per_fold.append(fold)
    out = {"rows": int(len(data.y)), "bad_rate": round(float(data.y.mean()), 4)}
    for name, ms in results.items():
        aucs, kss = np.array([m[0] for m in ms]), np.array([m[1] for m in ms])
        out[name] = {"auc_mean": round(float(aucs.mean()), 4), "auc_std": round(float(aucs.std()), 4),
                     "ks_mean": round(float(kss.mean()), 4), "ks_std": round(float(kss.std()), 4),
                     "auc_folds": [round(float(a), 4) for a in aucs]}
    out["better"] = max(MODELS, key=lambda name: out[name]["auc_mean"])
    out["folds"], out["seed"], out["dropped_identifiers"] = folds, seed, data.dropped_ids
    out["special_codes"], out["monotone"], out["warnings"] = data.special_codes, data.monotone, sorted(fit_warnings)
    out["per_fold"], out["budget_seconds"] = per_fold, budget_seconds
    return Evaluation(out, oof, roc)


def evaluate(path: Path, target: str, bad: str | None = None, drop: list[str] | None = None, folds: int = 5,
             seed: int = 42, special_codes: list[float] | None = None, monotone: str | None = None,
             budget_seconds: float = BUDGET_SECONDS) -> dict:
    data = prepare(path, target, bad, drop or [], special_codes, monotone)
    return cross_validate(data, folds, seed, budget_seconds).summary

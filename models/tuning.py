"""One modelling procedure for `model train` and `model evaluate`: each model's settings are chosen
on the rows it is given, by an inner validation of those rows alone, so that a caller's own test
rows (an outer fold, the out-of-time loans) never take part in any choice.

- The GBM: its size by early stopping on the inner folds (`MonotoneGBM.cross_fit`), and a small
  search over its main settings (leaves, minimum child size, L2 regularisation, learning rate):
  the candidates in a fixed order (a middle setting first, then a seeded sample of the grid, one
  step larger from LARGE rows), each judged by the AUC of its out-of-fold log-odds, until
  `max_candidates` or the time budget is spent (the first runs in full; a later one stops growing
  trees when the budget is spent).
- The scorecard: its binning (minimum bin size) and the regularisation of its logistic regression
  (C), judged on an inner hold-out: each binning is fitted once on the inner training rows and every
  C is tried on its weights of evidence.
"""

from __future__ import annotations

import itertools
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from models.estimators import MonotoneGBM, WoEScorecard

GBM_GRID = {"num_leaves": (3, 7, 15), "min_child_samples": (10, 20, 50, 100),
            "reg_lambda": (0.0, 1.0, 10.0), "learning_rate": (0.02, 0.05)}
GBM_FIRST = {"num_leaves": 7, "min_child_samples": 50, "reg_lambda": 1.0, "learning_rate": 0.05}
# From LARGE rows the inner folds are two, each fitted on half the rows, and a search there prefers
# trees sized for half the data. The grid for a large table is one step larger (leaves and minimum
# leaf size), so the search chooses among sizes the whole table supports. On Taiwan default (24,000
# rows a fold, 5 outer folds, seeds 42, 7, 1) the mean AUC rose by 0.0009-0.0011 (docs/DESIGN.md).
GBM_GRID_LARGE = {**GBM_GRID, "num_leaves": (7, 15, 31), "min_child_samples": (20, 50, 100, 200)}
GBM_FIRST_LARGE = {**GBM_FIRST, "num_leaves": 15}
CARD_MIN_BIN_SIZES = (0.05, 0.02)
CARD_CS = (0.01, 0.03, 0.1, 0.3, 1.0)
LARGE = 10_000  # rows from which two inner folds are enough (and half the cost of three)


@dataclass
class Choice:
    """What an inner validation chose, and what it compared (for the report)."""

    params: dict
    inner_auc: float
    tried: list[dict] = field(default_factory=list)  # each candidate's settings and inner AUC, in order
    seconds: float = 0.0
    budget_reached: bool = False

    def summary(self) -> dict:
        return {"params": self.params, "inner_auc": self.inner_auc, "candidates_tried": len(self.tried),
                "budget_reached": self.budget_reached, "seconds": round(self.seconds, 1)}


def gbm_candidates(seed: int, count: int, rows: int = 0) -> list[dict]:
    """The defaults first, then `count - 1` settings drawn without replacement from the grid (seeded);
    the larger grid from LARGE rows."""
    values, first = (GBM_GRID_LARGE, GBM_FIRST_LARGE) if rows >= LARGE else (GBM_GRID, GBM_FIRST)
    grid = [dict(zip(values, combination)) for combination in itertools.product(*values.values())]
    grid = [g for g in grid if g != first]
    order = np.random.default_rng(seed).permutation(len(grid))[:max(count - 1, 0)]
    return [dict(first), *(grid[i] for i in order)]


def inner_folds(rows: int) -> int:
    return 3 if rows < LARGE else 2


def tune_gbm(X: pd.DataFrame, y, monotone: dict[str, int] | None = None, seed: int = 0, max_candidates: int = 12,
             budget_seconds: float | None = None, calibration: str | None = "sigmoid",
             fixed: dict | None = None, groups: np.ndarray | None = None,
             table_rows: int | None = None) -> tuple[MonotoneGBM, Choice]:
    """A monotone GBM whose settings and size were chosen on inner folds of (X, y) alone, fitted on all
    of them; its calibrator is fitted on the chosen candidate's out-of-fold log-odds. `fixed`:
    settings that are not searched (the search then runs over the others). `budget_seconds`: no new
    candidate is started once it is spent and a running one stops growing trees (the first always runs
    in full); None keeps the choice
    independent of the machine's speed. `groups`: rows held out together in the inner folds (a
    firm's loans: `MonotoneGBM._folds`). `table_rows`: the rows that decide the grid and the inner
    folds (default: these rows); a cross-validation passes its whole table's, so that every outer
    fold and the model fitted on all rows follow one procedure."""
    y = np.asarray(y).astype(int)
    started = time.perf_counter()
    size = table_rows or len(y)
    folds = inner_folds(size)
    # one thread on a small table: two threads on a few hundred rows spend more time waiting for each
    # other than working, the more so on a machine shared with other work
    base = dict(monotone=monotone or None, random_state=seed, calibration=calibration, cv_folds=folds,
                early_stopping_rounds=100, stopping_metric="auc", n_jobs=1 if len(y) < LARGE else 2)
    seen, tried, best, stopped = [], [], None, False
    for candidate in gbm_candidates(seed, max_candidates, size):
        candidate = {**candidate, **(fixed or {})}
        if candidate in seen:
            continue
        if budget_seconds is not None and tried and time.perf_counter() - started > budget_seconds:
            stopped = True
            break
        seen.append(candidate)
        estimator = MonotoneGBM(**{**base, **candidate})
        # the first candidate runs in full; a later one stops growing trees when the budget is spent
        # (a cut candidate is judged as it stands and says so)
        deadline = started + budget_seconds if budget_seconds is not None and tried else None
        cross = estimator.cross_fit(X, y, deadline, groups)
        auc = round(float(roc_auc_score(y, cross[0])), 5)
        cut = deadline is not None and time.perf_counter() > deadline
        stopped = stopped or cut
        tried.append({**candidate, "trees": int(np.median(cross[1])), "inner_auc": auc, "cut_by_budget": cut})
        if best is None or auc > best[0]:
            best = (auc, estimator, cross, candidate)
    auc, estimator, cross, candidate = best
    estimator.fit(X, y, cross_fitted=cross)
    params = {**candidate, "n_estimators": estimator.booster_params_["n_estimators"], "inner_folds": folds}
    choice = Choice(params, auc, tried, time.perf_counter() - started, stopped)
    return estimator, choice


def tune_scorecard(X: pd.DataFrame, y, special_codes: list[float] | None = None, monotone: dict[str, int] | None = None,
                   seed: int = 0) -> tuple[WoEScorecard, Choice]:
    """A WoE scorecard whose minimum bin size and C were chosen on an inner hold-out of (X, y) (a
    quarter of the rows, stratified), then fitted on all of them."""
    y = np.asarray(y).astype(int)
    started = time.perf_counter()
    X_fit, X_held, y_fit, y_held = train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)
    tried, best = [], None
    for size in CARD_MIN_BIN_SIZES:
        card = WoEScorecard(min_bin_size=size, special_codes=special_codes, monotone=monotone)
        binning = card.binning_process(X_fit)
        # the columns binned: a column empty (or all special codes) in the inner training rows is left out
        used = list(binning.variable_names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            binning.fit(card.prepared(X_fit[used]), y_fit)
            W_fit, W_held = binning.transform(card.prepared(X_fit[used])), binning.transform(card.prepared(X_held[used]))
        for C in CARD_CS:
            lr = LogisticRegression(C=C, max_iter=1000).fit(W_fit, y_fit)
            auc = round(float(roc_auc_score(y_held, lr.decision_function(W_held))), 5)
            tried.append({"min_bin_size": size, "C": C, "inner_auc": auc})
            if best is None or auc > best[0]:
                best = (auc, {"min_bin_size": size, "C": C})
    auc, params = best
    card = WoEScorecard(**params, special_codes=special_codes, monotone=monotone).fit(X, y)
    return card, Choice(params, auc, tried, time.perf_counter() - started)

"""The AUC of two scores on the same outcomes compared, with a paired-bootstrap interval: what the
promotion rule, the refinement on the loans and the benchmarks judge a difference by."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score


class _RankedScores:
    """Scores sorted once, for the AUC of any resample of their rows: each row counted as often as it
    was drawn (the Mann-Whitney statistic, ties counting one half, as `roc_auc_score` gives; a
    resample costs two weighted sums instead of a sort of its own)."""

    def __init__(self, y: np.ndarray, score: np.ndarray):
        score = np.asarray(score, dtype=float)
        order = np.argsort(score, kind="stable")
        ordered = score[order]
        self.order, self.bad = order, y[order] == 1
        self.tie_group = np.concatenate([[0], np.cumsum(ordered[1:] != ordered[:-1])])  # equal scores, one group

    def auc(self, times: np.ndarray) -> float:
        w = times[self.order].astype(float)
        groups = self.tie_group[-1] + 1
        bad = np.bincount(self.tie_group, weights=np.where(self.bad, w, 0.0), minlength=groups)
        good = np.bincount(self.tie_group, weights=np.where(self.bad, 0.0, w), minlength=groups)
        good_below = np.cumsum(good) - good  # the good rows scored strictly lower than each group
        return float(np.sum(bad * (good_below + good / 2)) / (bad.sum() * good.sum()))


def auc_difference(y: np.ndarray, first: np.ndarray, second: np.ndarray, seed: int = 0, resamples: int = 200,
                   level: float = 0.90) -> dict:
    """AUC of `first` less AUC of `second` on the same outcomes, with an interval from a paired
    bootstrap (the same resampled rows for both): with a few thousand events the difference is
    known only to a few thousandths."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y).astype(int)
    diffs = []
    first_auc, second_auc = _RankedScores(y, first), _RankedScores(y, second)
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        if 0 < y[rows].sum() < len(rows):
            times = np.bincount(rows, minlength=len(y))
            diffs.append(first_auc.auc(times) - second_auc.auc(times))
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"difference": round(float(roc_auc_score(y, first) - roc_auc_score(y, second)), 4),
            f"interval_{round(level * 100)}": [round(float(lo), 4), round(float(hi), 4)],
            "resamples": resamples, "seed": seed}

"""Population stability: how far today's population has moved from the one a model was chosen on.

When a model is trained, every firm's inputs as of the decision date (and their PDs) are summarised
as reference distributions, kept in the model's metadata (`models.train.population_reference`):
decile bins for a number, shares for a category, and the share missing as a bin of its own (a department that stops
delivering shows up here first). Each night the population index (PSI) compares today's firms
against it: below 0.10 stable, 0.10 to 0.25 worth watching, 0.25 or more a shift that calls for a
look at the model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WATCH, SHIFT = 0.10, 0.25
_FLOOR = 1e-4  # an empty bin counts as this share, so one empty bin cannot make the index infinite


def status(psi: float) -> str:
    return "shift" if psi >= SHIFT else "watch" if psi >= WATCH else "stable"


def reference(values: pd.Series, bins: int = 10) -> dict:
    """A feature's reference distribution: bin edges (or categories) and shares, the last for missing."""
    values = pd.Series(values)
    missing = values.isna()
    if not pd.api.types.is_numeric_dtype(values):
        present = values[~missing].astype(str)
        categories = sorted(present.unique())
        counts = [int((present == c).sum()) for c in categories] + [0]  # the last but one: a category unseen at training
        return {"kind": "categorical", "categories": categories,
                "shares": _shares([*counts, int(missing.sum())])}
    present = values[~missing].to_numpy(float)
    edges = np.unique(np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1])).tolist() if len(present) else []
    counts = np.bincount(np.searchsorted(edges, present, side="right"), minlength=len(edges) + 1).tolist()
    return {"kind": "numeric", "edges": edges, "shares": _shares([*counts, int(missing.sum())])}


def _shares(counts: list[int]) -> list[float]:
    total = sum(counts)
    return [round(c / total, 8) if total else 0.0 for c in counts]


def distribution(ref: dict, values: pd.Series) -> np.ndarray:
    """Shares of `values` in the reference's bins."""
    values = pd.Series(values)
    missing = values.isna().to_numpy()
    if ref["kind"] == "categorical":
        index = {c: i for i, c in enumerate(ref["categories"])}
        bins = values[~missing].astype(str).map(lambda c: index.get(c, len(index))).to_numpy(int)
        counts = np.bincount(bins, minlength=len(index) + 1)
    else:
        counts = np.bincount(np.searchsorted(ref["edges"], values[~missing].to_numpy(float), side="right"),
                             minlength=len(ref["edges"]) + 1)
    counts = np.append(counts, missing.sum())
    return counts / max(len(values), 1)


def psi(ref: dict, values: pd.Series) -> float:
    """Population stability index of `values` against a reference distribution."""
    expected = np.clip(np.asarray(ref["shares"], float), _FLOOR, None)
    actual = np.clip(distribution(ref, values), _FLOOR, None)
    return round(float(np.sum((actual - expected) * np.log(actual / expected))), 5)

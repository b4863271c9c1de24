"""The PD model layer's two estimators, both following scikit-learn's estimator contract.

- `MonotoneGBM`: LightGBM with monotone constraints by feature (a business direction: more patents
  never raises the PD), its size and its calibration (Platt) chosen on out-of-fold scores.
- `WoEScorecard`: optimal binning with weight of evidence (optbinning) and a logistic regression,
  with points scaled by PDO, the scorecard risk officers know.

Both take a pandas DataFrame; text columns are categoricals.
"""

from __future__ import annotations

import re
import time
import warnings

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from models.metrics import auc_difference

CATEGORY_ROWS = 100  # rows from which a category's bad rate is its own in the scorecard, however large the table
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# a refinement boosted on a few hundred thousand loans from a population model (`MonotoneGBM.refine_on`)
REFINEMENT = {"learning_rate": 0.05, "num_leaves": 7, "min_child_samples": 200, "reg_lambda": 10.0}
REFINEMENT_ROUNDS, REFINEMENT_PATIENCE = 1000, 50
REFINEMENT_LEVEL = 0.90  # the paired-bootstrap interval of its out-of-fold gain that must lie above zero
INTERVAL = f"interval_{round(REFINEMENT_LEVEL * 100)}"  # its key in the report ("interval_90", as the readers spell it)


def scaled_sum(scaled_boosters, X, **predict) -> np.ndarray:
    """The sum over (scale, booster) of scale × booster.predict(X, **predict): a PD's raw score or
    SHAP contributions over a model and its refinement. The first term stands as it is (0 + -0.0
    would lose the sign a stored contribution is compared by)."""
    terms = [scale * booster.predict(X, **predict) for scale, booster in scaled_boosters]
    return sum(terms[1:], terms[0])


def lightgbm_names(columns) -> list[str]:
    """The name LightGBM knows each column by: its own where it is a plain identifier, else its
    position. LightGBM refuses JSON characters in names and rewrites spaces (which can make two
    names one), while real extracts name columns `[(cash + ...) / ...] * 365` or in Chinese."""
    own = [str(c) for c in columns]
    taken = {n for n in own if _PLAIN_NAME.fullmatch(n)}
    out = []
    for i, name in enumerate(own):
        if not _PLAIN_NAME.fullmatch(name):
            name = f"column_{i}"
            while name in taken:
                name += "_"
            taken.add(name)
        out.append(name)
    return out


def _stop_at(deadline: float):
    """A LightGBM callback that ends training at the iteration during which `deadline` passed."""
    def callback(env) -> None:
        if time.perf_counter() > deadline:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list)
    callback.order = 40  # after early stopping's own check
    return callback


def _input_frame(X, estimator: str) -> pd.DataFrame:
    """The rows as a DataFrame, refused with scikit-learn's messages when they cannot be: sparse,
    complex, not two-dimensional, or without a row or a column."""
    if sparse.issparse(X):
        raise TypeError(f"{estimator} takes dense data: sparse input is not supported (convert it with .toarray())")
    if not isinstance(X, pd.DataFrame):
        array = np.asarray(X)
        if array.ndim != 2:
            raise ValueError(f"Expected 2D array, got {array.ndim}D array instead. Reshape your data with "
                             "array.reshape(-1, 1) for a single feature or array.reshape(1, -1) for a single sample.")
        X = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])  # named as the scorecard needs
    elif not all(isinstance(c, str) for c in X.columns):
        X = X.rename(columns=str)  # optbinning names each variable by its column: text
    if any(pd.api.types.is_complex_dtype(t) for t in X.dtypes):
        raise ValueError("Complex data not supported")
    for n, what in ((X.shape[0], "sample"), (X.shape[1], "feature")):
        if n == 0:
            raise ValueError(f"0 {what}(s) (shape={X.shape}) while a minimum of 1 is required.")
    return X


def _binary_target(y, rows: int, estimator: str) -> tuple[np.ndarray, np.ndarray]:
    """(classes, y as 0/1 with the second class as 1): both estimators model a default, two outcomes."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = column_or_1d(y, warn=True)
    if len(y) != rows:
        raise ValueError(f"Found input variables with inconsistent numbers of samples: {rows} rows, {len(y)} targets")
    check_classification_targets(y)
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(f"Only binary classification is supported. {estimator} models a default: the target has "
                         f"{len(classes)} classes, it needs two")
    return classes, (y == classes[1]).astype(int)


class _BinaryClassifier(ClassifierMixin, BaseEstimator):
    """What the two estimators share of scikit-learn's contract: two classes, missing values allowed
    (LightGBM splits on them, the scorecard bins them), `predict` after `fit` only."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True  # text columns are categories
        tags.input_tags.categorical = True
        tags.classifier_tags.multi_class = False
        return tags

    def predict(self, X) -> np.ndarray:
        positive = self.predict_proba(X)[:, 1] >= 0.5
        return self.classes_[positive.astype(int)]

    def _checked(self, X) -> pd.DataFrame:
        """Rows to predict: a frame with the training columns (an array: as many columns, in order)."""
        named = isinstance(X, pd.DataFrame)
        X = _input_frame(X, type(self).__name__)
        if X.shape[1] != self.n_features_in_ and not (named and set(self.feature_names_in_) <= set(X.columns)):
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                             f"{self.n_features_in_} features as input")
        return X


def _categorical(X: pd.DataFrame) -> list[str]:
    return [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]


GBM_CATEGORY_SHARE = 0.02  # as the scorecard's smaller bin (models.tuning.CARD_MIN_BIN_SIZES)


def _common_categories(column: pd.Series) -> list[str]:
    """The categories a GBM splits on: those of at least CATEGORY_ROWS rows, or on a small table of
    GBM_CATEGORY_SHARE of them, counted in whole rows (a share times the rows, as the scorecard's
    `category_cutoff` gives it, can land a hair above a whole number). Rarer ones read as missing, as
    a category never seen in training does: the trees otherwise gather noise categories of a few
    dozen rows into their splits (a text column of 200 random values took 0.08 AUC from a 15,000-row
    table)."""
    text = column.dropna().astype(str)
    counts = text.value_counts()
    return sorted(counts.index[counts >= min(CATEGORY_ROWS, max(np.ceil(GBM_CATEGORY_SHARE * len(text)), 1))])


def _known_categories(column: pd.Series, categories: list[str]) -> pd.Categorical:
    """The column as the training categories; a category never seen in training, or too rare in it
    to split on (`_common_categories`), counts as missing."""
    text = column.astype("string")
    return pd.Categorical(text.where(text.isin(categories)), categories=categories)


def log_odds_shift(z: np.ndarray, y) -> float:
    """The constant that, added to the log-odds `z`, fits the outcomes `y` best (maximum likelihood):
    the base rate of `y` with the ranking and slope of `z` kept."""
    y = np.asarray(y).astype(float)
    return float(minimize_scalar(lambda c: float(np.sum(np.logaddexp(0, z + c) - y * (z + c))),
                                 bounds=(-10, 10), method="bounded").x)


class MonotoneGBM(_BinaryClassifier):
    """LightGBM under monotone constraints, its size and its calibration chosen by cross-fitting:
    `cv_folds` boosters, each stopped early on its held-out fold, give the number of trees (their
    median) and out-of-fold scores for the calibrator; the final booster is fitted on all rows.
    `stopping_metric` (e.g. "auc"): what early stopping watches, LightGBM's log loss when None.
    Platt scaling ("sigmoid") keeps the order of the scores, so calibration costs no AUC and the PD's
    log-odds stay a linear function of the SHAP contributions."""

    def __init__(self, n_estimators: int = 2000, learning_rate: float = 0.03, num_leaves: int = 7,
                 min_child_samples: int = 50, subsample: float = 0.8, colsample_bytree: float = 0.6,
                 reg_lambda: float = 1.0, monotone: dict[str, int] | None = None, calibration: str | None = "sigmoid",
                 cv_folds: int = 4, early_stopping_rounds: int = 100, random_state: int = 0, n_jobs: int = 2,
                 stopping_metric: str | None = None):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.reg_lambda = reg_lambda
        self.monotone = monotone
        self.calibration = calibration
        self.cv_folds = cv_folds
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.stopping_metric = stopping_metric

    def _frame(self, X: pd.DataFrame) -> pd.DataFrame:
        """The columns in training order, categoricals as in training, under LightGBM's names."""
        X = X[self.feature_names_in_].copy()
        for c in self.categorical_:
            X[c] = _known_categories(X[c], self.categories_[c])
        X.columns = lightgbm_names(self.feature_names_in_)
        return X

    def _fit_setup(self, X: pd.DataFrame, y) -> tuple[pd.DataFrame, np.ndarray, dict, list[str] | str]:
        """The training frame under LightGBM's names, the labels, the booster's parameters and its categoricals."""
        X = _input_frame(X, type(self).__name__)
        self.classes_, y = _binary_target(y, len(X), type(self).__name__)
        if self.calibration not in ("sigmoid", "isotonic", None):
            raise ValueError(f"calibration must be 'sigmoid', 'isotonic' or None, got {self.calibration!r}")
        if self.calibration and self.cv_folds < 2:
            raise ValueError("calibration needs out-of-fold scores: set cv_folds to 2 or more")
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        self.categorical_ = _categorical(X)
        self.categories_ = {c: _common_categories(X[c]) for c in self.categorical_}
        self.n_features_in_ = X.shape[1]
        constraints = [int((self.monotone or {}).get(c, 0)) for c in X.columns]
        if text := [c for c in self.categorical_ if (self.monotone or {}).get(c, 0)]:
            # LightGBM aborts the whole process on it (a C++ fatal error, no exception to catch)
            raise ValueError(f"monotone constraint on categorical column(s) {', '.join(map(repr, text))}: "
                             "categories have no direction")
        X = self._frame(X)
        params = dict(
            objective="binary", n_estimators=self.n_estimators, learning_rate=self.learning_rate,
            num_leaves=self.num_leaves, min_child_samples=self.min_child_samples, subsample=self.subsample,
            subsample_freq=1, colsample_bytree=self.colsample_bytree, reg_lambda=self.reg_lambda,
            monotone_constraints=constraints, monotone_constraints_method="advanced",
            random_state=self.random_state, n_jobs=self.n_jobs, verbose=-1, deterministic=True, force_row_wise=True,
            **({"metric": self.stopping_metric} if self.stopping_metric else {}))
        categorical = [name for c, name in zip(self.feature_names_in_, X.columns) if c in self.categorical_] or "auto"
        return X, y, params, categorical

    def cross_fit(self, X: pd.DataFrame, y, deadline: float | None = None,
                  groups: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        """Out-of-fold log-odds and the early-stopped size of each of the `cv_folds` boosters: what
        `fit` chooses the size and the calibrator from, and what a search over settings compares.
        `deadline` (a `time.perf_counter()` value): each booster stops growing when it has passed.
        `groups`: rows of one group (a firm's months) are held out together (see `_folds`)."""
        X, y, params, categorical = self._fit_setup(X, y)
        return self._cross_fit(X, y, params, categorical, deadline, groups)

    def _folds(self, X: pd.DataFrame, y: np.ndarray, groups: np.ndarray | None):
        """Stratified folds; with `groups`, every row of a group on one side. A firm observed in many
        months, with outcomes that overlap, must be out of fold as a whole: held out month by month
        beside its own other months, early stopping and the calibrator reward the booster for
        memorising the firm (at 200,000 firms: 365 trees instead of 61, and a PD that told the safest
        tenth half its realised rate; docs/DESIGN.md, "The population PD"). Not shuffled: the folds
        depend on the groups alone (sorted), not on `random_state`."""
        if groups is None:
            return StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.random_state).split(X, y)
        groups = pd.Series(np.asarray(groups, dtype=object))
        if len(groups) != len(y):
            raise ValueError(f"groups holds {len(groups)} values for {len(y)} rows")
        if groups.isna().any():
            raise ValueError(f"groups: {int(groups.isna().sum())} rows have no group (a firm's months are held out by it)")
        # sklearn counts the classes by rows: a fold without a positive group would train on none
        positive = groups[y == 1].nunique()
        if groups.nunique() < self.cv_folds or positive < self.cv_folds:
            raise ValueError(f"{groups.nunique()} groups, {positive} of them with a positive outcome: at least "
                             f"{self.cv_folds} of each are needed for {self.cv_folds} folds held out group by group")
        return StratifiedGroupKFold(self.cv_folds).split(X, y, groups.to_numpy())

    def _cross_fit(self, X: pd.DataFrame, y: np.ndarray, params: dict, categorical: list[str] | str,
                   deadline: float | None = None, groups: np.ndarray | None = None) -> tuple[np.ndarray, list[int]]:
        out_of_fold, best = np.zeros(len(y)), []
        if self.cv_folds < 2:
            return out_of_fold, best
        for fit_rows, held_rows in self._folds(X, y, groups):
            fold = lgb.LGBMClassifier(**params)
            fold.fit(X.iloc[fit_rows], y[fit_rows], eval_X=(X.iloc[held_rows],), eval_y=(y[held_rows],),
                     categorical_feature=categorical,
                     callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False),
                                *([_stop_at(deadline)] if deadline is not None else [])])
            best.append(int(fold.best_iteration_ or self.n_estimators))
            out_of_fold[held_rows] = fold.predict(X.iloc[held_rows], raw_score=True)
        return out_of_fold, best

    def fit(self, X: pd.DataFrame, y, cross_fitted: tuple[np.ndarray, list[int]] | None = None,
            groups: np.ndarray | None = None) -> MonotoneGBM:
        """`cross_fitted`: this estimator's own `cross_fit` of the same rows, when a search already ran it.
        `groups`: rows held out together when choosing the size and the calibrator (`_folds`)."""
        if cross_fitted is not None and groups is not None:
            raise ValueError("groups shape the cross-fitting: pass them to cross_fit, not beside its result")
        X, y, params, categorical = self._fit_setup(X, y)
        out_of_fold, self.best_iterations_ = cross_fitted or self._cross_fit(X, y, params, categorical, groups=groups)
        if self.best_iterations_:
            params["n_estimators"] = int(np.median(self.best_iterations_))
        self.booster_params_ = params
        self.model_ = lgb.LGBMClassifier(**params)
        self.model_.fit(X, y, categorical_feature=categorical)
        self.refinement_, self.refinement_scale_, self.refinement_report_ = None, 1.0, None  # `refine_on`
        self.calibrator_ = None
        if self.calibration == "isotonic":
            self.calibrator_ = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
            self.calibrator_.fit(1 / (1 + np.exp(-out_of_fold)), y)
        elif self.calibration == "sigmoid":
            self.calibrator_ = LogisticRegression(C=1e6)
            self.calibrator_.fit(out_of_fold.reshape(-1, 1), y)
        return self

    def calibrate_to(self, X: pd.DataFrame, y) -> MonotoneGBM:
        """Move the PD's base rate to other rows and another record of the same event: the booster
        ranks court-recorded defaults over every firm; the loans' defaults set the intercept of its
        log-odds, the slope stays the booster's own (Platt, fitted out of fold on the whole
        population). A slope refitted on the loans would be fitted within the narrow band of risk
        banks lend to and flatten the PD everywhere else (docs/DESIGN.md, "The population PD").
        The PD's log-odds stay a linear function of the SHAP contributions."""
        if self.calibration != "sigmoid":
            raise ValueError("calibrate_to moves a Platt (sigmoid) calibrator: set calibration='sigmoid'")
        z = self.calibrator_.decision_function(self.raw_score(X).reshape(-1, 1))
        self.calibrator_.intercept_ = self.calibrator_.intercept_ + round(log_odds_shift(z, y), 12)
        return self

    def refine_on(self, X: pd.DataFrame, y, groups: np.ndarray) -> dict:
        """A second, small booster under the same monotone constraints, boosted on other rows (the
        loans) from this model's PD log-odds: it corrects the ranking where those rows say more than
        the first target did (among borrowers, a court listing and a loan default differ). Its size
        is chosen by early stopping on `cv_folds` folds that hold each group (a firm's loans) out
        whole, and each held fold is scored at the size the other folds chose (a fold's own
        stopping point would flatter it). It is kept only if those out-of-fold log-odds rank the
        rows better than the model's own, with a paired-bootstrap interval (`REFINEMENT_LEVEL`) of the AUC
        difference above zero: a refinement of noise costs ranking on the population for nothing.
        The PD stays sigmoid(coef * raw_score + intercept), `raw_score` being the first booster's
        plus the refinement's divided by the Platt slope it was boosted under, so the SHAP
        contributions still add up to it. Returns what was compared and kept (`refinement_report_`)."""
        if self.calibration != "sigmoid":
            raise ValueError("refine_on boosts from the Platt log-odds: set calibration='sigmoid'")
        slope = float(self.calibrator_.coef_[0][0])
        if slope <= 0:
            raise ValueError(f"refine_on: the Platt slope is {slope:.4f}; a refinement needs scores that rank the right way")
        frame, y = self._frame(pd.DataFrame(X)), np.asarray(y).astype(int)
        before = self.calibrator_.decision_function(self.raw_score(X, refined=False).reshape(-1, 1))
        params = {"objective": "binary", "metric": "auc", "verbose": -1, "deterministic": True, "force_row_wise": True,
                  "seed": self.random_state, "num_threads": self.n_jobs, "subsample": self.subsample, "subsample_freq": 1,
                  "colsample_bytree": self.colsample_bytree, "monotone_constraints_method": "advanced",
                  "monotone_constraints": self.booster_params_["monotone_constraints"], **REFINEMENT}
        folds, boosters, sizes = list(self._folds(frame, y, groups)), [], []
        for fit_rows, held_rows in folds:
            fit = lgb.Dataset(frame.iloc[fit_rows], y[fit_rows], init_score=before[fit_rows])
            held = lgb.Dataset(frame.iloc[held_rows], y[held_rows], init_score=before[held_rows], reference=fit)
            boosters.append(lgb.train(params, fit, REFINEMENT_ROUNDS, valid_sets=[held],
                                      callbacks=[lgb.early_stopping(REFINEMENT_PATIENCE, verbose=False)]))
            sizes.append(int(boosters[-1].best_iteration))
        after = before.copy()
        for i, ((fit_rows, held_rows), booster) in enumerate(zip(folds, boosters)):
            size = int(np.median(sizes[:i] + sizes[i + 1:]))
            if size > booster.current_iteration():  # stopped before the others' size: grown further, the same first trees
                booster = lgb.train(params, lgb.Dataset(frame.iloc[fit_rows], y[fit_rows], init_score=before[fit_rows]), size)
            after[held_rows] += booster.predict(frame.iloc[held_rows], raw_score=True, num_iteration=size)
        gain = auc_difference(y, after, before, self.random_state, level=REFINEMENT_LEVEL)
        interval = gain[INTERVAL]
        kept, trees = interval[0] > 0, int(np.median(sizes))
        self.refinement_ = None  # a second call replaces the first (boosted, as it was, from the first booster alone)
        if kept:
            self.refinement_ = lgb.train(params, lgb.Dataset(frame, y, init_score=before), trees)
        self.refinement_scale_ = 1.0 / slope if kept else 1.0
        self.refinement_report_ = {
            "rows": len(y), "events": int(y.sum()), "fold_trees": sizes, "trees": trees if kept else 0, "kept": bool(kept),
            "out_of_fold_auc": {"model": round(float(roc_auc_score(y, before)), 5),
                                "refined": round(float(roc_auc_score(y, after)), 5)},
            "gain": {"difference": gain["difference"], INTERVAL: interval}}
        return self.refinement_report_

    def _scaled_boosters(self) -> list[tuple[float, object]]:
        """The boosters the raw score adds up, with their weights (as `RegisteredModel.scaled_boosters`)."""
        return [(1.0, self.model_), *([(self.refinement_scale_, self.refinement_)] if self.refinement_ is not None else [])]

    def _raw(self, frame: pd.DataFrame) -> np.ndarray:
        return scaled_sum(self._scaled_boosters(), frame, raw_score=True)

    def raw_score(self, X: pd.DataFrame, refined: bool = True) -> np.ndarray:
        """The boosters' log-odds: what the SHAP contributions add up to (`refined=False`: the first
        booster's alone)."""
        frame = self._frame(pd.DataFrame(X))
        return self._raw(frame) if refined else self.model_.predict(frame, raw_score=True)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact TreeSHAP contributions to the boosters' log-odds, one column per feature plus
        `base_value`; each row sums to `raw_score` (LightGBM's own implementation of TreeSHAP; a
        refinement's contributions are added, scaled as in `raw_score`: SHAP values are additive
        over a sum of models)."""
        X = self._frame(pd.DataFrame(X))
        out = scaled_sum(self._scaled_boosters(), X, pred_contrib=True)
        return pd.DataFrame(out, columns=[*self.feature_names_in_, "base_value"], index=X.index)

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "model_")
        X = self._frame(self._checked(X))
        if self.calibration == "isotonic":
            p = self.calibrator_.predict(self.model_.predict_proba(X)[:, 1])
        elif self.calibration == "sigmoid":
            p = self.calibrator_.predict_proba(self._raw(X).reshape(-1, 1))[:, 1]
        else:
            p = self.model_.predict_proba(X)[:, 1]
        return np.column_stack([1 - p, p])


class WoEScorecard(_BinaryClassifier):
    def __init__(self, pdo: float = 20.0, odds: float = 50.0, base_points: float = 600.0, min_bin_size: float = 0.05,
                 max_n_bins: int | None = None, C: float = 1.0, special_codes: list[float] | None = None,
                 monotone: dict[str, int] | None = None):
        self.pdo = pdo
        self.odds = odds
        self.base_points = base_points
        self.min_bin_size = min_bin_size
        self.max_n_bins = max_n_bins
        self.C = C
        self.special_codes = special_codes
        self.monotone = monotone

    def binnable(self, X: pd.DataFrame) -> list[str]:
        """The columns of X holding a value that is neither missing nor a special code: a column of
        nothing else cannot be binned (optbinning stops on it) and carries nothing for the card."""
        codes = list(self.special_codes or [])

        def holds_a_value(column: pd.Series) -> bool:
            real = column.notna()
            if codes and pd.api.types.is_numeric_dtype(column):
                real &= ~column.isin(codes)
            return bool(real.any())

        return [c for c in X.columns if holds_a_value(X[c])]

    def category_cutoff(self, rows: int) -> float:
        """The share of the rows a category needs to be binned on its own (`binning_process`)."""
        return min(self.min_bin_size, CATEGORY_ROWS / max(rows, 1))

    def binning_process(self, X: pd.DataFrame):
        """optbinning's BinningProcess for the binnable columns of X (`binnable`), with this card's
        binning settings (unfitted)."""
        from optbinning import BinningProcess

        columns = self.binnable(X)
        # a category needs rows enough for its own bad rate: a bin's minimum share, or on a large table
        # CATEGORY_ROWS (60 occupations of 333 rows each are 1.7 % apiece of 20,000 and each informative);
        # rarer ones are pooled, and a text column with no category that common (a postcode, a
        # free-text field, a date as text) would be binned by its categories' own few rows: left out
        cutoff = self.category_cutoff(len(X))
        text = _categorical(X)
        # optbinning's own count (cat_cutoff keeps a category of ceil(cutoff x its rows) rows): a share
        # compared in floating point kept a column all of whose categories optbinning then pooled, and the fit failed
        columns = [c for c in columns if c not in text or
                   X[c].value_counts().max() >= np.ceil(cutoff * X[c].notna().sum())]
        categorical = [c for c in columns if c in text]
        # +1: a higher value never lowers the risk, so the bad rate ascends across the bins
        trend = {c: "ascending" if sign > 0 else "descending" for c, sign in (self.monotone or {}).items() if sign}
        return BinningProcess(columns, categorical_variables=categorical,
                              special_codes=list(self.special_codes) if self.special_codes else None,
                              binning_fit_params={c: {"min_bin_size": self.min_bin_size,
                                                      # a category rarer than a bin may be is pooled with the
                                                      # other rare ones, not placed by its own few rows' bad rate
                                                      **({"cat_cutoff": cutoff} if c in categorical else {}),
                                                      **({"max_n_bins": self.max_n_bins} if self.max_n_bins else {}),
                                                      **({"monotonic_trend": trend[c]} if c in trend else {})}
                                                  for c in columns})

    @staticmethod
    def prepared(X: pd.DataFrame) -> pd.DataFrame:
        """Text columns as Python objects with None for missing, as optbinning reads them."""
        X = pd.DataFrame(X).copy()
        for c in _categorical(X):
            X[c] = X[c].astype(object).where(X[c].notna(), None)
        return X

    def fit(self, X: pd.DataFrame, y) -> WoEScorecard:
        from optbinning import Scorecard

        X = _input_frame(X, type(self).__name__)
        self.classes_, y = _binary_target(y, len(X), type(self).__name__)
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        binning = self.binning_process(X)
        self.used_columns_ = list(binning.variable_names)
        self.empty_columns_ = [c for c in X.columns if c not in self.used_columns_]
        self.scorecard_ = Scorecard(binning_process=binning, estimator=LogisticRegression(C=self.C, max_iter=1000),
                                    scaling_method="pdo_odds",
                                    scaling_method_params={"pdo": self.pdo, "odds": self.odds,
                                                           "scorecard_points": self.base_points})
        # what the fit warns of (a regression that did not converge, a variable that could not be
        # binned) is kept for the caller to show, not silenced
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.scorecard_.fit(self.prepared(X[self.used_columns_]), y)
        self.fit_warnings_ = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0]}" for w in caught
                                     if not issubclass(w.category, (DeprecationWarning, FutureWarning))} |
                                    {f"{c!r} left out of the card: no category holds "
                                     f"{self.category_cutoff(len(X)):.1%} of the rows"
                                     for c in set(self.empty_columns_) & set(_categorical(X)) if X[c].notna().any()})
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "scorecard_")
        X = self.prepared(self._checked(X)[self.used_columns_])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return self.scorecard_.predict_proba(X)

    def points(self, X: pd.DataFrame) -> np.ndarray:
        """Scorecard points (higher is safer), scaled by PDO."""
        return self.scorecard_.score(self.prepared(pd.DataFrame(X)[self.used_columns_]))

"""The PD layer's building blocks: exact SHAP, calibration error and stability, by hand."""

import numpy as np
import pandas as pd
import pytest

from models.estimators import MonotoneGBM
from models.train import auc_gap, reliability


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    n = 4000
    X = pd.DataFrame({"arrears": rng.integers(0, 6, n).astype(float), "growth": rng.normal(size=n),
                      "sector": rng.choice(["C", "F", "K"], n)})
    X.loc[rng.random(n) < 0.1, "growth"] = np.nan
    logit = -2.5 + 0.6 * X.arrears - 0.8 * X.growth.fillna(0) + 0.7 * (X.sector == "K")
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    model = MonotoneGBM(n_estimators=120, monotone={"arrears": 1, "growth": -1}, random_state=0).fit(X, y)
    return model, X


def test_contributions_add_up_and_agree_with_shap_tree_explainer(fitted):
    import shap

    model, X = fitted
    sample = X.iloc[:300]
    contrib = model.contributions(sample)
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw_score(sample), atol=1e-9)
    explainer = shap.TreeExplainer(model.model_.booster_)
    reference = explainer.shap_values(model._frame(sample))
    np.testing.assert_allclose(contrib.drop(columns="base_value").to_numpy(), reference, atol=1e-6)
    assert contrib["base_value"].iloc[0] == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-6)


def test_calibrated_pd_is_monotone_and_well_calibrated(fitted):
    model, X = fitted
    grid = pd.DataFrame({"arrears": np.arange(6.0), "growth": 0.0, "sector": "C"})
    p = model.predict_proba(grid)[:, 1]
    assert np.all(np.diff(p) >= 0)  # more arrears never lowers the PD


def test_reliability_and_ece_by_hand():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.3, 0.6, 0.8])
    table, ece = reliability(y, p, bins=2)
    assert table == [{"n": 2, "mean_pd": 0.2, "observed": 0.0}, {"n": 2, "mean_pd": 0.7, "observed": 1.0}]
    assert ece == pytest.approx(0.5 * 0.2 + 0.5 * 0.3)


def test_auc_gap_to_a_reference_with_its_paired_bootstrap_interval():
    rng = np.random.default_rng(3)
    risk = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-(risk - 3)))).astype(int)
    same = auc_gap(y, risk, risk)
    assert same["auc_gap"] == 0 and same["interval_90"] == [0.0, 0.0]  # paired: the same loans each time
    noisy = risk + rng.normal(scale=1.0, size=4000)
    gap = auc_gap(y, risk, noisy)
    lo, hi = gap["interval_90"]
    assert 0.03 < gap["auc_gap"] < 0.15 and 0 < lo < gap["auc_gap"] < hi
    assert auc_gap(y, risk, noisy) == gap  # seeded: the same interval every run


def test_psi_by_hand_with_missing_values_and_categories():
    from models.monitoring import psi, reference, status

    train = pd.Series([1.0] * 40 + [2.0] * 40 + [None] * 20)
    ref = reference(train, bins=2)  # bins: below the median, from the median up, missing
    assert ref["edges"] == [1.5] and ref["shares"] == [0.4, 0.4, 0.2]
    assert psi(ref, train) == 0
    today = pd.Series([1.0] * 20 + [2.0] * 40 + [None] * 40)  # a department stopped delivering for some firms
    expected = (0.2 - 0.4) * np.log(0.2 / 0.4) + (0.4 - 0.2) * np.log(0.4 / 0.2)
    assert psi(ref, today) == pytest.approx(expected, abs=1e-5) and status(psi(ref, today)) == "shift"
    sectors = reference(pd.Series(["C"] * 50 + ["K"] * 50))
    assert sectors["categories"] == ["C", "K"] and sectors["shares"] == [0.5, 0.5, 0.0, 0.0]
    # a sector never seen in training lands in its own bin, counted against a floor of 1e-4
    drift = psi(sectors, pd.Series(["C"] * 45 + ["K"] * 45 + ["Z"] * 10))
    assert drift == pytest.approx(2 * (0.45 - 0.5) * np.log(0.45 / 0.5) + (0.1 - 1e-4) * np.log(0.1 / 1e-4), abs=1e-5)
    assert status(0.05) == "stable" and status(0.1) == "watch" and status(0.25) == "shift"


def test_a_registered_model_reproduces_its_pds_and_explanations(fitted, tmp_path):
    from models.registry import RegistryError, load_model, save_model

    model, X = fitted
    meta = {"training_rows": len(X), "window": ["2024-01-01", "2024-12-31"], "snapshot": "abc"}
    version = save_model(tmp_path, model, meta)
    assert version == save_model(tmp_path / "again", model, meta)  # the id is the content
    loaded = load_model(tmp_path, version)
    sample = X.iloc[:500]
    np.testing.assert_allclose(loaded.pd(sample), model.predict_proba(sample)[:, 1], atol=1e-12)
    np.testing.assert_allclose(loaded.contributions(sample).to_numpy(), model.contributions(sample).to_numpy(), atol=1e-12)
    assert loaded.metadata["monotone"] == {"arrears": 1, "growth": -1} and loaded.metadata["training_rows"] == len(X)
    assert (tmp_path / version / "model.txt").read_text().startswith("tree")  # LightGBM's readable text model
    calibration = tmp_path / version / "calibration.json"
    calibration.write_text(calibration.read_text().replace("0.", "0.5", 1))
    with pytest.raises(RegistryError, match="no longer match its id"):
        load_model(tmp_path, version)
    with pytest.raises(RegistryError, match="missing"):
        load_model(tmp_path, "pd-0000")


def test_a_firms_months_are_held_out_together_so_the_booster_cannot_learn_firms_by_heart():
    """600 firms seen in 8 months each, every firm's outcome the same in all its months (its own coin:
    nothing in the features predicts it) and its size a fingerprint that hardly moves. Held out month
    by month beside its other months, a firm is recognised and its outcome recalled: the out-of-fold
    ranking looks real and early stopping grows the booster. Held out firm by firm there is
    nothing to learn, and the booster stops at once."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    firms, months = 600, 8
    X = pd.DataFrame({"size": np.repeat(rng.lognormal(10, 1, firms), months) * rng.normal(1, 0.001, firms * months),
                      "noise": rng.normal(size=firms * months)})
    y = np.repeat(rng.random(firms) < 0.3, months).astype(int)
    groups = np.repeat([f"firm{i}" for i in range(firms)], months)
    settings = dict(n_estimators=300, learning_rate=0.1, min_child_samples=5, cv_folds=2, early_stopping_rounds=20)
    by_month, trees_by_month = MonotoneGBM(**settings).cross_fit(X, y)
    by_firm, trees_by_firm = MonotoneGBM(**settings).cross_fit(X, y, groups=groups)
    assert roc_auc_score(y, by_month) > 0.7  # recalled, not predicted
    assert 0.4 < roc_auc_score(y, by_firm) < 0.6
    assert max(trees_by_firm) < 10 and min(trees_by_month) > 100
    assert MonotoneGBM(**settings).fit(X, y, groups=groups).best_iterations_ == trees_by_firm
    with pytest.raises(ValueError, match="groups holds 5 values for 4800 rows"):
        MonotoneGBM(**settings).cross_fit(X, y, groups=groups[:5])


def test_groups_are_checked_before_any_fold_is_drawn():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"a": rng.normal(size=40)})
    y = np.array([0, 1] * 20)
    gbm = MonotoneGBM(cv_folds=2, n_estimators=10)
    firms = np.repeat([f"F{i}" for i in range(10)], 4)
    held = [set(firms[rows]) for _, rows in gbm._folds(X, y, firms)]
    assert len(held) == 2 and not held[0] & held[1] and held[0] | held[1] == set(firms)  # each firm whole in one fold
    with pytest.raises(ValueError, match="3 rows have no group"):
        gbm.cross_fit(X, y, groups=np.where(np.arange(40) < 3, None, firms))
    with pytest.raises(ValueError, match="1 groups, 1 of them with a positive outcome: at least 2"):
        gbm.cross_fit(X, y, groups=np.full(40, "F0"))
    with pytest.raises(ValueError, match="10 groups, 1 of them with a positive outcome"):
        gbm.cross_fit(X, (firms == "F3").astype(int), groups=firms)
    with pytest.raises(ValueError, match="pass them to cross_fit"):
        gbm.fit(X, y, cross_fitted=gbm.cross_fit(X, y, groups=firms), groups=firms)


def _population_and_loans(seed: int, leverage_weight: float, court_scale: float = 0.5):
    """A population whose target depends on `arrears` alone (scaled by `court_scale`, so the Platt
    slope is far from 1) and loans whose default also depends on `leverage`; two rows a firm."""
    rng = np.random.default_rng(seed)

    def draw(n, arrears_weight, weight):
        X = pd.DataFrame({"arrears": rng.integers(0, 6, n).astype(float), "leverage": rng.normal(size=n),
                          "sector": rng.choice(["C", "F", "K"], n)})
        logit = -3.0 + arrears_weight * X.arrears + weight * X.leverage
        return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int), np.arange(n) // 2

    return draw(8000, court_scale, 0.0), draw(8000, 0.5, leverage_weight), draw(8000, 0.5, leverage_weight)


def _population_model(X, y, firms):
    model = MonotoneGBM(n_estimators=200, monotone={"arrears": 1, "leverage": 1}, cv_folds=2, random_state=0,
                        n_jobs=1)
    model.fit(X, y, groups=firms)
    # as `fit_population_gbm`: the court's booster, its scale stretched to the loans' log-odds
    model.calibrator_.coef_ = model.calibrator_.coef_ * 2.5
    return model


def test_a_refinement_on_the_loans_adds_what_the_population_target_missed_and_survives_the_registry(tmp_path):
    """Boosted on the loans from the population PD, the refinement ranks new loans better, the PD is
    sigmoid(slope * first booster + intercept + refinement) exactly (its scale divided by a slope
    far from 1), its SHAP contributions still add up, and the registry keeps it under the version's
    hash; an incremental night sees its split points."""
    from sklearn.metrics import log_loss, roc_auc_score

    from models.nightly import same_decisions, split_thresholds
    from models.registry import RegistryError, load_model, save_model

    (X_pop, y_pop, firms), (X_loans, y_loans, loan_firms), (X_new, y_new, _) = _population_and_loans(5, 1.2)
    model = _population_model(X_pop, y_pop, firms)
    coef, intercept = model.calibrator_.coef_[0][0], model.calibrator_.intercept_[0]
    assert abs(coef - 1) > 0.5
    alone = model.predict_proba(X_new)[:, 1]
    report = model.refine_on(X_loans, y_loans, loan_firms)
    assert report["kept"] and report["trees"] > 0 and report["rows"] == 8000 and report["gain"]["interval_90"][0] > 0
    assert report["out_of_fold_auc"]["refined"] > report["out_of_fold_auc"]["model"] + 0.05
    refined = model.predict_proba(X_new)[:, 1]
    first = model.model_.predict(model._frame(X_new), raw_score=True)
    second = model.refinement_.predict(model._frame(X_new), raw_score=True)
    np.testing.assert_allclose(refined, 1 / (1 + np.exp(-(coef * first + intercept + second))), rtol=1e-12)
    assert roc_auc_score(y_new, refined) > roc_auc_score(y_new, alone) + 0.05
    assert log_loss(y_new, refined) < log_loss(y_new, alone) - 0.02
    grid = pd.DataFrame({"arrears": 2.0, "leverage": np.linspace(-2, 2, 9), "sector": "C"})
    assert np.all(np.diff(model.predict_proba(grid)[:, 1]) >= 0)  # the refinement keeps the constraints
    contrib = model.contributions(X_new.iloc[:300])
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw_score(X_new.iloc[:300]), atol=1e-9)
    assert contrib["leverage"].abs().mean() > 0.1  # the population booster alone had nothing to learn from it

    version = save_model(tmp_path, model, {})
    loaded = load_model(tmp_path, version)
    assert loaded.refinement is not None and "leverage" in loaded.used_features()
    np.testing.assert_allclose(loaded.pd(X_new), refined, atol=1e-12)
    np.testing.assert_allclose(loaded.contributions(X_new.iloc[:300]).to_numpy(), contrib.to_numpy(), atol=1e-12)
    # a firm whose leverage crosses one of the refinement's split points is scored again
    only_refinement = set(split_thresholds(loaded)["leverage"]) - {
        float(t) for t in split_thresholds(type(loaded)(version, loaded.booster, {}, loaded.metadata)).get("leverage", [])}
    t = sorted(only_refinement)[0]
    before, after = X_new.iloc[:1].assign(leverage=t - 1e-9), X_new.iloc[:1].assign(leverage=t + 1e-9)
    assert loaded.pd(before)[0] != loaded.pd(after)[0] and not same_decisions(loaded, before, after)[0]

    refinement = tmp_path / version / "refinement.txt"
    text = refinement.read_text()
    refinement.write_text(text.replace("leaf_value=", "leaf_value=1", 1))
    with pytest.raises(RegistryError, match="no longer match its id"):
        load_model(tmp_path, version)
    refinement.unlink()
    with pytest.raises(RegistryError, match="missing refinement.txt"):
        load_model(tmp_path, version)
    np.testing.assert_allclose(1 / (1 + np.exp(-(coef * model.raw_score(X_new, refined=False) + intercept))),
                               alone, rtol=1e-12)  # the first booster's alone, as before the refinement
    model.fit(X_pop, y_pop, groups=firms)  # fitted again: no refinement left over
    assert model.refinement_ is None and save_model(tmp_path / "plain", model, {}) != version


def test_a_refinement_that_learns_nothing_is_not_kept():
    """Loans whose defaults follow the population's own relation: boosting on them fits noise, and
    the out-of-fold gain's interval (each fold scored at the others' size) says so."""
    (X_pop, y_pop, firms), (X_loans, y_loans, loan_firms), _ = _population_and_loans(7, 0.0, court_scale=0.5)
    model = _population_model(X_pop, y_pop, firms)
    model.calibrator_.coef_ = model.calibrator_.coef_ / 2.5  # the loans' own scale: nothing to learn
    plain = model.predict_proba(X_loans)[:, 1]
    report = model.refine_on(X_loans, y_loans, loan_firms)
    assert not report["kept"] and report["trees"] == 0 and report["gain"]["interval_90"][0] <= 0
    from reports.audit import refinement_text
    assert refinement_text(report, "en").endswith("Not kept: the gain's interval does not lie above zero.")
    assert f"{report['out_of_fold_auc']['model']} to {report['out_of_fold_auc']['refined']}" in refinement_text(report, "en")
    assert model.refinement_ is None
    np.testing.assert_array_equal(model.predict_proba(X_loans)[:, 1], plain)
    model.calibrator_.coef_ = -model.calibrator_.coef_
    with pytest.raises(ValueError, match="Platt slope"):
        model.refine_on(X_loans, y_loans, loan_firms)

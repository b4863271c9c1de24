"""Both PD estimators meet scikit-learn's own estimator contract, every check of it: binary only
(a multi-class target is refused with scikit-learn's message), missing values and text categories
accepted, dense input only, refusals with scikit-learn's messages."""

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from models.estimators import MonotoneGBM, WoEScorecard

# small settings: the checks fit on a few dozen rows
ESTIMATORS = [MonotoneGBM(n_estimators=20, cv_folds=2, early_stopping_rounds=5, min_child_samples=2, n_jobs=1),
              WoEScorecard()]


@parametrize_with_checks(ESTIMATORS)
def test_the_estimators_meet_scikit_learns_contract(estimator, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checks' tiny data makes LightGBM and optbinning chatty
        check(estimator)

"""scikit-learn's estimator checks on SmoothNMF."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from espm_cli.solver import SmoothNMF

EXPECTED_FAILED_CHECKS = {}


@parametrize_with_checks([SmoothNMF(n_components=2, random_state=0, max_iter=500, tol=1e-8)],
                         expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS)
def test_sklearn_compatible(estimator, check):
    check(estimator)

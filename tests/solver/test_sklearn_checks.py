"""scikit-learn's estimator checks on SmoothNMF."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from espm_cli.solver import SmoothNMF

EXPECTED_FAILED_CHECKS = {}


# All checks pass: EXPECTED_FAILED_CHECKS is empty (kept so a future failure is documented
# here with its reason). The reference backend is pinned so this tests this module.
@parametrize_with_checks(
    [SmoothNMF(n_components=2, random_state=0, max_iter=500, tol=1e-8, backend="reference")],
    expected_failed_checks=lambda estimator: EXPECTED_FAILED_CHECKS,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

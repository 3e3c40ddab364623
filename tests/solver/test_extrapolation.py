"""The extrapolated (accelerated) iterations: monotone, feasible, and faster to tol."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from solver_helpers import tiny_problem

from espm_cli.solver import SmoothNMF


def _fit(X, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return SmoothNMF(**params).fit(X)


_KL_OPTIONS = [
    dict(),
    dict(simplex="H", lambda_L=1.0, mu=0.3),
    dict(simplex="W", mu=(0.1, 0.0, 1.0)),
    dict(fixed=True),
]
# other losses and masked entries run on the reference path only
_OTHER_OPTIONS = [dict(beta_loss=0.5, simplex="H"), dict(beta_loss="frobenius", masked=True)]


@pytest.mark.parametrize(
    "backend, options",
    [(backend, options) for backend in ("reference", "numba") for options in _KL_OPTIONS]
    + [("reference", options) for options in _OTHER_OPTIONS],
)
def test_extrapolated_fit_never_increases_the_objective(backend, options):
    X, G, continuum = tiny_problem(seed=3, n_channels=20, shape_2d=(6, 5), n_components=3)
    options = dict(options)
    if options.pop("masked", False):
        mask = np.zeros(X.shape, bool)
        mask[::7, ::3] = True
        options["mask"] = mask
    if options.pop("fixed", False):
        fixed_W = -np.ones((G.shape[1], 3))
        fixed_W[1, 2] = 0.5
        options["fixed_W"] = fixed_W
    fit = _fit(
        X,
        n_components=3,
        G=G,
        G_continuum=continuum,
        shape_2d=(6, 5),
        max_iter=150,
        tol=0.0,
        random_state=0,
        n_init=1,
        backend=backend,
        **options,
    )
    total = np.concatenate([[fit.initial_losses_[-1]], fit.losses_[:, -1]])
    assert np.all(np.diff(total) <= 1e-12 * abs(total[0]))
    assert fit.W_.min() >= fit.eps and fit.H_.min() >= fit.eps
    if options.get("simplex") == "H":
        np.testing.assert_allclose(fit.H_.sum(axis=0), 1.0, atol=1e-9)
    if options.get("simplex") == "W":
        np.testing.assert_allclose(fit.W_[~continuum].sum(axis=0), 1.0, atol=1e-9)
    if "fixed_W" in options:
        assert fit.W_[1, 2] == 0.5


@pytest.mark.parametrize("options", [dict(), dict(simplex="H", lambda_L=1.0, mu=(0.5, 2.0))])
def test_extrapolation_reaches_the_plain_optimum_in_fewer_iterations(options):
    X, G, _ = tiny_problem(seed=1, n_channels=20, shape_2d=(6, 5), n_components=2)
    common = dict(
        n_components=2,
        G=G,
        shape_2d=(6, 5),
        epsilon_reg=0.5,
        max_iter=20000,
        tol=1e-14,
        init="nndsvda",
        n_init=1,
        random_state=0,
        backend="reference",
        **options,
    )
    plain = _fit(X, extrapolate=False, **common)
    fast = _fit(X, extrapolate=True, **common)
    assert plain.converged_ and fast.converged_
    assert fast.n_iter_ < plain.n_iter_ / 4
    assert fast.losses_[-1, -1] <= plain.losses_[-1, -1] * (1 + 1e-10)

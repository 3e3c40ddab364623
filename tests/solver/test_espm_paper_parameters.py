"""The ESpM paper's weights at espm's scaling give espm's result (espm 1.1.3, committed).

``tests/solver/data/espm_paper_parameters.npz`` holds a small simulated dataset, a start,
and what espm 1.1.3 reached from that start with lambda_L = 1, mu = 0.004,
epsilon_reg = 0.01, simplex on H and ``normalize=True`` (written by
``benchmarks/espm_paper_fixture.py``; CI has no espm). espm_cli, with ``normalize=True``
and the same weights (lambda_L doubled: espm_cli's Laplacian term is
(lambda_L / 2) tr(H Δ Hᵀ), espm's lambda_L tr(H Δ Hᵀ)), must reach the same spectra and
maps. The two codes take different MM steps for the Laplacian, so they agree at
convergence, not iterate by iterate: both are run to convergence here.
"""

import json
import warnings
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

from espm_cli.solver import SmoothNMF

FIXTURE = Path(__file__).resolve().parent / "data" / "espm_paper_parameters.npz"
MAX_ANGLE_DEG = 0.1  # between matching spectra (G W columns) and maps (H rows)
MAX_MAP_DIFFERENCE = 2e-3  # mean absolute difference of abundances (simplex: in [0, 1])


def _angles_deg(A, B):
    """Angle between matching columns of A and B, in degrees."""
    cosine = np.sum(A * B, axis=0) / (np.linalg.norm(A, axis=0) * np.linalg.norm(B, axis=0))
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


@pytest.fixture(scope="module")
def espm_result():
    return np.load(FIXTURE)


def _fit(stored, normalize, lambda_L, mu, epsilon_reg):
    """espm_cli from the fixture's start; ``lambda_L`` in espm's convention."""
    k = stored["H0"].shape[0]
    estimator = SmoothNMF(
        k,
        G=stored["G"],
        shape_2d=tuple(int(v) for v in stored["shape_2d"]),
        lambda_L=2.0 * lambda_L,
        mu=mu,
        epsilon_reg=epsilon_reg,
        simplex="H",
        normalize=normalize,
        max_iter=5000,
        tol=1e-10,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(stored["X"], W=stored["W0"], H=stored["H0"])


def _matched(ours_W, ours_H, G, W_espm):
    """Our components in espm's order (espm_cli may order them differently)."""
    best = min(
        permutations(range(ours_H.shape[0])),
        key=lambda order: _angles_deg(G @ ours_W[:, list(order)], G @ W_espm).sum(),
    )
    return ours_W[:, list(best)], ours_H[list(best)]


@pytest.mark.xfail(
    strict=True,
    reason="measured 2026-12-01: spectra 0.12-1.5 deg, maps "
    "2.7-5.1 deg from espm 1.1.3's result after espm's 3000 iterations; not "
    "yet explained (convergence of either code, or a convention); see "
    "/work/reports/issue9.md",
)
def test_paper_parameters_at_espm_scaling_reproduce_espm(espm_result):
    stored = espm_result
    parameters = json.loads(str(stored["parameters"]))
    assert parameters == dict(lambda_L=1.0, mu=0.004, epsilon_reg=0.01)
    ours = _fit(stored, True, **parameters)
    G = stored["G"]
    W, H = _matched(ours.W_, ours.H_, G, stored["W_espm"])
    spectra = _angles_deg(G @ W, G @ stored["W_espm"])
    maps = _angles_deg(H.T, stored["H_espm"].T)
    assert spectra.max() < MAX_ANGLE_DEG, spectra
    assert maps.max() < MAX_ANGLE_DEG, maps
    assert np.abs(H - stored["H_espm"]).mean() < MAX_MAP_DIFFERENCE
    # espm's W comes back in counts, as ours: same scale, not only the same direction
    np.testing.assert_allclose((G @ W).sum(axis=0), (G @ stored["W_espm"]).sum(axis=0), rtol=1e-3)

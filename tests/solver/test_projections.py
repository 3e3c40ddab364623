"""The Euclidean projection onto the simplex (with bounds and held entries) against brute force."""

import itertools

import numpy as np
import pytest

from espm_cli.solver.projections import project_factor, project_onto_simplex


def brute_force_projection(v, target, eps):
    """Enumerate which entries sit at the bound; the rest solve the equality-constrained
    least squares in closed form. The feasible candidate nearest to v is the projection."""
    n = v.size
    best, best_distance = None, np.inf
    for size in range(n):
        for at_bound in itertools.combinations(range(n), size):
            rest = [i for i in range(n) if i not in at_bound]
            h = np.full(n, eps)
            shift = (v[rest].sum() - (target - size * eps)) / len(rest)
            h[rest] = v[rest] - shift
            if np.all(h >= eps - 1e-12):
                distance = np.sum((h - v) ** 2)
                if distance < best_distance:
                    best, best_distance = h, distance
    return best


@pytest.mark.parametrize("seed", range(20))
def test_simplex_projection_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 6))
    v = rng.normal(0, 1.5, n) * rng.choice([0.01, 1.0, 10.0])
    target = float(rng.uniform(0.5, 2.0))
    eps = float(rng.choice([0.0, 1e-3, 0.05]))
    got = project_onto_simplex(v[:, None], np.ones((n, 1), bool), target, eps)[:, 0]
    np.testing.assert_allclose(got, brute_force_projection(v, target, eps), atol=1e-12)
    assert got.sum() == pytest.approx(target, abs=1e-12)
    assert got.min() >= eps - 1e-15


def test_projection_is_idempotent_and_columnwise_with_held_entries():
    rng = np.random.default_rng(3)
    values = rng.normal(0.3, 1.0, (4, 6))
    fixed = -np.ones((4, 6))
    fixed[1, 2], fixed[0, 4] = 0.25, 0.6
    projected = project_factor(values, fixed=fixed, simplex_rows=np.ones(4, bool), eps=1e-3)
    np.testing.assert_allclose(projected.sum(axis=0), 1.0, atol=1e-12)
    assert projected[1, 2] == 0.25 and projected[0, 4] == 0.6
    for column in range(6):
        free = fixed[:, column] < 0
        held = np.where(free, 0.0, fixed[:, column]).sum()
        expected = brute_force_projection(values[free, column], 1.0 - held, 1e-3)
        np.testing.assert_allclose(projected[free, column], expected, atol=1e-12)
    again = project_factor(projected, fixed=fixed, simplex_rows=np.ones(4, bool), eps=1e-3)
    np.testing.assert_allclose(again, projected, atol=1e-14)


def test_projection_on_some_rows_only_and_plain_bounds():
    values = np.array([[2.0, -1.0], [0.5, 0.5], [-3.0, 4.0]])
    rows = np.array([True, True, False])
    projected = project_factor(values, simplex_rows=rows, eps=0.0)
    np.testing.assert_allclose(projected[:2].sum(axis=0), 1.0)
    np.testing.assert_allclose(projected[2], [0.0, 4.0])
    np.testing.assert_allclose(project_factor(values, eps=0.1), np.maximum(values, 0.1))

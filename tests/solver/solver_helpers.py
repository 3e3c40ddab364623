"""Small synthetic problems shared by the solver tests."""

import numpy as np


def gaussian_peak_matrix(n_channels, centres, width, n_continuum=2):
    """G with one Gaussian peak per element column, then smooth continuum columns."""
    channels = np.arange(n_channels)
    columns = [np.exp(-0.5 * ((channels - centre) / width) ** 2) for centre in centres]
    ramp = channels / n_channels
    continuum = [np.exp(-3.0 * ramp) * (0.2 + ramp), 0.3 + 0.7 * np.sqrt(ramp)][:n_continuum]
    G = np.column_stack(columns + continuum)
    mask = np.array([False] * len(centres) + [True] * n_continuum)
    return G, mask


def tiny_problem(seed=0, n_channels=7, shape_2d=(3, 4), n_components=2, scale=30.0, with_G=True):
    """Poisson counts X (n_pixels, n_channels) with every count > 0, and its G."""
    rng = np.random.default_rng(seed)
    G, continuum = gaussian_peak_matrix(n_channels, centres=[1.0, 3.5, 5.5], width=1.0)
    n_pixels = shape_2d[0] * shape_2d[1]
    W = rng.uniform(0.2, 1.0, (G.shape[1], n_components))
    H = rng.dirichlet(np.ones(n_components), n_pixels).T
    model = G @ W @ H if with_G else rng.uniform(0.5, 1.5, (n_channels, n_components)) @ H
    X = rng.poisson(scale * model).T + 1
    return X.astype(np.float64), (G if with_G else None), continuum


def feasible_start(X, G, n_components, seed, simplex=None, continuum=None):
    """A strictly positive start that satisfies the simplex and matches Σ X."""
    rng = np.random.default_rng(seed + 100)
    m = X.shape[1] if G is None else G.shape[1]
    W = rng.uniform(0.3, 1.0, (m, n_components))
    H = rng.uniform(0.3, 1.0, (n_components, X.shape[0]))
    G_matrix = np.eye(X.shape[1]) if G is None else G
    if simplex == "H":
        H /= H.sum(axis=0)
    elif simplex == "W":
        rows = np.ones(m, bool) if continuum is None or G is None else ~continuum
        W[rows] /= W[rows].sum(axis=0)
    factor = X.sum() / (G_matrix.sum(axis=0) @ W @ H.sum(axis=1))
    if simplex == "W":
        H *= factor
    else:
        W *= factor
    return W, H

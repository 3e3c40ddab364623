"""Starting points for SmoothNMF: vertex starts, NNDSVD-a, random, or given; then made feasible.

The vertex starts (:func:`vertex_start`, docs/starts.md) find the phases among the pixels'
contents in the m columns of G. NNDSVD-a and random starts give spectra (channels x k),
which with a physics G are projected onto G by a few KL multiplicative iterations of W
with G fixed. Every start is then scaled to the data's total
counts and projected onto the constraints (bounds, fixed entries, simplex), because the
monotone updates need a feasible start.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.extmath import randomized_svd

_PROJECTION_ITERATIONS = 50


def nndsvda(X, n_components, rng):
    """NNDSVD with its zeros filled (Boutsidis & Gallopoulos 2008, variant "a").

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (c, p)
        Nonnegative data, channels x pixels.
    n_components : int
    rng : numpy.random.Generator

    Returns
    -------
    spectra : ndarray of shape (c, k), float64
    abundances : ndarray of shape (k, p), float64
    """
    seed = int(rng.integers(2**31 - 1))
    U, S, Vt = randomized_svd(X, n_components, random_state=seed)
    spectra = np.zeros((X.shape[0], n_components))
    abundances = np.zeros((n_components, X.shape[1]))
    # The leading singular pair of a nonnegative matrix can be taken nonnegative.
    spectra[:, 0] = np.sqrt(S[0]) * np.abs(U[:, 0])
    abundances[0] = np.sqrt(S[0]) * np.abs(Vt[0])
    for j in range(1, n_components):
        u, v = U[:, j], Vt[j]
        u_pos, u_neg = np.maximum(u, 0), np.maximum(-u, 0)
        v_pos, v_neg = np.maximum(v, 0), np.maximum(-v, 0)
        norm_pos = np.linalg.norm(u_pos) * np.linalg.norm(v_pos)
        norm_neg = np.linalg.norm(u_neg) * np.linalg.norm(v_neg)
        if norm_pos >= norm_neg:
            u_part, v_part, norm = u_pos, v_pos, norm_pos
        else:
            u_part, v_part, norm = u_neg, v_neg, norm_neg
        if norm == 0:
            continue
        scale = np.sqrt(S[j] * norm)
        spectra[:, j] = scale * u_part / np.linalg.norm(u_part)
        abundances[j] = scale * v_part / np.linalg.norm(v_part)
    # Zeros are filled as NNDSVD-a fills them on data scaled to a mean of 1 (with 1), then
    # scaled back: each factor gets sqrt(mean), like the SVD parts. Filling each with the
    # mean itself would make the start depend on the unit of the counts.
    fill = np.sqrt(X.sum() / (X.shape[0] * X.shape[1]))
    spectra[spectra == 0] = fill
    abundances[abundances == 0] = fill
    return spectra, abundances


def random_start(X, n_components, rng):
    """Random spectra and abundances scaled like ``sqrt(mean(X) / k)``.

    Returns
    -------
    spectra : ndarray of shape (c, k)
    abundances : ndarray of shape (k, p)
    """
    scale = np.sqrt(X.sum() / (X.shape[0] * X.shape[1]) / n_components)
    spectra = scale * np.abs(rng.standard_normal((X.shape[0], n_components)))
    abundances = scale * np.abs(rng.standard_normal((n_components, X.shape[1])))
    return spectra, abundances


def project_spectra(G, spectra, n_iterations=_PROJECTION_ITERATIONS):
    """W >= 0 with G W ≈ spectra in the KL sense (multiplicative updates, G fixed).

    Parameters
    ----------
    G : ndarray of shape (c, m)
    spectra : ndarray of shape (c, k)

    Returns
    -------
    ndarray of shape (m, k), float64
    """
    G = np.asarray(G, dtype=np.float64)
    column_sums = G.sum(axis=0)
    W = np.outer(1.0 / column_sums, spectra.sum(axis=0)) / G.shape[1]
    for _ in range(n_iterations):
        model = G @ W
        ratio = np.divide(spectra, model, out=np.zeros_like(model), where=model > 0)
        W *= (G.T @ ratio) / column_sums[:, None]
    return W


def _onto_simplex(values, free, target, eps):
    """Make the free entries of each column >= eps and sum to target.

    The excess over eps is rescaled, so a column that is already feasible is left as is.
    """
    free_values = np.where(free, np.maximum(values, eps), 0.0)
    n_free = free.sum(axis=0)
    excess = np.where(free, free_values - eps, 0.0)
    excess_sums = excess.sum(axis=0)
    room = target - n_free * eps
    share = np.divide(excess, excess_sums, out=np.zeros_like(excess), where=excess_sums > 0)
    even = np.where(free, 1.0 / np.maximum(n_free, 1), 0.0)
    share = np.where(excess_sums > 0, share, even)
    return np.where(free, eps + room * share, values)


def make_feasible(G, W, H, total_counts, *, simplex, simplex_rows, fixed_W, fixed_H, eps, rescale=True):
    """Scale a start to the data and project it onto bounds, fixed entries and simplex.

    Parameters
    ----------
    G : ndarray of shape (c, m)
    W : ndarray of shape (m, k)
    H : ndarray of shape (k, p)
    total_counts : float
        Σ X; the model total Σ GWH is matched to it (by scaling the factor that is not
        constrained).
    simplex : {"H", "W", None}
    simplex_rows : ndarray of bool of shape (m,) or None
    fixed_W, fixed_H : ndarray or None
        Negative entries free, others held.
    eps : float
    rescale : bool
        Whether to match the total counts (False for a W fixed by ``transform``).

    Returns
    -------
    W, H : float64 ndarrays, feasible.
    """
    W = np.maximum(np.array(W, dtype=np.float64), eps)
    H = np.maximum(np.array(H, dtype=np.float64), eps)
    free_W = np.ones(W.shape, bool) if fixed_W is None else fixed_W < 0
    free_H = np.ones(H.shape, bool) if fixed_H is None else fixed_H < 0
    W = np.where(free_W, W, fixed_W if fixed_W is not None else 0.0)
    H = np.where(free_H, H, fixed_H if fixed_H is not None else 0.0)
    if simplex == "H":
        target = 1.0 - np.sum(np.where(free_H, 0.0, H), axis=0)
        H = _onto_simplex(H, free_H, target, eps)
    elif simplex == "W":
        rows = np.flatnonzero(simplex_rows)
        # Rescale each phase as a whole (W column by 1/s, H row by s: G W H unchanged) so
        # that its free element rows sum to about 1; projecting the element rows alone would
        # leave the continuum rows at the scale of the counts, and the start would depend on
        # the unit of the counts.
        free_rows = free_W[rows]
        whole = np.all(free_W, axis=0) & np.all(free_H, axis=1)
        sums = np.sum(np.where(free_rows, W[rows], 0.0), axis=0)
        factor = np.where(whole & (sums > 0), sums, 1.0)
        W = np.where(whole[None, :], np.maximum(W / factor[None, :], eps), W)
        H = np.where(whole[:, None], np.maximum(H * factor[:, None], eps), H)
        target = 1.0 - np.sum(np.where(free_W[rows], 0.0, W[rows]), axis=0)
        W[rows] = _onto_simplex(W[rows], free_W[rows], target, eps)
    if rescale:
        # Scale the free entries of the unconstrained factor so that Σ G W H = Σ X exactly
        # (held entries stay), which also makes this projection idempotent.
        column_sums = G.sum(axis=0)
        if simplex == "W":
            held = float((column_sums @ W) @ np.where(free_H, 0.0, H).sum(axis=1))
            free_part = float((column_sums @ W) @ np.where(free_H, H, 0.0).sum(axis=1))
        else:
            held = float((column_sums @ np.where(free_W, 0.0, W)) @ H.sum(axis=1))
            free_part = float((column_sums @ np.where(free_W, W, 0.0)) @ H.sum(axis=1))
        if free_part > 0 and total_counts > held:
            factor = (total_counts - held) / free_part
            if simplex == "W":
                H = np.where(free_H, np.maximum(H * factor, eps), H)
            else:
                W = np.where(free_W, np.maximum(W * factor, eps), W)
    return W, H


# ---------------------------------------------------------------------------------------------
# Starts that find minor phases: work in the m columns of G, where the problem is small.
# ---------------------------------------------------------------------------------------------

_ABUNDANCE_ITERATIONS = 2
_MEAN_SPECTRUM_ITERATIONS = 200
_KMEANS_ITERATIONS = 30
_VERTEX_NEIGHBOURS = 30
_DENSE_SUBSPACE_LIMIT = 256  # columns of G: above, a randomized SVD finds the subspace


def element_abundances(step, G, channel_totals, pixel_totals, n_iterations=_ABUNDANCE_ITERATIONS):
    """Every pixel expressed in the m columns of G: A (m, p) with X ≈ G A.

    The start is the mean spectrum's own fit, shared out by each pixel's counts; then
    ``n_iterations`` KL multiplicative updates of A with G fixed (``step(A)``, the H step of
    the fit with W = identity), which move each pixel away from the mean towards its own
    content.

    Parameters
    ----------
    step : callable
        ``step(A) -> A_new``, one monotone KL update of A (m, p) with G fixed.
    G : ndarray of shape (c, m)
    channel_totals : ndarray of shape (c,)
    pixel_totals : ndarray of shape (p,)
    n_iterations : int

    Returns
    -------
    ndarray of shape (m, p), float64
    """
    mean_spectrum = channel_totals / max(pixel_totals.size, 1)
    mean_content = project_spectra(G, mean_spectrum[:, None], _MEAN_SPECTRUM_ITERATIONS)[:, 0]
    column_sums = G.sum(axis=0)
    mean_content = np.maximum(mean_content, 1e-6 * mean_content.max())
    A = np.outer(mean_content / float(column_sums @ mean_content), np.maximum(pixel_totals, 1e-3))
    for _ in range(n_iterations):
        A = np.asarray(step(A), dtype=np.float64)
    return A


def vertex_start(
    method,
    abundances,
    pixel_totals,
    n_components,
    rng,
    *,
    column_sums,
    eps,
    shape_2d=None,
    n_neighbours=_VERTEX_NEIGHBOURS,
):
    """A start from the extreme points of the pixels' content (near-separable NMF).

    Each pixel's share of counts in each column of G lies, up to noise, in the convex hull of
    the k phases' shares. The shares are projected onto their leading k-dimensional subspace
    (which keeps the phases and drops most of the noise), the k phase points are found there,
    and each pixel's abundances are its mixture of them.

    Parameters
    ----------
    method : {"spa", "kmeans"}
        "spa": successive projection (Gillis & Vavasis 2014) picks k extreme points, each
        averaged with its nearest neighbours, then refined by weighted k-means started from
        them (deterministic); "kmeans": weighted k-means with k-means++ seeding from ``rng``.
    abundances : ndarray or sparse matrix of shape (m, p)
        Each pixel in the m columns of G (:func:`element_abundances`; the counts themselves
        when G is the identity).
    pixel_totals : ndarray of shape (p,)
    n_components : int
    rng : numpy.random.Generator
    column_sums : ndarray of shape (m,)
        Column sums of G.
    eps : float
    shape_2d : (int, int) or None
        Pixel grid. When given, each pixel's content (and counts) is summed with its 8
        neighbours before the phases are looked for: nine times the counts, so a third of
        the noise, at the price of blurring the edges of particles over one pixel.

    Returns
    -------
    W : ndarray of shape (m, k), columns with Σ G W = 1
    H : ndarray of shape (k, p), columns summing to the pixel's counts
    """
    k = n_components
    raw = _count_fractions(abundances, column_sums)
    raw_totals = np.asarray(pixel_totals, dtype=np.float64)
    if shape_2d is not None and not sp.issparse(abundances):
        smoothed_totals = _box_sum(raw_totals[None, :], shape_2d)[0]
        search = _count_fractions(_box_sum(np.asarray(abundances, dtype=np.float64), shape_2d), column_sums)
    else:
        smoothed_totals, search = raw_totals, raw
    kept = np.flatnonzero(smoothed_totals > 0)
    weights = smoothed_totals[kept]
    search = search[:, kept]
    basis = _leading_subspace(search, weights, k, rng)
    coordinates = np.asarray((search.T @ basis).T)  # (k, q)
    # a vertex averages a few of the nearest points, never a large share of a small image
    n_neighbours = max(1, min(n_neighbours, coordinates.shape[1] // (4 * k)))
    seeds = spa_vertices(coordinates, k, weights, n_neighbours) if method == "spa" else None
    centres, labels = kmeans_vertices(coordinates, k, weights, rng, seeds=seeds, return_labels=True)
    vertex_fractions = _core_shares(raw, raw_totals, kept, coordinates, centres, labels, basis)
    vertex_fractions = np.maximum(vertex_fractions, 0.0)
    empty = vertex_fractions.sum(axis=0) <= 0
    vertex_fractions[:, empty] = 1.0
    vertex_fractions /= vertex_fractions.sum(axis=0, keepdims=True)
    W = vertex_fractions / column_sums[:, None]
    # each pixel's abundances: its (smoothed: less noisy) content as a mixture of the
    # phases, times its own counts
    mixture, *_ = np.linalg.lstsq(basis.T @ vertex_fractions, coordinates, rcond=None)
    mixture = np.maximum(mixture, eps)
    mixture /= mixture.sum(axis=0, keepdims=True)
    H = np.full((k, raw_totals.size), eps)
    H[:, kept] = mixture * raw_totals[kept][None, :]
    return W, H


def _core_shares(raw, raw_totals, kept, coordinates, centres, labels, basis):
    """Each phase's shares (m, k): the raw content of the half of its cluster nearest the
    centre, weighted by counts.

    The neighbour sums found the clusters but blur particle edges; the raw shares of the
    most typical members do not. A cluster without such members keeps its centre.
    """
    shares = np.empty((basis.shape[0], centres.shape[0]))
    for j, centre in enumerate(centres):
        members = np.flatnonzero(labels == j)
        core = np.zeros(0, dtype=int)
        if members.size:
            spread = np.sum((coordinates[:, members] - centre[:, None]) ** 2, axis=0)
            core = kept[members[spread <= np.median(spread)]]
            core = core[raw_totals[core] > 0]
        if core.size == 0:
            shares[:, j] = basis @ centre
        else:
            shares[:, j] = np.asarray(raw[:, core] @ raw_totals[core]).ravel() / raw_totals[core].sum()
    return shares


def _count_fractions(abundances, column_sums):
    """Share of each pixel's modelled counts in each column of G, (m, p); 0 for empty pixels."""
    if sp.issparse(abundances):
        counts = sp.csr_array(sp.diags_array(column_sums) @ sp.csr_array(abundances))
        totals = np.asarray(counts.sum(axis=0)).ravel()
        inverse = np.divide(1.0, totals, out=np.zeros_like(totals), where=totals > 0)
        return sp.csc_array(counts @ sp.diags_array(inverse))
    counts = column_sums[:, None] * np.asarray(abundances, dtype=np.float64)
    totals = counts.sum(axis=0, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def _box_sum(values, shape_2d):
    """Sum of each pixel and its (up to 8) neighbours on the grid; values (n, ny * nx)."""
    ny, nx = shape_2d
    grid = values.reshape(values.shape[0], ny, nx)
    padded = np.pad(grid, ((0, 0), (1, 1), (1, 1)))
    total = np.zeros_like(grid)
    for dy in range(3):
        for dx in range(3):
            total += padded[:, dy : dy + ny, dx : dx + nx]
    return total.reshape(values.shape)


def _leading_subspace(fractions, weights, n_components, rng):
    """Orthonormal basis (m, k) of the leading weighted (uncentred) subspace of the fractions."""
    m = fractions.shape[0]
    root = np.sqrt(weights)
    if m <= _DENSE_SUBSPACE_LIMIT:
        weighted = fractions @ sp.diags_array(root) if sp.issparse(fractions) else fractions * root
        scatter = np.asarray(
            (weighted @ weighted.T).todense() if sp.issparse(weighted) else weighted @ weighted.T
        )
        values, vectors = np.linalg.eigh(scatter)
        return vectors[:, ::-1][:, :n_components]
    weighted = sp.csr_array(fractions @ sp.diags_array(root)) if sp.issparse(fractions) else fractions * root
    U, _, _ = randomized_svd(weighted, n_components, random_state=int(rng.integers(2**31 - 1)))
    return U


def spa_vertices(coordinates, n_components, weights, n_neighbours):
    """Successive projection (Gillis & Vavasis 2014) on the subspace coordinates.

    Each point is, up to noise, a convex mixture of the k phase points; SPA picks the point
    of largest residual norm, projects it out and repeats. To damp the noise of a single
    pixel, each picked vertex is the weighted mean of its ``n_neighbours`` nearest points.

    Returns
    -------
    ndarray of shape (k, k)
        The vertex coordinates.
    """
    q = coordinates.shape[1]
    residual = coordinates.copy()
    vertices = []
    first_norm = None
    for _ in range(n_components):
        norms = np.einsum("ij,ij->j", residual, residual)
        pick = int(np.argmax(norms))
        first_norm = norms[pick] if first_norm is None else first_norm
        if norms[pick] <= 1e-12 * first_norm:
            # k exceeds the dimension the points span (k > m): take the point farthest
            # from the vertices found so far, so that no two vertices coincide
            gaps = np.min([np.sum((coordinates - v[:, None]) ** 2, axis=0) for v in vertices], axis=0)
            pick = int(np.argmax(gaps))
        distance = np.sum((coordinates - coordinates[:, [pick]]) ** 2, axis=0)
        nearest = np.argpartition(distance, min(n_neighbours, q - 1))[:n_neighbours]
        vertices.append(coordinates[:, nearest] @ weights[nearest] / weights[nearest].sum())
        direction = residual[:, pick] / np.sqrt(max(norms[pick], 1e-300))
        residual = residual - np.outer(direction, direction @ residual)
    return np.array(vertices)


def kmeans_vertices(
    coordinates, n_components, weights, rng, n_iterations=_KMEANS_ITERATIONS, seeds=None, return_labels=False
):
    """Weighted k-means (k-means++ seeding, Lloyd iterations) of the coordinates.

    ``seeds`` (k, k), when given, replaces the k-means++ seeding.

    Returns
    -------
    centres : ndarray of shape (k, k)
    labels : ndarray of int of shape (q,)
        Each point's cluster, with ``return_labels``.
    """
    points = coordinates.T
    if seeds is not None:
        centres = np.array(seeds, dtype=np.float64)
    else:
        centres = _kmeans_plus_plus(points, n_components, weights, rng)
    for _ in range(n_iterations):
        labels = _nearest_centre(points, centres)
        new = centres.copy()
        for j in range(n_components):
            members = labels == j
            if members.any():
                new[j] = weights[members] @ points[members] / weights[members].sum()
            else:  # an empty cluster moves to the point farthest from every centre
                gaps = np.min(np.sum((points[:, None, :] - new[None]) ** 2, axis=2), axis=1)
                new[j] = points[int(np.argmax(gaps))]
        if np.allclose(new, centres):
            break
        centres = new
    if return_labels:
        return centres, _nearest_centre(points, centres)
    return centres


def _kmeans_plus_plus(points, n_components, weights, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007), each point weighted."""
    q = points.shape[0]
    centres = np.empty((n_components, points.shape[1]))
    centres[0] = points[rng.choice(q, p=weights / weights.sum())]
    distance = np.sum((points - centres[0]) ** 2, axis=1)
    for j in range(1, n_components):
        probabilities = weights * distance
        total = probabilities.sum()
        choice = rng.choice(q, p=probabilities / total) if total > 0 else rng.integers(q)
        centres[j] = points[choice]
        distance = np.minimum(distance, np.sum((points - centres[j]) ** 2, axis=1))
    return centres


def _nearest_centre(points, centres):
    distances = (
        np.sum(points**2, axis=1)[:, None] - 2 * points @ centres.T + np.sum(centres**2, axis=1)[None, :]
    )
    return np.argmin(distances, axis=1)

"""A slow, loop-by-loop SmoothNMF written from docs/solver.md, independent of the package.

Plain Python loops over entries, lists of neighbours, bisection for every multiplier. Used
only to check the vectorised reference on tiny problems.
"""

import math


def _neighbours(shape_2d):
    ny, nx = shape_2d
    table = []
    for iy in range(ny):
        for ix in range(nx):
            around = []
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                y, x = iy + dy, ix + dx
                if 0 <= y < ny and 0 <= x < nx:
                    around.append(y * nx + x)
            table.append(around)
    return table


def _model(G, W, H):
    c, m = len(G), len(G[0])
    k, p = len(H), len(H[0])
    B = [[sum(G[i][l] * W[l][q] for l in range(m)) for q in range(k)] for i in range(c)]
    Y = [[sum(B[i][q] * H[q][j] for q in range(k)) for j in range(p)] for i in range(c)]
    return B, Y


def objective(X, G, W, H, shape_2d, lambda_L, mu, epsilon_reg):
    """KL + (λ/2) Σ_edges (h_p − h_q)² + Σ μ_k log(H + ε_r)."""
    _, Y = _model(G, W, H)
    kl = 0.0
    for i in range(len(X)):
        for j in range(len(X[0])):
            kl += Y[i][j] - X[i][j]
            if X[i][j] > 0:
                kl += X[i][j] * math.log(X[i][j] / Y[i][j])
    laplacian = 0.0
    if lambda_L > 0:
        table = _neighbours(shape_2d)
        for q in range(len(H)):
            for p, around in enumerate(table):
                for r in around:
                    if r > p:
                        laplacian += (H[q][p] - H[q][r]) ** 2
        laplacian *= lambda_L / 2
    sparsity = 0.0
    for q in range(len(H)):
        for p in range(len(H[0])):
            sparsity += mu[q] * math.log(H[q][p] + epsilon_reg)
    return kl + laplacian + sparsity


def _term_minimiser(a, beta, c):
    """Positive root of 2a h² + β h − c = 0 (β > 0 here)."""
    return 2 * c / (beta + math.sqrt(beta * beta + 8 * a * c))


def _bisect_multiplier(terms, target, eps):
    """ν with Σ max(eps, h*(β + ν)) = target over terms [(a, β, c)], by bisection."""

    def total(nu):
        s = 0.0
        for a, beta, c in terms:
            shifted = beta + nu
            if a == 0 and shifted <= 0:
                return math.inf
            if shifted > 0:
                h = _term_minimiser(a, shifted, c)
            else:
                h = (math.sqrt(shifted * shifted + 8 * a * c) - shifted) / (4 * a)
            s += max(eps, h)
        return s

    if all(a == 0 for a, _, _ in terms):
        low = -min(beta for _, beta, c in terms if c > 0)
    else:
        low = -1.0
        while total(low) < target:
            low *= 2
    high = 1.0
    while total(high) > target:
        high *= 2
    for _ in range(400):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if total(middle) > target:
            low = middle
        else:
            high = middle
    nu = high if abs(total(high) - target) < abs(total(low) - target) else low
    return nu


def h_update(X, G, W, H, shape_2d, lambda_L, mu, epsilon_reg, simplex, fixed_H, eps):
    c_, k, p = len(X), len(H), len(H[0])
    B, Y = _model(G, W, H)
    table = _neighbours(shape_2d) if lambda_L > 0 else None
    coefficients = [[None] * p for _ in range(k)]
    for q in range(k):
        b = sum(B[i][q] for i in range(c_))
        for j in range(p):
            numerator = H[q][j] * sum(B[i][q] * X[i][j] / Y[i][j] for i in range(c_))
            a = 0.0
            cc = numerator
            if table is not None:
                a = lambda_L / 2 * len(table[j])
                cc += lambda_L * H[q][j] * sum(H[q][r] for r in table[j])
            beta = b + mu[q] / (H[q][j] + epsilon_reg)
            coefficients[q][j] = (a, beta, cc)
    H_new = [[0.0] * p for _ in range(k)]
    for j in range(p):
        free = [q for q in range(k) if fixed_H is None or fixed_H[q][j] < 0]
        for q in range(k):
            if q not in free:
                H_new[q][j] = fixed_H[q][j]
        if simplex:
            target = 1.0 - sum(H_new[q][j] for q in range(k) if q not in free)
            nu = _bisect_multiplier([coefficients[q][j] for q in free], target, eps)
        else:
            nu = 0.0
        for q in free:
            a, beta, cc = coefficients[q][j]
            H_new[q][j] = max(eps, _term_minimiser(a, beta + nu, cc))
    return H_new


def w_update(X, G, W, H, simplex_rows, fixed_W, eps):
    c_, m, k, p = len(X), len(W), len(H), len(H[0])
    _, Y = _model(G, W, H)
    W_new = [[0.0] * k for _ in range(m)]
    for q in range(k):
        r = sum(H[q][j] for j in range(p))
        terms = {}
        for l in range(m):
            g = sum(G[i][l] for i in range(c_))
            numerator = W[l][q] * sum(
                G[i][l] * X[i][j] / Y[i][j] * H[q][j] for i in range(c_) for j in range(p)
            )
            terms[l] = (0.0, g * r, numerator)
        free = [l for l in range(m) if fixed_W is None or fixed_W[l][q] < 0]
        for l in range(m):
            if l not in free:
                W_new[l][q] = fixed_W[l][q]
        constrained = [l for l in free if simplex_rows is not None and simplex_rows[l]]
        nu = 0.0
        if constrained:
            held = sum(W_new[l][q] for l in range(m) if simplex_rows[l] and l not in free)
            nu = _bisect_multiplier([terms[l] for l in constrained], 1.0 - held, eps)
        for l in free:
            _, beta, numerator = terms[l]
            shift = nu if l in constrained else 0.0
            W_new[l][q] = max(eps, numerator / (beta + shift))
    return W_new


def fit(
    X,
    G,
    W,
    H,
    n_iter,
    shape_2d=None,
    lambda_L=0.0,
    mu=None,
    epsilon_reg=1.0,
    simplex=None,
    simplex_rows=None,
    fixed_W=None,
    fixed_H=None,
    eps=1e-10,
):
    """n_iter alternations (H then W) from the given start; lists of lists in and out."""
    mu = mu if mu is not None else [0.0] * len(H)
    for _ in range(n_iter):
        H = h_update(X, G, W, H, shape_2d, lambda_L, mu, epsilon_reg, simplex == "H", fixed_H, eps)
        W = w_update(X, G, W, H, simplex_rows if simplex == "W" else None, fixed_W, eps)
    return W, H

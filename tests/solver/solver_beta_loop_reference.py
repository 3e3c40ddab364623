"""A slow loop-by-loop MM fit for any β-divergence and observed-entry weights.

Written from the convex/concave split of Févotte & Idier (2011) as stated in
docs/solver.md, independently of the package: the surrogate's derivative is summed entry
by entry from the derivatives of the convex part (taken at the Jensen point) and of the
concave part (its tangent), and every 1-D minimiser, and every simplex multiplier, is found
by plain bisection. Lists of lists in and out; tiny problems only.
"""

import math

N_BISECT = 200


def divergence(x, y, beta):
    if beta == 1:
        return (x * math.log(x / y) if x > 0 else 0.0) - x + y
    if beta == 0:
        return x / y - math.log(x / y) - 1
    return (x**beta + (beta - 1) * y**beta - beta * x * y ** (beta - 1)) / (beta * (beta - 1))


def _convex_slope(x, y, beta):
    """d/dy of the convex part of d_β(x | y)."""
    if beta < 1:
        return -x * y ** (beta - 2)
    if beta <= 2:
        return y ** (beta - 1) - x * y ** (beta - 2)
    return y ** (beta - 1)


def _concave_slope(x, y, beta):
    """d/dy of the concave part of d_β(x | y) (0 when there is none)."""
    if beta < 1:
        return y ** (beta - 1)
    if beta <= 2:
        return 0.0
    return -x * y ** (beta - 2)


def _neighbours(shape_2d):
    ny, nx = shape_2d
    table = []
    for iy in range(ny):
        for ix in range(nx):
            table.append(
                [
                    y * nx + x
                    for y, x in ((iy - 1, ix), (iy + 1, ix), (iy, ix - 1), (iy, ix + 1))
                    if 0 <= y < ny and 0 <= x < nx
                ]
            )
    return table


def _model(G, W, H):
    B = [[sum(G[i][l] * W[l][q] for l in range(len(W))) for q in range(len(H))] for i in range(len(G))]
    Y = [[sum(B[i][q] * H[q][j] for q in range(len(H))) for j in range(len(H[0]))] for i in range(len(G))]
    return B, Y


def objective(X, M, G, W, H, beta, shape_2d, lambda_L, mu, epsilon_reg):
    _, Y = _model(G, W, H)
    total = sum(
        divergence(X[i][j], Y[i][j], beta) for i in range(len(X)) for j in range(len(X[0])) if M[i][j]
    )
    if lambda_L > 0:
        table = _neighbours(shape_2d)
        total += (
            lambda_L
            / 2
            * sum(
                (H[q][p] - H[q][r]) ** 2
                for q in range(len(H))
                for p in range(len(H[0]))
                for r in table[p]
                if r > p
            )
        )
    total += sum(mu[q] * math.log(H[q][p] + epsilon_reg) for q in range(len(H)) for p in range(len(H[0])))
    return total


def _root(slope, eps, shift):
    """argmin over [eps, ∞) of a convex term with derivative slope(h) + shift (bisection)."""
    if slope(eps) + shift >= 0:
        return eps
    low, high = math.log(eps), math.log(eps)
    while slope(math.exp(high)) + shift < 0:
        low, high = high, high + 2.0
    for _ in range(N_BISECT):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if slope(math.exp(middle)) + shift < 0:
            low = middle
        else:
            high = middle
    return math.exp(0.5 * (low + high))


def _on_simplex(slopes, target, eps):
    """Entries minimising Σ terms with Σ h = target: bisection on the multiplier."""

    def total(nu):
        return sum(_root(s, eps, nu) for s in slopes)

    low, high = -1.0, 1.0
    while total(low) < target:
        low *= 2
    while total(high) > target:
        high *= 2
    for _ in range(N_BISECT):
        middle = 0.5 * (low + high)
        if middle in (low, high):
            break
        if total(middle) > target:
            low = middle
        else:
            high = middle
    nu = 0.5 * (low + high)
    return [_root(s, eps, nu) for s in slopes]


def h_update(X, M, G, W, H, beta, shape_2d, lambda_L, mu, epsilon_reg, simplex, eps):
    c_, k, p = len(X), len(H), len(H[0])
    B, Y = _model(G, W, H)
    table = _neighbours(shape_2d) if lambda_L > 0 else None
    slopes = [[None] * p for _ in range(k)]
    for q in range(k):
        for j in range(p):
            h0 = H[q][j]
            terms = [(B[i][q], X[i][j], Y[i][j]) for i in range(c_) if M[i][j]]
            tangent = sum(b * _concave_slope(x, y, beta) for b, x, y in terms)
            lin = mu[q] / (h0 + epsilon_reg)
            a = c = 0.0
            if table is not None:
                a = lambda_L / 2 * len(table[j])
                c = lambda_L * h0 * sum(H[q][r] for r in table[j])

            def slope(h, terms=terms, tangent=tangent, lin=lin, a=a, c=c, h0=h0):
                jensen = sum(b * _convex_slope(x, y * h / h0, beta) for b, x, y in terms)
                return jensen + tangent + lin + 2 * a * h - c / h

            slopes[q][j] = slope
    H_new = [[0.0] * p for _ in range(k)]
    for j in range(p):
        if simplex:
            column = _on_simplex([slopes[q][j] for q in range(k)], 1.0, eps)
        else:
            column = [_root(slopes[q][j], eps, 0.0) for q in range(k)]
        for q in range(k):
            H_new[q][j] = column[q]
    return H_new


def w_update(X, M, G, W, H, beta, eps):
    c_, m, k, p = len(X), len(W), len(H), len(H[0])
    _, Y = _model(G, W, H)
    W_new = [[0.0] * k for _ in range(m)]
    for l in range(m):
        for q in range(k):
            w0 = W[l][q]
            terms = [(G[i][l] * H[q][j], X[i][j], Y[i][j]) for i in range(c_) for j in range(p) if M[i][j]]
            tangent = sum(g * _concave_slope(x, y, beta) for g, x, y in terms)

            def slope(w, terms=terms, tangent=tangent, w0=w0):
                return sum(g * _convex_slope(x, y * w / w0, beta) for g, x, y in terms) + tangent

            W_new[l][q] = _root(slope, eps, 0.0)
    return W_new


def fit(
    X,
    M,
    G,
    W,
    H,
    beta,
    n_iter,
    shape_2d=None,
    lambda_L=0.0,
    mu=None,
    epsilon_reg=1.0,
    simplex=None,
    eps=1e-10,
):
    """n_iter alternations (H then W); ``M`` is 1 on observed entries, 0 on missing ones."""
    mu = mu if mu is not None else [0.0] * len(H)
    for _ in range(n_iter):
        H = h_update(X, M, G, W, H, beta, shape_2d, lambda_L, mu, epsilon_reg, simplex == "H", eps)
        W = w_update(X, M, G, W, H, beta, eps)
    return W, H

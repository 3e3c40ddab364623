"""numba kernels of the fast backend: one pass over the pixels' nonzeros.

Every kernel works on a contiguous range of pixel *blocks* (``block_start[b]`` to
``block_start[b + 1]``) and writes the block's partial sums to its own row of the output
arrays, so that the caller can run blocks on any number of threads and reduce the rows in
a fixed order: results do not depend on the thread count. All arithmetic is float64.

The data is :class:`~espm_cli.solver._sparse_data.PixelNonzeros` (pixel ``j``'s channels
``channel_index[pixel_start[j]:pixel_start[j+1]]`` and counts). B = G W is (c, k), H is
(k, p) as in docs/solver.md. The kernels are compiled with ``cache=True`` and ``nogil=True``
(the caller's threads run them concurrently). The passes are compiled with FMA
contraction (``fastmath={"contract"}``), nothing else.
"""

import math

import numpy as np
from numba import njit

from espm_cli.solver.simplex import quadratic_log_root, simplex_root

# Bit patterns for weighted_log_sum: adding _SQRT_HALF_OFFSET to a float64's bits moves
# mantissas >= sqrt(2) into the next binade, so the mantissa taken with _MANTISSA_MASK and
# rebased at sqrt(1/2) (_SQRT_HALF_BITS) lies in [sqrt(1/2), sqrt(2)).
_MANTISSA_MASK = 0x000FFFFFFFFFFFFF
_SQRT_HALF_BITS = 0x3FE6A09E667F3BCD
_SQRT_HALF_OFFSET = 0x3FF0000000000000 - _SQRT_HALF_BITS
_LOG_2 = math.log(2.0)
# The passes let LLVM fuse a multiply and an add into one FMA (one rounding instead of
# two): about 10-15 % less time per pass. Only "contract": no reassociation, so the order
# of every sum stays fixed by the code and the data (results independent of threads).
_CONTRACT = {"contract"}


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract", "reassoc", "nsz", "arcp"})
def weighted_log_sum(model, counts, bits):
    """``Σ_t counts[t] log model[t]`` for positive normal ``model``, vectorised.

    ``log`` without a library call, so the loop runs in SIMD lanes (about 4x faster than
    calling ``math.log`` per nonzero): model = 2^e m with m in [sqrt(1/2), sqrt(2)) read
    from the bits, and ``log m = 2 atanh(s)``, s = (m - 1) / (m + 1), |s| < 0.172, summed
    to s^21 (relative error below 3e-16, tested against ``math.log``).

    Parameters
    ----------
    model : ndarray of float64, shape (n,)
    counts : ndarray, shape (n,)
    bits : ndarray of int64, shape (>= n,)
        Scratch space.

    Returns
    -------
    float
    """
    n = model.shape[0]
    model_bits = model.view(np.int64)
    mantissa_bits = bits[:n]
    for t in range(n):
        shifted = model_bits[t] + _SQRT_HALF_OFFSET
        mantissa_bits[t] = (shifted & _MANTISSA_MASK) + _SQRT_HALF_BITS
    mantissa = mantissa_bits.view(np.float64)
    total = 0.0
    for t in range(n):
        exponent = np.float64((model_bits[t] + _SQRT_HALF_OFFSET) >> 52) - 1023.0
        s = (mantissa[t] - 1.0) / (mantissa[t] + 1.0)
        s2 = s * s
        series = 1.0 / 21.0
        series = series * s2 + 1.0 / 19.0
        series = series * s2 + 1.0 / 17.0
        series = series * s2 + 1.0 / 15.0
        series = series * s2 + 1.0 / 13.0
        series = series * s2 + 1.0 / 11.0
        series = series * s2 + 1.0 / 9.0
        series = series * s2 + 1.0 / 7.0
        series = series * s2 + 1.0 / 5.0
        series = series * s2 + 1.0 / 3.0
        series = series * s2 + 1.0
        total += np.float64(counts[t]) * (2.0 * s * series + exponent * _LOG_2)
    return total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def count_ratio_pass(
    pixel_start,
    channel_index,
    counts,
    B,
    H,
    block_start,
    first_block,
    end_block,
    weighted_ratio,
    log_model_partial,
):
    """Per pixel ``(Bᵀ (X / B H))`` and the block's ``Σ X log(B H)`` over the nonzeros.

    A pixel's model values are kept in a scratch row and their weighted logs summed by
    :func:`weighted_log_sum` after the pixel (vectorised, no per-nonzero library call).

    Parameters
    ----------
    pixel_start, channel_index, counts : ndarray
        The nonzeros by pixel.
    B : ndarray of shape (c, kb), float64
        ``G @ W``; when ``kb == 4`` the columns past ``k`` must be zero (padding that lets
        the per-nonzero sums stay in registers for k <= 4).
    H : ndarray of shape (k, p), float64
    block_start : ndarray of int64, shape (n_blocks + 1,)
    first_block, end_block : int
        The blocks this call processes.
    weighted_ratio : ndarray of shape (k, p), float64
        Output: column j receives ``Σ_i B_ik X_ij / Y_ij`` (the KL numerator before the
        multiplication by H).
    log_model_partial : ndarray of shape (n_blocks,), float64
        Output: ``Σ X_ij log Y_ij`` over the block's nonzeros.
    """
    k = H.shape[0]
    h = np.empty(k)
    accumulated = np.empty(k)
    longest = 0
    for j in range(block_start[first_block], block_start[end_block]):
        longest = max(longest, pixel_start[j + 1] - pixel_start[j])
    model = np.empty(longest)
    bits = np.empty(longest, dtype=np.int64)
    for block in range(first_block, end_block):
        log_sum = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            start = pixel_start[j]
            end = pixel_start[j + 1]
            if B.shape[1] == 4:  # k <= 4: everything in registers
                h0, h1, h2, h3 = _padded_column4(H, j)
                a0 = a1 = a2 = a3 = 0.0
                for n in range(start, end):
                    i = channel_index[n]
                    b0, b1, b2, b3 = B[i, 0], B[i, 1], B[i, 2], B[i, 3]
                    y = b0 * h0 + b1 * h1 + b2 * h2 + b3 * h3
                    model[n - start] = y
                    r = np.float64(counts[n]) / y
                    a0 += b0 * r
                    a1 += b1 * r
                    a2 += b2 * r
                    a3 += b3 * r
                _store_column4(weighted_ratio, j, a0, a1, a2, a3)
            else:
                for kk in range(k):
                    h[kk] = H[kk, j]
                    accumulated[kk] = 0.0
                for n in range(start, end):
                    i = channel_index[n]
                    y = 0.0
                    for kk in range(k):
                        y += B[i, kk] * h[kk]
                    model[n - start] = y
                    r = np.float64(counts[n]) / y
                    for kk in range(k):
                        accumulated[kk] += B[i, kk] * r
                for kk in range(k):
                    weighted_ratio[kk, j] = accumulated[kk]
            log_sum += weighted_log_sum(model[: end - start], counts[start:end], bits)
        log_model_partial[block] = log_sum


@njit(cache=True, nogil=True, inline="always")
def _padded_column4(H, j):
    """H[:, j] as four scalars, zeros past the last row."""
    k = H.shape[0]
    h0 = H[0, j]
    h1 = H[1, j] if k > 1 else 0.0
    h2 = H[2, j] if k > 2 else 0.0
    h3 = H[3, j] if k > 3 else 0.0
    return h0, h1, h2, h3


@njit(cache=True, nogil=True, inline="always")
def _store_column4(out, j, a0, a1, a2, a3):
    k = out.shape[0]
    out[0, j] = a0
    if k > 1:
        out[1, j] = a1
    if k > 2:
        out[2, j] = a2
    if k > 3:
        out[3, j] = a3


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def h_update_pass(
    pixel_start,
    channel_index,
    counts,
    B,
    b,
    pixel_b,
    H,
    weighted_ratio,
    mu,
    epsilon_reg,
    lambda_L,
    grid_rows,
    grid_cols,
    simplex,
    fixed,
    eps,
    block_start,
    first_block,
    end_block,
    H_new,
    ratio_times_H_partial,
    row_sum_partial,
):
    """Update H pixel by pixel and accumulate the W step's ``(X / B H_new) H_newᵀ``.

    Parameters
    ----------
    pixel_start, channel_index, counts : ndarray
        The nonzeros by pixel.
    B : ndarray of shape (c, kb), float64
        ``G @ W`` (W is the same for the H and the following W step), zero-padded to 4
        columns when k < 4 (see :func:`count_ratio_pass`).
    b : ndarray of shape (k,)
        Column sums of B.
    pixel_b : ndarray of shape (k, p) or (0, 0)
        With masked pixels or entries: per pixel, the column sums of B over its observed
        channels (from :func:`observed_column_sums_pass`), used instead of ``b``; an
        empty array means every entry is observed.
    H : ndarray of shape (k, p), float64
        The current H (read only; neighbours are read from it).
    weighted_ratio : ndarray of shape (k, p)
        ``Bᵀ (X / B H)`` from :func:`count_ratio_pass` (for these B and H).
    mu : ndarray of shape (k,)
        Sparsity weights (zeros for none).
    epsilon_reg, lambda_L : float
    grid_rows, grid_cols : int
        The pixel grid; ``lambda_L = 0`` switches the Laplacian off.
    simplex : bool
    fixed : ndarray of shape (k, p) or (0, 0)
        Entries >= 0 are held; an empty array means none.
    eps : float
    block_start, first_block, end_block
        As in :func:`count_ratio_pass`.
    H_new : ndarray of shape (k, p), float64
        Output.
    ratio_times_H_partial : ndarray of shape (n_blocks, c, kb), float64
        Output: row ``block`` receives ``Σ_{j in block} (X_ij / Y_ij) H_new[k, j]``.
    row_sum_partial : ndarray of shape (n_blocks, k), float64
        Output: the block's row sums of H_new.
    """
    k = H.shape[0]
    has_fixed = fixed.shape[0] > 0
    per_pixel = pixel_b.shape[0] > 0
    a_entries = np.empty(k)
    beta = np.empty(k)
    c = np.empty(k)
    h = np.empty(k)
    h_old = np.empty(k)
    free = np.empty(k, dtype=np.bool_)
    for block in range(first_block, end_block):
        partial = ratio_times_H_partial[block]
        partial[:, :] = 0.0
        for kk in range(k):
            row_sum_partial[block, kk] = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            a = 0.0
            row = j // grid_cols
            col = j - row * grid_cols
            if lambda_L > 0.0:
                degree = 0
                if row > 0:
                    degree += 1
                if row < grid_rows - 1:
                    degree += 1
                if col > 0:
                    degree += 1
                if col < grid_cols - 1:
                    degree += 1
                a = 0.5 * lambda_L * degree
            fixed_mass = 0.0
            for kk in range(k):
                h0 = H[kk, j]
                h_old[kk] = h0
                beta[kk] = pixel_b[kk, j] if per_pixel else b[kk]
                if mu[kk] > 0.0:
                    beta[kk] += mu[kk] / (h0 + epsilon_reg)
                c[kk] = h0 * weighted_ratio[kk, j]
                if lambda_L > 0.0:
                    neighbours = 0.0
                    if row > 0:
                        neighbours += H[kk, j - grid_cols]
                    if row < grid_rows - 1:
                        neighbours += H[kk, j + grid_cols]
                    if col > 0:
                        neighbours += H[kk, j - 1]
                    if col < grid_cols - 1:
                        neighbours += H[kk, j + 1]
                    c[kk] += lambda_L * h0 * neighbours
                free[kk] = True
                if has_fixed and fixed[kk, j] >= 0.0:
                    free[kk] = False
                    fixed_mass += fixed[kk, j]
            if simplex:
                a_entries[:] = a
                simplex_root(a_entries, beta, c, free, k, 1.0 - fixed_mass, eps, h, h_old)
            else:
                for kk in range(k):
                    h[kk] = max(quadratic_log_root(a, beta[kk], c[kk]), eps)
            for kk in range(k):
                if not free[kk]:
                    h[kk] = fixed[kk, j]
                H_new[kk, j] = h[kk]
                row_sum_partial[block, kk] += h[kk]
            _accumulate_ratio_times_h(pixel_start, channel_index, counts, B, h, j, partial)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _accumulate_ratio_times_h(pixel_start, channel_index, counts, B, h, j, partial):
    """``partial[i, :] += (X_ij / (B h)_i) h`` over pixel j's nonzeros (B padded as above)."""
    if B.shape[1] == 4:
        k = h.shape[0]
        h0 = h[0]
        h1 = h[1] if k > 1 else 0.0
        h2 = h[2] if k > 2 else 0.0
        h3 = h[3] if k > 3 else 0.0
        for n in range(pixel_start[j], pixel_start[j + 1]):
            i = channel_index[n]
            r = np.float64(counts[n]) / (B[i, 0] * h0 + B[i, 1] * h1 + B[i, 2] * h2 + B[i, 3] * h3)
            partial[i, 0] += r * h0
            partial[i, 1] += r * h1
            partial[i, 2] += r * h2
            partial[i, 3] += r * h3
        return
    k = B.shape[1]
    for n in range(pixel_start[j], pixel_start[j + 1]):
        i = channel_index[n]
        y = 0.0
        for kk in range(k):
            y += B[i, kk] * h[kk]
        r = np.float64(counts[n]) / y
        for kk in range(k):
            partial[i, kk] += r * h[kk]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def ratio_times_H_pass(
    pixel_start, channel_index, counts, B, H, block_start, first_block, end_block, ratio_times_H_partial
):
    """The block's ``Σ_j (X_ij / (B H)_ij) H_kj``, shape (c, kb), for a W step on its own."""
    k = H.shape[0]
    h = np.empty(k)
    for block in range(first_block, end_block):
        partial = ratio_times_H_partial[block]
        partial[:, :] = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            for kk in range(k):
                h[kk] = H[kk, j]
            _accumulate_ratio_times_h(pixel_start, channel_index, counts, B, h, j, partial)


@njit(cache=True, nogil=True, error_model="numpy")
def stream_nonzeros_pass(pixel_start, channel_index, counts, block_start, first_block, end_block, partial):
    """Lower bound for a pass: read every nonzero once (Σ counts + Σ channel indices)."""
    for block in range(first_block, end_block):
        total = 0.0
        for n in range(pixel_start[block_start[block]], pixel_start[block_start[block + 1]]):
            total += np.float64(counts[n]) + np.float64(channel_index[n])
        partial[block] = total


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def frobenius_h_pass(
    pixel_start,
    channel_index,
    counts,
    B,
    gram,
    H,
    mu,
    epsilon_reg,
    lambda_L,
    grid_rows,
    grid_cols,
    simplex,
    fixed,
    eps,
    block_start,
    first_block,
    end_block,
    H_new,
    counts_times_H_partial,
):
    """The Frobenius (β = 2) H step pixel by pixel, and the W step's ``X H_newᵀ``.

    Pixel j's surrogate (docs/solver.md) is ``a_k h² + β_k h − c_k log h`` with
    ``a_k = (λ/2) deg_j + (BᵀB h⁰)_k / (2 h⁰_k)``, ``β_k = mu_k / (h⁰_k + ε_r) − (Bᵀ x_j)_k``
    and ``c_k = λ h⁰_k Σ_neighbours h⁰``: ``Bᵀ x_j`` comes from the pixel's nonzeros, the
    model term from the Gram matrix, so nothing of size channels x pixels is formed.

    Parameters
    ----------
    pixel_start, channel_index, counts : ndarray
        The nonzeros by pixel.
    B : ndarray of shape (c, kb), float64
        ``G @ W``, zero-padded to 4 columns when k < 4 (see :func:`count_ratio_pass`).
    gram : ndarray of shape (k, k), float64
        ``Bᵀ B``.
    H : ndarray of shape (k, p), float64
        The current H (read only).
    mu, epsilon_reg, lambda_L, grid_rows, grid_cols, simplex, fixed, eps
        As in :func:`h_update_pass`.
    block_start, first_block, end_block
        As in :func:`count_ratio_pass`.
    H_new : ndarray of shape (k, p), float64
        Output.
    counts_times_H_partial : ndarray of shape (n_blocks, c, kb), float64
        Output: row ``block`` receives ``Σ_{j in block} X_ij H_new[k, j]``.
    """
    k = H.shape[0]
    has_fixed = fixed.shape[0] > 0
    a_entries = np.empty(k)
    beta = np.empty(k)
    c = np.empty(k)
    h = np.empty(k)
    h_old = np.empty(k)
    data_part = np.empty(k)
    free = np.empty(k, dtype=np.bool_)
    for block in range(first_block, end_block):
        partial = counts_times_H_partial[block]
        partial[:, :] = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            _counts_times_B(pixel_start, channel_index, counts, B, j, data_part)
            a = 0.0
            row = j // grid_cols
            col = j - row * grid_cols
            if lambda_L > 0.0:
                degree = 0
                if row > 0:
                    degree += 1
                if row < grid_rows - 1:
                    degree += 1
                if col > 0:
                    degree += 1
                if col < grid_cols - 1:
                    degree += 1
                a = 0.5 * lambda_L * degree
            fixed_mass = 0.0
            for kk in range(k):
                h0 = H[kk, j]
                h_old[kk] = h0
                model = 0.0
                for ll in range(k):
                    model += gram[kk, ll] * H[ll, j]
                a_entries[kk] = a + 0.5 * model / h0
                beta[kk] = -data_part[kk]
                if mu[kk] > 0.0:
                    beta[kk] += mu[kk] / (h0 + epsilon_reg)
                c[kk] = 0.0
                if lambda_L > 0.0:
                    neighbours = 0.0
                    if row > 0:
                        neighbours += H[kk, j - grid_cols]
                    if row < grid_rows - 1:
                        neighbours += H[kk, j + grid_cols]
                    if col > 0:
                        neighbours += H[kk, j - 1]
                    if col < grid_cols - 1:
                        neighbours += H[kk, j + 1]
                    c[kk] = lambda_L * h0 * neighbours
                free[kk] = True
                if has_fixed and fixed[kk, j] >= 0.0:
                    free[kk] = False
                    fixed_mass += fixed[kk, j]
            if simplex:
                simplex_root(a_entries, beta, c, free, k, 1.0 - fixed_mass, eps, h, h_old)
            else:
                for kk in range(k):
                    h[kk] = max(quadratic_log_root(a_entries[kk], beta[kk], c[kk]), eps)
            for kk in range(k):
                if not free[kk]:
                    h[kk] = fixed[kk, j]
                H_new[kk, j] = h[kk]
            _accumulate_counts_times_h(pixel_start, channel_index, counts, h, j, partial)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _counts_times_B(pixel_start, channel_index, counts, B, j, out):
    """``out[:k] = Bᵀ x_j`` over pixel j's nonzeros (B padded as above)."""
    k = out.shape[0]
    if B.shape[1] == 4:
        a0 = a1 = a2 = a3 = 0.0
        for n in range(pixel_start[j], pixel_start[j + 1]):
            i = channel_index[n]
            x = np.float64(counts[n])
            a0 += B[i, 0] * x
            a1 += B[i, 1] * x
            a2 += B[i, 2] * x
            a3 += B[i, 3] * x
        out[0] = a0
        if k > 1:
            out[1] = a1
        if k > 2:
            out[2] = a2
        if k > 3:
            out[3] = a3
        return
    for kk in range(k):
        out[kk] = 0.0
    for n in range(pixel_start[j], pixel_start[j + 1]):
        i = channel_index[n]
        x = np.float64(counts[n])
        for kk in range(k):
            out[kk] += B[i, kk] * x


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _accumulate_counts_times_h(pixel_start, channel_index, counts, h, j, partial):
    """``partial[i, :] += X_ij h`` over pixel j's nonzeros (partial padded to 4 if k < 4)."""
    k = h.shape[0]
    if partial.shape[1] == 4:
        h0 = h[0]
        h1 = h[1] if k > 1 else 0.0
        h2 = h[2] if k > 2 else 0.0
        h3 = h[3] if k > 3 else 0.0
        for n in range(pixel_start[j], pixel_start[j + 1]):
            i = channel_index[n]
            x = np.float64(counts[n])
            partial[i, 0] += x * h0
            partial[i, 1] += x * h1
            partial[i, 2] += x * h2
            partial[i, 3] += x * h3
        return
    for n in range(pixel_start[j], pixel_start[j + 1]):
        i = channel_index[n]
        x = np.float64(counts[n])
        for kk in range(k):
            partial[i, kk] += x * h[kk]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def counts_times_H_pass(
    pixel_start, channel_index, counts, H, block_start, first_block, end_block, counts_times_H_partial
):
    """The block's ``Σ_j X_ij H_kj``, shape (c, kb), for a Frobenius W step or objective."""
    k = H.shape[0]
    h = np.empty(k)
    for block in range(first_block, end_block):
        partial = counts_times_H_partial[block]
        partial[:, :] = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            for kk in range(k):
                h[kk] = H[kk, j]
            _accumulate_counts_times_h(pixel_start, channel_index, counts, h, j, partial)


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def observed_column_sums_pass(
    missing_start, missing_channel, B, b, pixel_weight, block_start, first_block, end_block, pixel_b
):
    """Per pixel, the column sums of B over its observed channels: ``w_j b − Σ_{i ∈ S_j} B_i``.

    ``S_j`` is pixel j's missing channels (``missing_channel[missing_start[j]:
    missing_start[j + 1]]``) and ``w_j`` its weight (0 for a masked pixel): the H step's
    denominator and the model total of KL over the observed entries. Cost: one read of B's
    row per missing entry.

    Parameters
    ----------
    missing_start : ndarray of int64, shape (p + 1,)
    missing_channel : ndarray of int, shape (n_missing,)
    B : ndarray of shape (c, kb), float64
    b : ndarray of shape (k,)
        Column sums of B.
    pixel_weight : ndarray of shape (p,), float64
    block_start, first_block, end_block
        As in :func:`count_ratio_pass`.
    pixel_b : ndarray of shape (k, p), float64
        Output.
    """
    k = pixel_b.shape[0]
    missed = np.empty(k)
    for j in range(block_start[first_block], block_start[end_block]):
        w = pixel_weight[j]
        if B.shape[1] == 4:  # k <= 4: the sums in registers
            m0 = m1 = m2 = m3 = 0.0
            for n in range(missing_start[j], missing_start[j + 1]):
                i = missing_channel[n]
                m0 += B[i, 0]
                m1 += B[i, 1]
                m2 += B[i, 2]
                m3 += B[i, 3]
            _store_column4(pixel_b, j, w * b[0] - m0, w * b[1] - m1, w * b[2] - m2, w * b[3] - m3)
            continue
        for kk in range(k):
            missed[kk] = 0.0
        for n in range(missing_start[j], missing_start[j + 1]):
            i = missing_channel[n]
            for kk in range(k):
                missed[kk] += B[i, kk]
        for kk in range(k):
            pixel_b[kk, j] = w * b[kk] - missed[kk]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=_CONTRACT)
def missing_times_H_pass(missing_start, missing_channel, H, block_start, first_block, end_block, partial):
    """The block's ``Σ_{j : i ∈ S_j} H_kj`` per channel i, shape (c, k): the W step's correction.

    Parameters
    ----------
    missing_start, missing_channel : ndarray
        As in :func:`observed_column_sums_pass`.
    H : ndarray of shape (k, p), float64
    block_start, first_block, end_block
        As in :func:`count_ratio_pass`.
    partial : ndarray of shape (n_blocks, c, kb), float64
        Output: row ``block`` receives the block's sums; ``kb = 4`` for k <= 4 (the
        columns past k stay zero), else k.
    """
    k = H.shape[0]
    for block in range(first_block, end_block):
        out = partial[block]
        out[:, :] = 0.0
        for j in range(block_start[block], block_start[block + 1]):
            if out.shape[1] == 4:  # k <= 4: H's column in registers
                h0, h1, h2, h3 = _padded_column4(H, j)
                for n in range(missing_start[j], missing_start[j + 1]):
                    i = missing_channel[n]
                    out[i, 0] += h0
                    out[i, 1] += h1
                    out[i, 2] += h2
                    out[i, 3] += h3
                continue
            for n in range(missing_start[j], missing_start[j + 1]):
                i = missing_channel[n]
                for kk in range(k):
                    out[i, kk] += H[kk, j]

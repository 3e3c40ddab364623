"""The 4-neighbour pixel grid behind the Laplacian regulariser.

Pixels are stored row-major (hyperspy's unfolding): pixel ``iy * nx + ix`` of an image of
shape ``(ny, nx)``. The Laplacian is never built as a matrix: its three uses (degrees,
neighbour sums, the energy ``Σ_edges (h_p - h_q)²``) are array shifts.
"""

import numpy as np


def grid_degrees(shape_2d):
    """Number of 4-neighbours of every pixel.

    Parameters
    ----------
    shape_2d : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    degrees : ndarray of shape (ny * nx,)
        Float64 degrees (2 in corners, 3 on edges, 4 inside; fewer for 1-pixel-wide grids).
    """
    ny, nx = shape_2d
    degrees = np.zeros((ny, nx))
    degrees[1:, :] += 1
    degrees[:-1, :] += 1
    degrees[:, 1:] += 1
    degrees[:, :-1] += 1
    return degrees.ravel()


def neighbour_sum(H, shape_2d):
    """Sum of the 4-neighbours of every pixel, per component: ``(A Hᵀ)ᵀ``.

    Parameters
    ----------
    H : ndarray of shape (k, ny * nx)
    shape_2d : tuple of int

    Returns
    -------
    ndarray of shape (k, ny * nx), same dtype as H.
    """
    ny, nx = shape_2d
    maps = H.reshape(H.shape[0], ny, nx)
    total = np.zeros_like(maps)
    total[:, 1:, :] += maps[:, :-1, :]
    total[:, :-1, :] += maps[:, 1:, :]
    total[:, :, 1:] += maps[:, :, :-1]
    total[:, :, :-1] += maps[:, :, 1:]
    return total.reshape(H.shape)


def laplacian_energy(H, shape_2d):
    """``tr(H Δ Hᵀ) = Σ_k Σ_edges (H_kp - H_kq)²``, accumulated in float64.

    Parameters
    ----------
    H : ndarray of shape (k, ny * nx)
    shape_2d : tuple of int

    Returns
    -------
    float
    """
    ny, nx = shape_2d
    maps = H.reshape(H.shape[0], ny, nx).astype(np.float64, copy=False)
    vertical = np.diff(maps, axis=1)
    horizontal = np.diff(maps, axis=2)
    return float(np.sum(vertical * vertical) + np.sum(horizontal * horizontal))

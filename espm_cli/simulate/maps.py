"""Abundance maps made of simple shapes: particles, layers, gradients.

The first phase is the background (what the others leave); each further phase takes
one shape. Every pixel's abundances sum to 1.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("particles", "layer", "gradient")


def particles_map(shape: tuple[int, int], rng: np.random.Generator, n_particles: int | None = None) -> np.ndarray:
    """Round particles with soft edges (values in [0, 1])."""
    ny, nx = shape
    n_particles = n_particles or max(2, (ny * nx) // 400)
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = np.zeros(shape)
    smallest = max(1.5, min(ny, nx) / 16)
    for _ in range(n_particles):
        radius = rng.uniform(smallest, 2 * smallest)
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        distance = np.hypot(yy - cy, xx - cx)
        image = np.maximum(image, np.clip(radius + 0.5 - distance, 0.0, 1.0))
    return image


def layer_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A horizontal band a quarter of the image high, with a slightly wavy edge."""
    ny, nx = shape
    x = np.arange(nx)
    centre = rng.uniform(0.6, 0.8) * ny
    half = max(1.0, ny / 8)
    wave = 0.04 * ny * np.sin(2 * np.pi * x / nx + rng.uniform(0, 2 * np.pi))
    yy = np.arange(ny)[:, None]
    distance = np.abs(yy - (centre + wave)[None, :])
    return np.clip(half + 0.5 - distance, 0.0, 1.0)


def gradient_map(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A linear ramp from 0 to 0.8 across the image, in a random direction."""
    ny, nx = shape
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:ny, 0:nx]
    ramp = np.cos(angle) * xx / max(1, nx - 1) + np.sin(angle) * yy / max(1, ny - 1)
    ramp -= ramp.min()
    return 0.8 * ramp / max(ramp.max(), 1e-12)


_MAKERS = {"particles": particles_map, "layer": layer_map, "gradient": gradient_map}


def abundance_maps(shape: tuple[int, int], n_phases: int, shapes=None, *, rng=None) -> np.ndarray:
    """Abundance maps (n_phases, ny, nx), >= 0, summing to 1 in every pixel.

    Parameters
    ----------
    shape : (int, int)
        (ny, nx).
    n_phases : int
        Number of phases (>= 1).
    shapes : sequence of str, optional
        Shape of phases 2, 3, ... from ``SHAPES``; default cycles particles, layer, gradient.
    rng : numpy.random.Generator, optional
    """
    rng = np.random.default_rng(rng)
    if n_phases < 1:
        raise ValueError(f"n_phases must be >= 1, got {n_phases}")
    shapes = list(shapes) if shapes else [SHAPES[i % len(SHAPES)] for i in range(n_phases - 1)]
    for name in shapes:
        if name not in _MAKERS:
            raise ValueError(f"shape {name!r} is not allowed; choose from {', '.join(SHAPES)}")
    if len(shapes) < n_phases - 1:
        shapes += [SHAPES[i % len(SHAPES)] for i in range(len(shapes), n_phases - 1)]
    foreground = np.zeros((n_phases - 1, *shape))
    for index in range(n_phases - 1):
        foreground[index] = _MAKERS[shapes[index]](shape, rng)
    # later shapes sit on top of earlier ones: each takes its share of what is left
    remaining = np.ones(shape)
    for index in range(n_phases - 1)[::-1]:
        foreground[index] *= remaining
        remaining = remaining - foreground[index]
    return np.concatenate([np.clip(remaining, 0.0, 1.0)[None], foreground])

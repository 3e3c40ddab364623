"""Abundance maps made of simple shapes: particles, layers, gradients.

The first phase is the background (what the others leave); each further phase takes
one shape. Every pixel's abundances sum to 1.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("particles", "layer", "gradient")


#: n π r̄² / (ny nx) of the default particles at 128 x 128 (40 particles, r̄ = 12 pixels).
_COVERAGE_DENSITY = 40 * np.pi * 12.0**2 / 128**2


def particles_map(
    shape: tuple[int, int],
    rng: np.random.Generator,
    n_particles: int | None = None,
    *,
    coverage: float | None = None,
    radius: float | None = None,
) -> np.ndarray:
    """Round particles with soft edges (values in [0, 1]).

    Parameters
    ----------
    shape : (int, int)
        (ny, nx).
    rng : numpy.random.Generator
    n_particles : int, optional
        How many particles; default about one per 400 pixels, at most as many as cover
        about two thirds of the image on average (so that larger images, whose default
        particles are larger too, keep their matrix); ignored with ``coverage``.
    coverage : float, optional
        Add particles until they cover this share of the image (a minor phase).
    radius : float, optional
        Mean particle radius in pixels (each drawn in [0.75, 1.25] x radius); default
        between 1/16 and 1/8 of the smaller image side.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    image = np.zeros(shape)
    if radius is None:
        smallest = max(1.5, min(ny, nx) / 16)
        low, high = smallest, 2 * smallest
    else:
        low, high = 0.75 * radius, 1.25 * radius
    if coverage is not None:
        n_particles = ny * nx  # an upper bound: stop at the coverage
    elif not n_particles:
        # one per 400 pixels up to 128 x 128 (40 particles); beyond, the radius grows
        # with the side, so the count is capped where the expected covered share
        # 1 − exp(−n π r̄² / (ny nx)) is that of 128 x 128 (about 0.67): without the cap
        # a 512 x 512 image was covered whole and the first phase was absent
        mean_radius = 0.5 * (low + high)
        capped = round(_COVERAGE_DENSITY * ny * nx / (np.pi * mean_radius**2))
        n_particles = max(2, min((ny * nx) // 400, capped))
    for _ in range(n_particles):
        if coverage is not None and image.mean() >= coverage:
            break
        r = rng.uniform(low, high)
        cy, cx = rng.uniform(0, ny), rng.uniform(0, nx)
        distance = np.hypot(yy - cy, xx - cx)
        image = np.maximum(image, np.clip(r + 0.5 - distance, 0.0, 1.0))
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


def parse_shape(spec: str):
    """A shape name and its options from ``"particles"`` or ``"particles:COVERAGE[:RADIUS]"``.

    Returns
    -------
    (str, dict)
        The shape name and the keyword arguments of its maker.
    """
    name, *values = str(spec).split(":")
    if name not in _MAKERS:
        raise ValueError(f"shape {name!r} is not allowed; choose from {', '.join(SHAPES)}")
    if values and name != "particles" or len(values) > 2:
        raise ValueError(
            f"shape {spec!r} is not allowed; only particles take options, as "
            "particles:COVERAGE or particles:COVERAGE:RADIUS (e.g. particles:0.04:6)"
        )
    options = {}
    try:
        numbers = [float(value) for value in values]
    except ValueError:
        numbers = None
    if numbers is None or (numbers and not 0 < numbers[0] < 1) or (len(numbers) > 1 and not numbers[1] > 0):
        raise ValueError(
            f"shape {spec!r} is not allowed; COVERAGE must be in (0, 1) and "
            "RADIUS (pixels) > 0, e.g. particles:0.04:6"
        )
    for key, value in zip(("coverage", "radius"), numbers):
        options[key] = value
    return name, options


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
        Particles take a coverage and a radius: ``"particles:0.04:6"`` (see
        :func:`parse_shape`).
    rng : numpy.random.Generator, optional
    """
    rng = np.random.default_rng(rng)
    if n_phases < 1:
        raise ValueError(f"n_phases must be >= 1, got {n_phases}")
    shapes = list(shapes) if shapes else [SHAPES[i % len(SHAPES)] for i in range(n_phases - 1)]
    parsed = [parse_shape(spec) for spec in shapes]
    if len(parsed) < n_phases - 1:
        parsed += [(SHAPES[i % len(SHAPES)], {}) for i in range(len(parsed), n_phases - 1)]
    foreground = np.zeros((n_phases - 1, *shape))
    for index in range(n_phases - 1):
        name, options = parsed[index]
        foreground[index] = _MAKERS[name](shape, rng, **options)
    # later shapes sit on top of earlier ones: each takes its share of what is left
    remaining = np.ones(shape)
    for index in range(n_phases - 1)[::-1]:
        foreground[index] *= remaining
        remaining = remaining - foreground[index]
    return np.concatenate([np.clip(remaining, 0.0, 1.0)[None], foreground])

"""Figure of the phases: each abundance map beside its spectrum."""

from __future__ import annotations

from typing import Any

import numpy as np

#: Elements named in a spectrum's title: the richest few.
_ELEMENTS_IN_TITLE = 4


def _axis_extent(axis):
    """(low, high) edges of a hyperspy navigation axis, in its units."""
    low = axis.offset - axis.scale / 2
    return low, low + axis.scale * axis.size


def _title(index, results):
    """The phase's name, and its richest detected elements (none for continuum / empty)."""
    name = results.names[index]
    composition = results.composition
    row = np.nan_to_num(composition.atomic_percent[index], nan=0.0)
    if row.sum() <= 0:
        return name
    order = np.argsort(row)[::-1][:_ELEMENTS_IN_TITLE]
    parts = ", ".join(f"{composition.elements[i]} {row[i]:.0f}%" for i in order if row[i] >= 0.5)
    return f"{name}: {parts}"


def phase_figure(
    results: Any, axes_manager: Any, *, figsize: tuple[float, float] | None = None, cmap: str = "viridis"
) -> Any:
    """Draw ``results`` (a PhaseResults) as k rows of (map, spectrum).

    Parameters
    ----------
    results : PhaseResults
    axes_manager : hyperspy AxesManager
        Of the decomposed signal: gives the map extent and the energy axis.
    figsize : tuple of float, optional
    cmap : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n_phases = results.maps.shape[0]
    if figsize is None:
        figsize = (10.0, 2.6 * n_phases + 0.4)
    figure, axes = plt.subplots(
        n_phases, 2, figsize=figsize, squeeze=False, gridspec_kw={"width_ratios": [1, 2]}
    )
    navigation_axes = axes_manager.navigation_axes
    energies = np.asarray(results.energy)  # keV, the fit window
    extent = None
    if len(navigation_axes) == 2:
        x_low, x_high = _axis_extent(navigation_axes[0])
        y_low, y_high = _axis_extent(navigation_axes[1])
        extent = (x_low, x_high, y_high, y_low)
    for index in range(n_phases):
        map_axes, spectrum_axes = axes[index]
        image = map_axes.imshow(
            results.maps[index],
            cmap=cmap,
            extent=extent,
            aspect="equal" if extent else "auto",
            interpolation="nearest",
        )
        figure.colorbar(image, ax=map_axes, fraction=0.046, pad=0.04)
        map_axes.set_title(f"{results.names[index]} map")
        if extent is not None:
            map_axes.set_xlabel(_label(navigation_axes[0]))
            map_axes.set_ylabel(_label(navigation_axes[1]))
        spectrum_axes.plot(energies, results.spectra[index], lw=1.0)
        spectrum_axes.set_title(_title(index, results))
        spectrum_axes.set_xlim(energies[0], energies[-1])
        spectrum_axes.set_ylabel("counts per pixel")
    axes[-1][1].set_xlabel("energy (keV)")
    figure.tight_layout()
    return figure


def _label(axis, default_units=None):
    name = axis.name if isinstance(axis.name, str) and axis.name else ""
    units = axis.units if isinstance(axis.units, str) and axis.units else default_units
    return f"{name} ({units})" if units else name

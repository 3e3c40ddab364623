"""PNG figures of a decomposition result: maps, spectra, composition, convergence.

matplotlib is imported inside the functions, with the non-interactive Agg backend,
so that importing this module costs nothing and no window ever opens.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..io.atomic import atomic_path
from ..io.result_file import DecompositionResult

#: Lines weaker than this fraction of their element's strongest line are not drawn.
LINE_DRAW_FRACTION = 0.2


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)
    return path


def phase_names(result: DecompositionResult) -> list[str]:
    """The names of the phases: the result's own (``"phase 1 (Fe-Pt)"``,
    ``"phase 2 (continuum)"``, ``"phase 3 (empty)"``), or for files that have none,
    "phase 1", ... with the two main elements when known."""
    if result.phase_names and len(result.phase_names) == result.n_components:
        return list(result.phase_names)
    names = []
    composition = np.asarray(result.composition)
    for index in range(result.n_components):
        label = f"phase {index + 1}"
        if composition.size and len(result.elements) and np.all(np.isnan(composition[index])):
            label += " (no element lines)"
        elif composition.size and len(result.elements):
            row = np.nan_to_num(composition[index])
            top = [result.elements[i] for i in np.argsort(row)[::-1][:2] if row[i] >= 0.5]
            if top:
                label += f" ({'-'.join(top)})"
        names.append(label)
    return names


def plot_maps(result: DecompositionResult, path: str | Path) -> Path:
    """One panel per phase map with a colour bar; axes in the pixel unit when known."""
    plt = _pyplot()
    maps = np.asarray(result.maps)
    k, ny, nx = maps.shape
    columns = min(k, 4)
    rows = math.ceil(k / columns)
    figure, axes = plt.subplots(
        rows, columns, figsize=(3.8 * columns, 3.3 * rows), squeeze=False, layout="constrained"
    )
    if result.pixel_size:
        extent = (0, nx * result.pixel_size, ny * result.pixel_size, 0)
        unit = result.pixel_unit or ""
    else:
        extent, unit = None, "pixels"
    for index, axis in enumerate(axes.flat):
        if index >= k:
            axis.set_visible(False)
            continue
        image = axis.imshow(maps[index], cmap="viridis", extent=extent, interpolation="nearest")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set_title(phase_names(result)[index], fontsize=10)
        axis.set_xlabel(f"x ({unit})")
        if index % columns == 0:
            axis.set_ylabel(f"y ({unit})")
    figure.suptitle("Abundance maps")
    return _save(figure, path)


def _strongest_lines(result: DecompositionResult) -> list[dict]:
    """Lines worth marking: per element and family (K, L, M), the strongest one.

    Families weaker than LINE_DRAW_FRACTION of the element's strongest line are left out.
    """
    energy = np.asarray(result.energy)
    low, high = float(energy.min()), float(energy.max())
    strongest: dict[tuple[str, str], dict] = {}
    for line in result.lines:
        if not low <= line["energy_keV"] <= high:
            continue
        key = (line["element"], str(line["line"])[:1])
        if key not in strongest or line["weight"] > strongest[key]["weight"]:
            strongest[key] = line
    top = {}
    for (element, _), line in strongest.items():
        top[element] = max(top.get(element, 0.0), line["weight"])
    chosen = [
        line
        for (element, _), line in strongest.items()
        if line["weight"] >= LINE_DRAW_FRACTION * top[element]
    ]
    return sorted(chosen, key=lambda line: line["energy_keV"])


def plot_spectra(result: DecompositionResult, path: str | Path, *, log: bool = False) -> Path:
    """Each phase's spectrum (counts per pixel) over the data's mean spectrum.

    The phase spectra sum to the model's mean spectrum; each element's main lines are
    marked, the strongest one labelled.
    """
    plt = _pyplot()
    energy = np.asarray(result.energy)
    figure, axis = plt.subplots(figsize=(10, 4.8))
    if np.size(result.mean_spectrum):
        axis.plot(energy, result.mean_spectrum, color="0.6", lw=1.0, label="data (mean)")
    spectra = np.asarray(result.spectra)
    for name, spectrum in zip(phase_names(result), spectra):
        axis.plot(energy, spectrum, lw=1.2, label=name)
    axis.plot(energy, spectra.sum(axis=0), color="k", lw=0.8, ls="--", label="model (sum)")
    if log:
        positive = (
            np.concatenate(
                [spectra[spectra > 0], np.asarray(result.mean_spectrum)[np.asarray(result.mean_spectrum) > 0]]
            )
            if spectra.size
            else np.array([1.0])
        )
        axis.set_yscale("log")
        if positive.size:
            axis.set_ylim(bottom=max(positive.min(), positive.max() * 1e-5))
    transform = axis.get_xaxis_transform()  # x in keV, y in axes fraction
    span = float(energy.max() - energy.min()) or 1.0
    previous, level = -np.inf, 0
    for line in _strongest_lines(result):
        axis.axvline(line["energy_keV"], color="0.75", lw=0.6, ls=":", zorder=0)
        # stagger labels of lines closer than 2 % of the axis so that they stay legible
        level = (level + 1) % 3 if line["energy_keV"] - previous < 0.02 * span else 0
        previous = line["energy_keV"]
        name = str(line["line"]).rstrip("0123456789")
        axis.text(
            line["energy_keV"],
            0.98 - 0.1 * level,
            f"{line['element']} {name}",
            transform=transform,
            va="top",
            ha="center",
            fontsize=7,
            color="0.25",
            bbox={"boxstyle": "round,pad=0.1", "fc": "white", "ec": "none", "alpha": 0.7},
        )
    axis.set_xlim(energy.min(), energy.max())
    axis.set_xlabel("energy (keV)")
    axis.set_ylabel("counts per pixel")
    axis.legend(fontsize=8, loc="upper right")
    axis.set_title("Phase spectra")
    return _save(figure, path)


def plot_composition(result: DecompositionResult, path: str | Path) -> Path:
    """Grouped bars: at.% of each element in each phase."""
    plt = _pyplot()
    composition = np.nan_to_num(np.asarray(result.composition, dtype=float))
    elements = list(result.elements)
    figure, axis = plt.subplots(
        figsize=(max(5.0, 0.9 * max(1, len(elements)) * max(1, result.n_components) / 2 + 3), 4)
    )
    if not elements:
        axis.text(0.5, 0.5, "no physics model: no composition", ha="center", va="center")
        axis.set_axis_off()
        return _save(figure, path)
    positions = np.arange(len(elements))
    width = 0.8 / result.n_components
    for index, name in enumerate(phase_names(result)):
        axis.bar(
            positions + (index - (result.n_components - 1) / 2) * width, composition[index], width, label=name
        )
    axis.set_xticks(positions, elements)
    axis.set_ylabel("at.%")
    axis.set_ylim(0, 100)
    axis.legend(fontsize=8)
    axis.set_title("Composition of each phase")
    return _save(figure, path)


def plot_convergence(result: DecompositionResult, path: str | Path) -> Path:
    """The objective and each of its non-constant terms per iteration."""
    plt = _pyplot()
    history = np.asarray(result.loss_history, dtype=float)
    names = list(result.loss_names) or [
        f"term {i}" for i in range(history.shape[-1] if history.ndim == 2 else 0)
    ]
    last = len(names) - 1  # the total
    shown = [last] if names else []
    if history.size:
        # each term that varies and is not simply the total (regularisers off)
        shown += [
            i
            for i in range(last)
            if np.ptp(history[:, i]) > 0 and not np.allclose(history[:, i], history[:, last])
        ]
    figure, axes = plt.subplots(
        1, max(1, len(shown)), figsize=(4 * max(1, len(shown)), 3.4), squeeze=False, layout="constrained"
    )
    iterations = np.arange(1, history.shape[0] + 1) if history.ndim == 2 else np.array([])
    for axis, index in zip(axes.flat, shown):
        if history.size:
            axis.plot(iterations, history[:, index], lw=1.2)
        axis.set_title(names[index], fontsize=10)
        axis.set_xlabel("iteration")
    status = "converged" if result.converged else "not converged"
    figure.suptitle(f"Objective per iteration ({result.n_iter} iterations, {status})")
    return _save(figure, path)

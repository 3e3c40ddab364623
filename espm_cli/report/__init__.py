"""Figures (PNG) and tables (CSV) of a decomposition result."""

from __future__ import annotations

from pathlib import Path

from .compare import PhaseMatch, compare_to_truth, spectral_angles_deg
from .figures import phase_names, plot_composition, plot_convergence, plot_maps, plot_spectra
from .tables import composition_rows, write_composition_csv

__all__ = [
    "PhaseMatch",
    "compare_to_truth",
    "spectral_angles_deg",
    "composition_rows",
    "phase_names",
    "plot_composition",
    "plot_convergence",
    "plot_maps",
    "plot_spectra",
    "write_composition_csv",
    "write_report",
]


def write_report(result, folder: str | Path, *, log_spectra: bool = False) -> list[Path]:
    """Write maps.png, spectra.png, composition.png, convergence.png, composition.csv.

    Parameters
    ----------
    result : espm_cli.io.DecompositionResult
    folder : str or pathlib.Path
        Existing, writable folder.
    log_spectra : bool, default False
        Logarithmic intensity axis for spectra.png.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    folder = Path(folder)
    return [
        plot_maps(result, folder / "maps.png"),
        plot_spectra(result, folder / "spectra.png", log=log_spectra),
        plot_composition(result, folder / "composition.png"),
        plot_convergence(result, folder / "convergence.png"),
        write_composition_csv(result, folder / "composition.csv"),
    ]

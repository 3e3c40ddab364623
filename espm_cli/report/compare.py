"""How close a decomposition came to a known truth (simulated data)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..io.result_file import DecompositionResult


@dataclasses.dataclass
class PhaseMatch:
    """One fitted phase matched to one true phase."""

    fitted: int
    true: int
    spectral_angle_deg: float
    map_correlation: float
    atomic_percent_error: float


def spectral_angles_deg(fitted: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Angles (degrees) between every fitted and every true spectrum, (k_fit, k_true)."""
    a = fitted / np.maximum(np.linalg.norm(fitted, axis=1, keepdims=True), 1e-300)
    b = true / np.maximum(np.linalg.norm(true, axis=1, keepdims=True), 1e-300)
    return np.degrees(np.arccos(np.clip(a @ b.T, -1.0, 1.0)))


def compare_to_truth(result: DecompositionResult, truth: DecompositionResult) -> list[PhaseMatch]:
    """Match fitted to true phases (smallest total spectral angle) and score each pair.

    The at.% error is the mean absolute difference over the elements both share.
    Spectra are compared on the result's energy axis (the truth is interpolated onto it).

    Raises
    ------
    ValueError
        When the two energy axes do not overlap.
    """
    from scipy.optimize import linear_sum_assignment

    fitted, true = np.asarray(result.spectra, float), np.asarray(truth.spectra, float)
    energy, true_energy = np.asarray(result.energy, float), np.asarray(truth.energy, float)
    if energy.shape != true_energy.shape or not np.allclose(energy, true_energy):
        if energy.min() >= true_energy.max() or energy.max() <= true_energy.min():
            raise ValueError("the result's energy axis does not overlap the truth's")
        # compare on the result's channels (e.g. after the low-energy cut)
        true = np.array([np.interp(energy, true_energy, spectrum) for spectrum in true])
    angles = spectral_angles_deg(fitted, true)
    rows, columns = linear_sum_assignment(angles)
    shared = [e for e in truth.elements if e in result.elements]
    matches = []
    for i, j in zip(rows, columns):
        fitted_map, true_map = np.ravel(result.maps[i]), np.ravel(truth.maps[j])
        if fitted_map.shape == true_map.shape and np.std(fitted_map) > 0 and np.std(true_map) > 0:
            correlation = float(np.corrcoef(fitted_map, true_map)[0, 1])
        else:
            correlation = float("nan")
        if shared:
            # an element below detection has no composition: it counts as absent (0 at.%)
            fit_at = np.nan_to_num(
                np.array([result.composition[i][result.elements.index(e)] for e in shared])
            )
            true_at = np.array([truth.composition[j][truth.elements.index(e)] for e in shared])
            error = float(np.mean(np.abs(fit_at - true_at)))
        else:
            error = float("nan")
        matches.append(PhaseMatch(int(i), int(j), float(angles[i, j]), correlation, error))
    return sorted(matches, key=lambda match: match.true)

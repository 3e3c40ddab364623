"""A family of hard simulated cases for the start of SmoothNMF (issue: the right phases).

Each case is a matrix phase on most of the pixels and several minor phases (2-10 % of the
pixels, as particles), often sharing elements, at a given dose. ``make_case`` draws one
with :mod:`espm_cli.simulate`; ``score`` compares a fit with its truth: the mean spectral
angle of the phases (matched by the smallest total angle) and the mean absolute at.% error
over the elements of the matched phases.

Used by ``bench_start.py``; importable on its own (numpy and espm_cli only).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from espm_cli.simulate import SimulationSettings, simulate
from espm_cli.simulate.phases import Phase

SILICATE = Phase("silicate", {"O": 62.0, "Si": 30.0, "Al": 8.0})
FEPT = Phase("FePt", {"Fe": 50.0, "Pt": 50.0})
TIO2 = Phase("TiO2", {"Ti": 33.3, "O": 66.7})
ILMENITE = Phase("FeTiO3", {"Fe": 20.0, "Ti": 20.0, "O": 60.0})
NIO = Phase("NiO", {"Ni": 50.0, "O": 50.0})
ZRO2 = Phase("ZrO2", {"Zr": 33.3, "O": 66.7})
STEEL = Phase("steel", {"Fe": 70.0, "Cr": 19.0, "Ni": 11.0})
CARBIDE = Phase("Cr carbide", {"Cr": 70.0, "Fe": 9.0, "C": 21.0})
MNS = Phase("MnS", {"Mn": 50.0, "S": 50.0})
AL_MATRIX = Phase("Al alloy", {"Al": 95.0, "Mg": 3.0, "Si": 2.0})
MG2SI = Phase("Mg2Si", {"Mg": 66.7, "Si": 33.3})
AL2CU = Phase("Al2Cu", {"Al": 66.7, "Cu": 33.3})
ALFESI = Phase("AlFeSi", {"Al": 65.0, "Fe": 20.0, "Si": 15.0})
ALUMINA = Phase("Al2O3", {"Al": 40.0, "O": 60.0})


@dataclasses.dataclass(frozen=True)
class Case:
    """One hard case: phases (the first is the matrix), particle shapes, dose."""

    name: str
    phases: tuple
    shapes: tuple
    dose: float = 300.0

    def settings(self, size, seed, n_channels=2000):
        return SimulationSettings(
            phases=self.phases,
            shapes=self.shapes,
            size=(size, size),
            dose=self.dose,
            n_channels=n_channels,
            energy_scale_keV=0.01,
            seed=seed,
        )


def _particles(*coverages, radius=None):
    tail = "" if radius is None else f":{radius}"
    return tuple(f"particles:{c}{tail}" for c in coverages)


CASES = (
    # the case: matrix ~88 %, three minor phases of ~4 % sharing Fe, Ti and O
    Case("k4_shared", (SILICATE, FEPT, TIO2, ILMENITE), _particles(0.04, 0.04, 0.04)),
    Case("k3_steel", (STEEL, CARBIDE, MNS), _particles(0.05, 0.02)),
    Case("k5_alloy", (AL_MATRIX, MG2SI, AL2CU, ALFESI, ALUMINA), _particles(0.03, 0.05, 0.04, 0.10)),
    Case(
        "k6_small",
        (SILICATE, FEPT, TIO2, ILMENITE, NIO, ZRO2),
        _particles(0.02, 0.04, 0.03, 0.06, 0.03, radius=4),
    ),
    Case("k4_shared_dose50", (SILICATE, FEPT, TIO2, ILMENITE), _particles(0.04, 0.04, 0.04), dose=50.0),
    Case("k3_steel_dose30", (STEEL, CARBIDE, MNS), _particles(0.05, 0.02), dose=30.0),
)
EASY_CASES = (
    # the bundled sample's kind: three phases, large areas
    Case("k3_easy", (SILICATE, FEPT, TIO2), ("particles", "layer")),
)


def case_by_name(name):
    for case in CASES + EASY_CASES:
        if case.name == name:
            return case
    raise KeyError(name)


def make_case(case, size=128, seed=0, n_channels=2000):
    """Simulate a case: (X pixels x channels as CSR, shape_2d, model G, truth dict)."""
    import scipy.sparse as sp

    from espm_cli.simulate.synthetic import _edx_model

    settings = case.settings(size, seed, n_channels)
    simulation = simulate(settings)
    model = _edx_model(settings, simulation.elements)
    ny, nx = settings.size
    X = sp.csr_matrix(simulation.counts.reshape(ny * nx, -1))
    truth = {
        "W": simulation.truth.W,
        "maps": simulation.truth.maps.reshape(len(case.phases), -1),
        "composition": simulation.truth.composition,
        "elements": simulation.truth.elements,
    }
    return X, (ny, nx), model, truth


def score(model, W, truth):
    """Mean spectral angle (degrees) and mean abs. at.% error of fitted W against the truth.

    Phases are matched by the smallest total spectral angle; a fit with fewer phases than
    the truth leaves true phases unmatched (their angle counts as 90°).
    """
    from scipy.optimize import linear_sum_assignment

    G = model.G
    fitted = (G @ W).T
    true = (G @ truth["W"]).T
    a = fitted / np.linalg.norm(fitted, axis=1, keepdims=True)
    b = true / np.linalg.norm(true, axis=1, keepdims=True)
    angles = np.degrees(np.arccos(np.clip(a @ b.T, -1, 1)))
    rows, columns = linear_sum_assignment(angles)
    fitted_at = model.composition(W).atomic_percent
    true_at = np.asarray(truth["composition"])
    errors = [np.mean(np.abs(fitted_at[i] - true_at[j])) for i, j in zip(rows, columns)]
    missing = true.shape[0] - len(rows)
    mean_angle = (angles[rows, columns].sum() + 90.0 * missing) / true.shape[0]
    return {
        "mean_angle_deg": float(mean_angle),
        "max_angle_deg": float(angles[rows, columns].max()),
        "at_percent_error": float(np.mean(errors)),
    }

import csv

import numpy as np
import pytest

from espm_cli.io import DecompositionResult
from espm_cli.report import composition_rows, phase_names, write_report


def make_result(k=3, pixel_size=2.0):
    rng = np.random.default_rng(3)
    energy = np.linspace(0.2, 10.0, 200)
    composition = rng.dirichlet(np.ones(3), size=k) * 100
    return DecompositionResult(
        energy=energy,
        G=rng.random((200, 5)),
        G_labels=["Fe", "O", "Pt", "c1", "c2"],
        W=rng.random((5, k)),
        maps=rng.random((k, 8, 10)),
        spectra=rng.random((k, 200)),
        mean_spectrum=rng.random(200) * k,
        composition=composition,
        elements=["Fe", "O", "Pt"],
        loss_history=np.cumsum(-rng.random((12, 4)), axis=0) + 100,
        loss_names=["kl_divergence", "laplacian", "log_sparsity", "total"],
        n_iter=12,
        converged=True,
        fit_seconds=0.5,
        pixel_size=pixel_size,
        pixel_unit="nm",
        lines=[
            {"element": "Fe", "line": "Ka1", "energy_keV": 6.4, "weight": 1.0},
            {"element": "Fe", "line": "Kb1", "energy_keV": 7.06, "weight": 0.15},
            {"element": "O", "line": "Ka1", "energy_keV": 0.525, "weight": 0.5},
            {"element": "Pt", "line": "Ma", "energy_keV": 2.05, "weight": 0.4},
            {"element": "Pt", "line": "La1", "energy_keV": 9.44, "weight": 0.3},
        ],
    )


@pytest.mark.parametrize("pixel_size", [2.0, None])
def test_write_report_makes_pngs_and_csv(tmp_path, pixel_size):
    result = make_result(pixel_size=pixel_size)
    written = write_report(result, tmp_path, log_spectra=pixel_size is None)
    names = sorted(p.name for p in written)
    assert names == ["composition.csv", "composition.png", "convergence.png", "maps.png", "spectra.png"]
    for path in written:
        assert path.stat().st_size > 100
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == names  # no temporary files left


def test_composition_csv_has_one_row_per_phase(tmp_path):
    result = make_result()
    write_report(result, tmp_path)
    with open(tmp_path / "composition.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    assert list(rows[0]) == [
        "phase",
        "name",
        "kind",
        "mean_abundance",
        "counts",
        "line_fraction",
        "Fe_at%",
        "O_at%",
        "Pt_at%",
    ]
    for row, expected in zip(rows, result.composition):
        np.testing.assert_allclose([float(row[f"{e}_at%"]) for e in result.elements], expected, rtol=1e-3)
    assert composition_rows(result)[1]["mean_abundance"] == pytest.approx(result.maps[1].mean())


def test_phase_names_name_the_main_elements():
    result = make_result(k=2)
    result.composition = np.array([[70.0, 20.0, 10.0], [0.0, 5.0, 95.0]])
    assert phase_names(result) == ["phase 1 (Fe-O)", "phase 2 (Pt-O)"]

import os

import h5py
import numpy as np
import pytest

from espm_cli.io import DecompositionResult, atomic_path, read_config_hash, read_result, write_result


def make_result(k=2, m=4, n_channels=30, shape=(3, 5)):
    rng = np.random.default_rng(1)
    return DecompositionResult(
        energy=np.linspace(0.1, 3.0, n_channels),
        G=rng.random((n_channels, m)),
        G_labels=["Fe", "O", "continuum_1", "continuum_2"][:m],
        W=rng.random((m, k)),
        maps=rng.random((k, *shape)),
        spectra=rng.random((k, n_channels)),
        mean_spectrum=rng.random(n_channels),
        composition=np.array([[60.0, 40.0], [10.0, 90.0]])[:k],
        elements=["Fe", "O"],
        loss_history=rng.random((7, 4)),
        loss_names=["kl_divergence", "laplacian", "log_sparsity", "total"],
        n_iter=7,
        converged=False,
        fit_seconds=1.25,
        config={"file": "scan.hspy", "n_components": k, "elements": ["Fe", "O"]},
        config_hash="abc123",
        input_path="/data/scan.hspy",
        input_sha256="0" * 64,
        estimator_params={"lambda_L": 1.0, "simplex": None},
        versions={"numpy": np.__version__},
        acquisition={"beam_energy_keV": 200.0},
        pixel_size=2.5,
        pixel_unit="nm",
        lines=[{"element": "Fe", "line": "Ka", "energy_keV": 6.4, "weight": 1.0}],
    )


def test_round_trip(tmp_path):
    original = make_result()
    path = write_result(original, tmp_path / "r.h5")
    back = read_result(path)
    for name in ("energy", "G", "W", "maps", "spectra", "composition", "loss_history", "mean_spectrum"):
        np.testing.assert_array_equal(getattr(back, name), getattr(original, name))
    assert back.G_labels == original.G_labels
    assert back.elements == ["Fe", "O"]
    assert back.loss_names == original.loss_names
    assert (back.n_iter, back.converged, back.fit_seconds) == (7, False, 1.25)
    assert back.config == original.config
    assert back.estimator_params == original.estimator_params
    assert back.pixel_size == 2.5 and back.pixel_unit == "nm"
    assert back.lines == original.lines
    assert back.final_objective == original.loss_history[-1, -1]
    assert read_config_hash(path) == "abc123"
    assert back.created


def test_plain_h5py_reads_schema(tmp_path):
    path = write_result(make_result(), tmp_path / "r.h5")
    with h5py.File(path, "r") as f:
        assert f["maps"].shape == (2, 3, 5)
        assert f["spectra"].shape == (2, 30)
        assert list(f["elements"].asstr()[()]) == ["Fe", "O"]
        assert f.attrs["input_sha256"] == "0" * 64
        assert "n_components: 2" in f.attrs["config_yaml"]
        assert f["composition"].attrs["units"] == "at.%"


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with atomic_path(target) as temporary:
        temporary.write_text("whole")
    assert target.read_text() == "whole"
    assert os.listdir(tmp_path) == ["out.h5"]


def test_readme_h5py_example_runs(tmp_path, monkeypatch):
    """The README's h5py example reads a result file as documented."""
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Result file (HDF5)", 1)[1]
    code = section.split("```python", 1)[1].split("```", 1)[0]
    folder = tmp_path / "sample_data" / "sample_espm"
    folder.mkdir(parents=True)
    write_result(make_result(), folder / "sample.h5")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(code, namespace)
    assert namespace["maps"].shape == (2, 3, 5)
    assert set(namespace["table"]) == {"Fe", "O"}


def test_read_result_refuses_a_file_that_is_not_a_result(tmp_path):
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f["energy"] = [1.0, 2.0]
    with pytest.raises(ValueError, match="not an espm_cli result file: it has no 'G' dataset"):
        read_result(path)

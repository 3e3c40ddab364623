"""build_G reads the acquisition parameters from the metadata (synthetic and real)."""

import warnings

import numpy as np
import pytest
from hyperspy_ext_helpers import REAL_FILES, REALDATA, eds_signal

import espm_cli


def test_build_g_from_metadata_and_overrides():
    signal = eds_signal(elements=("Fe", "O"), beam_energy=200.0)
    signal.set_signal_type("EDS_espm_cli")
    signal.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa", 128.0)
    signal.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.elevation_angle", 21.0)
    model = signal.build_G()
    assert model.G.shape == (signal.axes_manager.signal_axes[0].size, len(model.labels))
    assert list(model.labels[:2]) == ["Fe", "O"]
    assert model.beam_energy_keV == 200.0
    assert model.detector.mnka_fwhm_eV == 128.0
    assert model.detector.elevation_deg == 21.0

    changed = signal.build_G("Fe,Pt", beam_energy_keV=120.0, mnka_fwhm_eV=140.0)
    assert list(changed.labels[:2]) == ["Fe", "Pt"]
    assert changed.beam_energy_keV == 120.0
    assert changed.detector.mnka_fwhm_eV == 140.0
    # a wider detector response spreads the Fe K lines over more channels
    assert not np.allclose(changed.G[:, 0], model.G[:, 0])


def test_build_g_errors_name_the_problem():
    signal = eds_signal(elements=())
    signal.set_signal_type("EDS_espm_cli")
    with pytest.raises(ValueError, match="elements is empty"):
        signal.build_G()
    with pytest.raises(ValueError, match="unknown keyword 'beam_energy'"):
        signal.build_G(["Fe"], beam_energy=200.0)
    del signal.metadata.Acquisition_instrument.TEM.beam_energy
    with pytest.raises(ValueError, match="beam_energy_keV"):
        signal.build_G(["Fe"])
    assert signal.build_G(["Fe"], beam_energy_keV=80.0).beam_energy_keV == 80.0


@pytest.mark.parametrize("name", REAL_FILES)
def test_build_g_reads_each_real_file(name):
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    signal = espm_cli.load(path, lazy=True)
    microscope = "SEM" if "SEM" in signal.metadata.Signal.signal_type else "TEM"
    beam = signal.metadata.get_item(f"Acquisition_instrument.{microscope}.beam_energy")
    listed = signal.metadata.get_item("Sample.elements")
    n_channels = signal.axes_manager.signal_axes[0].size
    if not listed:  # the JEOL file: the user must name the elements
        with pytest.raises(ValueError, match="elements is empty"):
            signal.build_G()
        model = signal.build_G(["Cu", "O"])
        assert model.G.shape[0] == n_channels
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = signal.build_G()
    assert model.G.shape == (n_channels, len(model.labels))
    assert model.beam_energy_keV == pytest.approx(float(beam))
    modelled = [label for label in model.labels if not label.startswith("continuum")]
    dropped = set(listed) - set(modelled)
    assert set(modelled) <= set(listed)
    if name.startswith("88_ES"):  # axis starts at 0.83 keV: O Ka is cut off
        assert dropped == {"O"}
        assert any("have no X-ray line" in str(w.message) for w in caught)
    else:
        assert not dropped
    assert np.all(np.isfinite(model.G)) and np.all(model.G >= 0)

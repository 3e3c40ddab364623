"""exspy's own EDS methods keep working on the espm_cli signal types and result spectra."""

import warnings

import matplotlib
import numpy as np
import pytest
from hyperspy_ext_helpers import REALDATA, eds_signal

import espm_cli
from espm_cli.solver import SmoothNMF

matplotlib.use("Agg")


@pytest.mark.parametrize("signal_type", ["EDS_espm_cli", "EDS_SEM_espm_cli"])
def test_line_intensities_take_off_angle_quantification(signal_type):
    signal = eds_signal(shape=(4, 5, 120), signal_type=signal_type, rate=3.0, elements=("Fe", "O"))
    assert signal.metadata.Signal.signal_type == signal_type
    microscope = "SEM" if "SEM" in signal_type else "TEM"
    signal.metadata.set_item(f"Acquisition_instrument.{microscope}.Detector.EDS.elevation_angle", 30.0)
    signal.metadata.set_item(f"Acquisition_instrument.{microscope}.Stage.tilt_alpha", 0.0)
    signal.metadata.set_item(f"Acquisition_instrument.{microscope}.Detector.EDS.azimuth_angle", 0.0)
    signal.metadata.set_item(
        f"Acquisition_instrument.{microscope}.Detector.EDS.energy_resolution_MnKa", 130.0
    )
    signal.add_lines()
    assert signal.get_take_off_angle() == pytest.approx(30.0)
    intensities = signal.get_lines_intensity()
    assert len(intensities) == 2 and all(i.data.shape == (4, 5) for i in intensities)
    if microscope == "TEM":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            composition = signal.quantification(
                intensities, method="CL", factors=[1.0, 1.0], plot_result=False, show_progressbar=False
            )
        total = sum(c.data for c in composition)
        np.testing.assert_allclose(total[np.isfinite(total)], 100.0)
    assert signal.metadata.Signal.signal_type == signal_type  # the type is kept
    signal.sum().plot(xray_lines=True)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.parametrize("name", ["test_TEM.bcf", "Hitachi_TM3030Plus.bcf"])
def test_exspy_methods_on_real_files(name):
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    signal = espm_cli.load(path)
    intensities = signal.get_lines_intensity()
    assert [i.data.sum() > 0 for i in intensities] and len(intensities) >= 2


@pytest.mark.parametrize("lazy", [False, True])
def test_decomposition_with_no_flags_is_a_poisson_fit_of_integer_counts(lazy):
    signal = eds_signal(shape=(6, 8, 60), signal_type="EDS_espm_cli", rate=0.15, seed=4)
    assert signal.data.dtype == np.uint16
    if lazy:
        signal = signal.as_lazy()
    counts = np.asarray(signal.data).reshape(48, 60).astype(np.float64)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        signal.decomposition(
            algorithm=SmoothNMF(2, shape_2d=(6, 8), lambda_L=1.0, random_state=0, max_iter=5),
            print_info=False,
        )
    assert not [w for w in caught if "non-integer" in str(w.message)]
    assert signal.learning_results.poissonian_noise_normalized is False
    assert signal.learning_results.navigation_mask is None
    assert signal.data.dtype == np.uint16
    reference = SmoothNMF(2, shape_2d=(6, 8), lambda_L=1.0, random_state=0, max_iter=5)
    reference.fit(counts)
    np.testing.assert_allclose(signal.learning_results.factors, reference.components_.T, rtol=0, atol=1e-8)
    if lazy:
        return
    # other algorithms keep exspy's defaults
    float_signal = signal.deepcopy()
    float_signal.change_dtype("float64")
    float_signal.decomposition(print_info=False)
    assert float_signal.learning_results.poissonian_noise_normalized is True


def test_result_spectra_quantify_with_exspy(tmp_path):
    from pathlib import Path

    from click.testing import CliRunner

    from espm_cli.cli.main import cli

    sample = Path(__file__).resolve().parents[2] / "sample_data" / "sample.hspy"
    if not sample.exists():
        pytest.skip("sample_data/sample.hspy is absent")
    run = CliRunner().invoke(cli, ["decompose", str(sample), "--max-iter", "20", "-o", str(tmp_path), "-q"])
    assert run.exit_code == 0, run.output
    spectra = espm_cli.load_result(tmp_path / "sample.h5").spectra
    assert spectra.metadata.Sample.xray_lines  # Sample metadata set: elements and lines
    assert spectra.get_take_off_angle() > 0
    intensities = spectra.get_lines_intensity()
    assert len(intensities) == len(spectra.metadata.Sample.elements)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # navigation_mask=None: exspy's vacuum mask would take a phase whose spectrum
        # (counts per pixel) peaks below 1 for vacuum
        composition = spectra.quantification(
            intensities,
            method="CL",
            factors=[1.0] * len(intensities),
            navigation_mask=None,
            plot_result=False,
            show_progressbar=False,
        )
    np.testing.assert_allclose(sum(c.data for c in composition), 100.0)


def test_phase_spectra_of_decompose_phases_carry_the_metadata():
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "sample_data" / "sample.hspy"
    if not sample.exists():
        pytest.skip("sample_data/sample.hspy is absent")
    signal = espm_cli.load(sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        signal.decompose_phases(3, max_iter=10)
    spectra = signal.phase_spectra()
    assert spectra.metadata.Signal.signal_type == "EDS_espm_cli"
    assert list(spectra.metadata.Sample.elements) == ["Al", "Fe", "O", "Pt", "Si", "Ti"]
    assert spectra.metadata.Sample.xray_lines and spectra.get_take_off_angle() > 0
    assert spectra.axes_manager.signal_axes[0].size == signal.phase_results.spectra.shape[1]
    intensities = spectra.get_lines_intensity()
    assert all(i.data.shape == (3,) for i in intensities)


def test_quantification_with_kfactors_from_the_model_recovers_the_atoms():
    import hyperspy.api as hs

    template = eds_signal(shape=(2, 2, 150), elements=("Fe", "Pt"), signal_type="EDS_espm_cli")
    energy = template.axes_manager.signal_axes[0]
    energy.scale = 0.08
    template.metadata.set_item("Acquisition_instrument.TEM.Detector.EDS.energy_resolution_MnKa", 130.0)
    model = template.build_G()
    W = np.zeros(len(model.labels))
    W[model.labels.index("Fe")], W[model.labels.index("Pt")] = 3.0, 1.0  # atoms, no continuum
    spectrum = hs.signals.Signal1D(np.tile(model.G @ W * 1e3, (2, 2, 1)))
    spectrum.axes_manager.signal_axes[0].update_from(energy, ("offset", "scale", "units", "name"))
    spectrum.metadata.add_dictionary(template.metadata.as_dictionary())
    spectrum.set_signal_type("EDS_espm_cli")
    spectrum.set_lines(["Fe_Ka", "Pt_La"])
    factors = spectrum.kfactors_from_model()
    assert factors[0] == 1.0 and len(factors) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atomic = spectrum.quantification(
            spectrum.get_lines_intensity(),
            "CL",
            factors=factors,
            navigation_mask=None,
            plot_result=False,
            show_progressbar=False,
        )
    fe, pt = (float(a.data.mean()) for a in atomic)
    assert fe == pytest.approx(75.0, abs=0.5) and pt == pytest.approx(25.0, abs=0.5)

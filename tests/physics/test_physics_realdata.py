"""G against two real summed spectra (skipped when ../shared/realdata is absent)."""

from pathlib import Path

import numpy as np
import pytest

from espm_cli.physics import Detector, EDXModel, EnergyAxis, Sample

REALDATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "realdata"


def summed_spectrum(name):
    hyperspy = pytest.importorskip("hyperspy.api")
    path = REALDATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent")
    loaded = hyperspy.load(path)
    signal = [s for s in loaded if "EDS" in type(s).__name__][0]
    counts = np.asarray(signal.data, dtype=np.float64).sum(axis=(0, 1))
    return signal, counts


def kl_fit(G, x, n_iter=4000):
    w = np.full(G.shape[1], x.sum() / G.sum())
    column_sums = G.sum(axis=0)
    for _ in range(n_iter):
        w *= G.T @ (x / np.maximum(G @ w, 1e-300)) / column_sums
    return w


def deviance_per_channel(x, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(x / mu), 0.0)
    return 2.0 * np.sum(term - (x - mu)) / x.size


@pytest.mark.parametrize(
    "name, elements, ignored, bulk, max_deviance",
    [
        ("test_TEM.bcf", ["Cu", "O", "Pd", "Ti"], ("Si",), False, 7.0),
        ("bcf_v2_50x50px.bcf", ["Ag", "Al", "C", "Cu", "O"], (), True, 20.0),
    ],
)
def test_summed_spectrum_fit(name, elements, ignored, bulk, max_deviance):
    signal, counts = summed_spectrum(name)
    axis = EnergyAxis.from_axis(signal.axes_manager.signal_axes[0])
    instrument = signal.metadata.Acquisition_instrument
    instrument = instrument.TEM if "TEM" in instrument else instrument.SEM
    elevation = float(instrument.Detector.EDS.elevation_angle)
    model = EDXModel(
        axis,
        elements,
        float(instrument.beam_energy),
        detector=Detector(elevation_deg=elevation),
        sample=Sample(bulk=bulk),
        ignored_elements=ignored,
    )
    window = (axis.energies >= 0.25) & (axis.energies < 0.98 * model.beam_energy_keV)
    w = kl_fit(model.G[window], counts[window])
    mu = model.G[window] @ w
    assert deviance_per_channel(counts[window], mu) < max_deviance
    # The strongest peak of the data is where the model puts it.
    assert abs(int(np.argmax(mu)) - int(np.argmax(counts[window]))) <= 2

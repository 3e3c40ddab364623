"""Fit the summed spectrum of each real EDX file with G (nonnegative weights, KL loss).

Usage: MPLBACKEND=Agg python benchmarks/physics_fits/fit_real_data.py [--data DIR]

Writes one PNG per file and ``fits.json`` (per-file deviance per channel and the largest
residual peak) beside this script. Uses hyperspy only to load the files; the fit is a small
multiplicative (Lee-Seung) KL-NNLS of its own.
"""

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from espm_cli.physics import Detector, EDXModel, EnergyAxis, Sample, elements_with_lines

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / ".." / "shared" / "realdata"
# The JEOL file carries no element list: these are the ones its summed spectrum shows.
# Peaks at 1.74 (Si Ka), 2.31 (S Ka; no Mo K at 17.5), 3.69 (Ca Ka), 5.41 (Cr Ka),
# 6.40/7.06 (Fe K), 8.05/8.9 (Cu K) keV, and C and O at low energy.
ELEMENTS_GIVEN = {"View000_0000006.pts": ["C", "O", "Si", "S", "Ca", "Cr", "Fe", "Cu"]}
FILES = [
    "88_ES-LP_G8_selection2_cropped2.hspy",
    "30x30_instructively_packed_16bit_compressed.bcf",
    "bcf_v2_50x50px.bcf",
    "Hitachi_TM3030Plus.bcf",
    "test_TEM.bcf",
    "velox_Test_SI_16x16_215kx.emd",
    "View000_0000006.pts",
]
# Elements the summed spectra show but the metadata does not list; modelled as ignored
# elements (in G, left out of the composition).
EXTRA_IGNORED = {
    # Cu Ka/Kb at 8.05/8.9 keV (the grid), Mo Ka/Kb at 17.48/19.6 keV, Zr Ka at 15.77 keV
    "88_ES-LP_G8_selection2_cropped2.hspy": ["Cu", "Mo", "Zr"],
    "test_TEM.bcf": ["Si"],  # a strong Si Ka at 1.74 keV
    # Mn Ka/Kb at 5.90/6.49 keV (next to Fe)
    "30x30_instructively_packed_16bit_compressed.bcf": ["Mn"],
}
COMPOSITION_REFRESHES = 3  # absorption recomputed from the fitted composition
# Below: the zero-energy strobe peak and (Bruker) the detector's 0.2 keV threshold.
FIT_LOW_KEV = 0.25
log = logging.getLogger("fit_real_data")


def load_spectrum_image(path):
    """Return the EDS spectrum image in ``path`` (largest navigation size if several)."""
    import hyperspy.api as hs

    loaded = hs.load(path, lazy=True)
    candidates = loaded if isinstance(loaded, list) else [loaded]
    candidates = [s for s in candidates if "EDS" in type(s).__name__]
    return max(candidates, key=lambda s: s.axes_manager.navigation_size)


def acquisition(signal):
    """Beam energy, detector and elements from hyperspy metadata."""
    md = signal.metadata
    instrument = md.get_item("Acquisition_instrument.TEM") or md.get_item("Acquisition_instrument.SEM")
    eds = instrument.Detector.EDS
    detector = Detector(
        mnka_fwhm_eV=float(eds.get_item("energy_resolution_MnKa", 130.0)),
        elevation_deg=float(eds.get_item("elevation_angle", 35.0)),
        azimuth_deg=float(eds.get_item("azimuth_angle", 0.0)),
    )
    tilt = float(instrument.get_item("Stage.tilt_alpha", 0.0))
    elements = md.get_item("Sample.elements")
    return float(instrument.beam_energy), detector, tilt, (list(elements) if elements else None)


def kl_nnls(G, x, n_iter=20000, tol=1e-10):
    """Nonnegative w minimising the generalized KL divergence D(x || G w)."""
    w = np.full(G.shape[1], x.sum() / G.sum() / G.shape[1])
    column_sums = G.sum(axis=0)
    previous = np.inf
    for iteration in range(n_iter):
        mu = G @ w
        w *= (G.T @ (x / np.maximum(mu, 1e-300))) / column_sums
        if iteration % 200 == 0:
            loss = deviance(x, G @ w)
            if previous - loss < tol * max(loss, 1.0):
                break
            previous = loss
    return w


def deviance(x, mu):
    """Poisson deviance 2 sum[x log(x/mu) - (x - mu)]."""
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(x > 0, x * np.log(x / mu), 0.0)
    return float(2.0 * np.sum(term - (x - mu)))


def fit_file(path, out_dir):
    import matplotlib.pyplot as plt

    signal = load_spectrum_image(path)
    beam, detector, tilt, elements = acquisition(signal)
    elements = elements or ELEMENTS_GIVEN[path.name]
    axis = EnergyAxis.from_axis(signal.axes_manager.signal_axes[0])
    nav = tuple(range(signal.axes_manager.navigation_dimension))
    summed = signal.data.sum(axis=tuple(range(signal.data.ndim - 1))) if nav else signal.data
    summed = summed.compute() if hasattr(summed, "compute") else summed
    summed = summed.todense() if hasattr(summed, "todense") else summed  # sparse (Velox, JEOL)
    counts = np.asarray(summed, dtype=np.float64)
    start = time.perf_counter()
    bulk = signal.metadata.get_item("Acquisition_instrument.SEM") is not None
    sample = Sample(tilt_deg=tilt, bulk=bulk)
    model_elements = elements_with_lines(axis, elements, beam)
    dropped = sorted(set(elements) - set(model_elements))
    ignored = EXTRA_IGNORED.get(path.name, [])
    model = EDXModel(axis, model_elements, beam, detector=detector, sample=sample, ignored_elements=ignored)
    build_seconds = time.perf_counter() - start
    energies = axis.energies
    fit_mask = (energies >= FIT_LOW_KEV) & (energies < 0.98 * beam)
    G = model.G[fit_mask]
    x = counts[fit_mask]
    w = kl_nnls(G, x)
    for _ in range(COMPOSITION_REFRESHES if bulk else 0):
        model = model.with_composition_from_W(w[:, None])
        G = model.G[fit_mask]
        w = kl_nnls(G, x)
    mu = G @ w
    dev = deviance(x, mu)
    n_fit = int(fit_mask.sum())
    residual = x - mu
    pearson = residual / np.sqrt(np.maximum(mu, 1.0))
    # Largest residual peak: the residual smoothed over about one line width.
    width = max(1, int(round(0.1 / axis.scale_keV)))
    smoothed = np.convolve(residual, np.ones(width) / width, mode="same")
    peak = int(np.argmax(np.abs(smoothed)))
    e_fit = energies[fit_mask]
    composition = model.composition(w)
    record = {
        "file": path.name,
        "elements": list(model.elements),
        "elements_without_lines_in_range": dropped,
        "ignored_elements_added": ignored,
        "sample_model": "bulk (PDH absorption)" if bulk else "thin film, no absorption",
        "beam_energy_keV": beam,
        "mnka_fwhm_eV": detector.mnka_fwhm_eV,
        "take_off_angle_deg": model.take_off_angle_deg,
        "total_counts": float(counts.sum()),
        "fit_range_keV": [float(e_fit[0]), float(e_fit[-1])],
        "n_channels_fit": n_fit,
        "deviance_per_channel": dev / n_fit,
        "largest_residual_peak": {
            "energy_keV": float(e_fit[peak]),
            "residual_counts_per_channel": float(smoothed[peak]),
            "relative_to_fit": float(smoothed[peak] / max(mu[peak], 1e-12)),
            "pearson": float(pearson[peak]),
        },
        "model_build_seconds": build_seconds,
        "atomic_percent": {k: round(v, 3) for k, v in composition.as_dicts()[0].items()},
    }
    plot_fit(path.name, e_fit, x, mu, pearson, model, w, out_dir / (path.stem + ".png"), plt)
    return record


def plot_fit(name, energies, x, mu, pearson, model, w, png_path, plt):
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(13, 7), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.semilogy(energies, np.maximum(x, 0.5), color="0.3", lw=0.8, label="data (sum)")
    top.semilogy(energies, mu, color="C3", lw=0.9, label="fit G w")
    continuum = model.G[:, model.continuum_mask] @ w[model.continuum_mask]
    fit_mask = np.isin(model.energy_axis.energies, energies)
    top.semilogy(energies, continuum[fit_mask], color="C0", lw=0.7, ls="--", label="continuum")
    scales = {symbol: w[i] for i, symbol in enumerate(model.elements)}
    strongest = sorted(model.lines, key=lambda line: -line.weight * scales[line.element])
    labelled = []
    for line in strongest:
        if len(labelled) >= 25:
            break
        if any(abs(line.energy_keV - e) < 0.12 for e in labelled):
            continue
        if not energies[0] <= line.energy_keV <= energies[-1]:
            continue
        labelled.append(line.energy_keV)
        channel = np.searchsorted(energies, line.energy_keV)
        y = max(x[min(channel, len(x) - 1)], mu[min(channel, len(mu) - 1)], 1.0)
        top.annotate(
            f"{line.element} {line.name}",
            (line.energy_keV, y * 1.3),
            fontsize=7,
            rotation=90,
            ha="center",
            va="bottom",
        )
    top.set_ylim(max(0.5, mu.min() * 0.3), x.max() * 20)
    top.set_ylabel("counts")
    top.legend(loc="upper right", fontsize=8)
    top.set_title(name)
    bottom.plot(energies, pearson, color="k", lw=0.6)
    bottom.axhline(0, color="C3", lw=0.6)
    bottom.set_ylabel("(x - fit) / sqrt(fit)")
    bottom.set_xlabel("energy (keV)")
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--only", nargs="*", default=None)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore")
    records = []
    for name in FILES:
        if arguments.only and name not in arguments.only:
            continue
        path = arguments.data / name
        if not path.exists():
            log.info("skip %s (absent)", name)
            continue
        record = fit_file(path, arguments.out)
        log.info(
            "%s: deviance/channel %.3g, largest residual at %.3f keV (%.3g rel)",
            name,
            record["deviance_per_channel"],
            record["largest_residual_peak"]["energy_keV"],
            record["largest_residual_peak"]["relative_to_fit"],
        )
        records.append(record)
    if not arguments.only:
        (arguments.out / "fits.json").write_text(json.dumps(records, indent=2) + "\n")


if __name__ == "__main__":
    main()

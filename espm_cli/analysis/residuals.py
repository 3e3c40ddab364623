"""What the model missed: peaks of the summed residual (data minus model) above the noise.

After the fit, the residual summed over the pixels is taken channel by channel, summed
again over a detector-resolution window (a peak spans about one FWHM), and compared with
the Poisson noise of the model there. A window whose residual stands ``MIN_SIGMA``
standard deviations above the noise, holds at least ``MIN_MISSED_SHARE`` of the data's
counts there and has the shape of a line (``MIN_PEAK_CONTRAST``) is a peak the model does
not explain; the X-ray lines (xraylib) within the
detector resolution of it are its candidates.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

#: A residual peak stands this many standard deviations above the noise ...
MIN_SIGMA = 10.0
#: ... and the model misses at least this share of the data's counts under it.
MIN_MISSED_SHARE = 0.25
#: ... and is peak-shaped: the residual within +-FWHM/2 at least this many times that in
#: the flanks out to +-1.5 FWHM (a line of the detector's resolution: about 3; a broad
#: misfit of the continuum or of absorption: about 0.5).
MIN_PEAK_CONTRAST = 1.5
#: A line of an element already in the model is this much likelier than another.
MODELLED_PRIOR = 3.0
#: How much the other peaks an element's lines explain raise its likelihood (a Cu Kb
#: peak beside a Cu Ka peak is Cu's, though Kb alone is weak).
SUPPORT_WEIGHT = 5.0
#: At most this many peaks are reported (the strongest).
MAX_PEAKS = 5
#: Elements searched for candidate lines (Be to Pu).
CANDIDATE_Z = range(4, 95)
#: Candidate lines are within this many FWHM of the peak.
CANDIDATE_FWHM = 1.0


@dataclasses.dataclass(frozen=True)
class ResidualPeak:
    """A peak of the data that the model does not explain.

    Attributes
    ----------
    energy_keV : float
        Centroid of the residual.
    missed_counts : float
        Data minus model, summed over the peak's window and all pixels.
    sigma : float
        ``missed_counts`` over the Poisson noise of the model in the window.
    missed_share : float
        Share of the data's counts in the window that the model misses.
    candidates : tuple of (str, str, float)
        (element, line, energy keV) of the lines within the resolution, likeliest first.
    modelled : tuple of str
        The model's elements (to word the advice).
    """

    energy_keV: float
    missed_counts: float
    sigma: float
    missed_share: float
    candidates: tuple
    modelled: tuple = ()

    @property
    def new_elements(self) -> tuple:
        """Candidate elements not in the model, likeliest first (no repeats)."""
        return tuple(dict.fromkeys(c[0] for c in self.candidates if c[0] not in self.modelled))

    def message(self, style: str = "cli") -> str:
        """``"1.74 keV unexplained (Si Ka?): add --elements Cu,O,Si"``.

        Parameters
        ----------
        style : {"cli", "python"}
            How the advice names the elements option.
        """
        guesses = " ".join(f"{element} {line}?" for element, line, _ in self.candidates[:3])
        head = (
            f"{self.energy_keV:.2f} keV unexplained ({guesses or 'no known line'}; "
            f"{self.missed_counts:.3g} counts, {self.sigma:.0f} sigma)"
        )
        new = self.new_elements
        if not self.candidates or self.candidates[0][0] in self.modelled:
            if self.candidates:
                element, line, _ = self.candidates[0]
                return (
                    head + f": the modelled {element} {line} falls short of the data there "
                    "(check the absorption, thickness and detector settings)"
                )
            return head

        if style == "python":
            return head + f": add {new[0]!r} to elements=[...]"
        return head + f": add --elements {','.join([*self.modelled, new[0]])}"


def _windowed_sums(values, half_widths):
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    index = np.arange(values.size)
    low = np.clip(index - half_widths, 0, values.size)
    high = np.clip(index + half_widths + 1, 0, values.size)
    return cumulative[high] - cumulative[low]


def candidate_lines(
    energy_keV, fwhm_keV, beam_energy_keV, axis_low_keV, axis_high_keV, max_candidates=3, with_scores=False
):
    """X-ray lines within ``CANDIDATE_FWHM`` x FWHM of ``energy_keV``, likeliest first.

    A line's likelihood is its weight relative to its element's strongest line on the axis
    times a Gaussian of its distance in units of the resolution.

    Returns
    -------
    tuple of (element, line name, energy keV)
        With ``with_scores``, (element, line name, energy keV, likelihood).
    """
    import xraylib

    from ..physics.xray_lines import element_lines

    sigma = fwhm_keV / (2 * math.sqrt(2 * math.log(2)))
    best = {}
    for z in CANDIDATE_Z:
        symbol = xraylib.AtomicNumberToSymbol(z)
        try:
            lines = element_lines(symbol, float(beam_energy_keV), float(axis_low_keV), float(axis_high_keV))
        except ValueError:
            continue
        if not lines:
            continue
        strongest = max(line.weight for line in lines)
        for line in lines:
            distance = abs(line.energy_keV - energy_keV)
            if distance > CANDIDATE_FWHM * fwhm_keV:
                continue
            score = line.weight / strongest * math.exp(-0.5 * (distance / sigma) ** 2)
            if score > best.get(symbol, (0.0,))[0]:
                best[symbol] = (score, line.name, float(line.energy_keV))
    ranked = sorted(best.items(), key=lambda item: -item[1][0])[:max_candidates]
    if with_scores:
        return tuple((symbol, name, energy, score) for symbol, (score, name, energy) in ranked)
    return tuple((symbol, name, energy) for symbol, (_, name, energy) in ranked)


def residual_peaks(energies, data_totals, model_totals, model) -> list[ResidualPeak]:
    """Peaks of the data the model misses.

    Parameters
    ----------
    energies : ndarray (n,)
        Channel energies of the fit window, keV.
    data_totals, model_totals : ndarray (n,)
        Counts per channel summed over the pixels: the data and the model (G W H).
    model : espm_cli.physics.EDXModel
        Gives the detector resolution, the beam energy and the modelled elements.

    Returns
    -------
    list of ResidualPeak
        Strongest first.
    """
    energies = np.asarray(energies, dtype=np.float64)
    data = np.asarray(data_totals, dtype=np.float64)
    fitted = np.asarray(model_totals, dtype=np.float64)
    if energies.size < 3:
        return []
    scale = float(energies[1] - energies[0])
    fwhm = np.asarray(model.detector.fwhm_keV(np.clip(energies, 0.1, None)))
    half = np.maximum(1, np.round(fwhm / scale / 2).astype(int))
    missed = _windowed_sums(data - fitted, half)
    noise = np.sqrt(np.maximum(_windowed_sums(fitted, half), 1.0))
    in_data = _windowed_sums(data, half)
    flanks = _windowed_sums(data - fitted, 3 * half) - missed
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(in_data > 0, missed / in_data, 0.0)
    # a peak is a local maximum of the windowed residual (not the flank of a bigger one)
    local_max = np.array(
        [missed[c] >= missed[max(0, c - 2 * h) : c + 2 * h + 1].max() for c, h in enumerate(half)]
    )
    peaked = missed >= MIN_PEAK_CONTRAST * np.maximum(flanks, 0.0)
    score = np.where(
        (missed / noise >= MIN_SIGMA) & (share >= MIN_MISSED_SHARE) & local_max & peaked, missed / noise, 0.0
    )
    found = []
    low, high = float(energies[0]), float(energies[-1])
    while len(found) < MAX_PEAKS and score.max() > 0:
        c = int(np.argmax(score))
        window = slice(max(0, c - half[c]), c + half[c] + 1)
        positive = np.clip((data - fitted)[window], 0.0, None)
        centre = (
            float(np.average(energies[window], weights=positive))
            if positive.sum() > 0
            else float(energies[c])
        )
        width = float(model.detector.fwhm_keV(max(centre, 0.1)))
        lines = candidate_lines(
            centre, width, model.beam_energy_keV, low, high + scale, max_candidates=8, with_scores=True
        )
        found.append((c, centre, lines))
        score[max(0, c - 4 * half[c]) : c + 4 * half[c] + 1] = 0.0  # +-2 FWHM
    # An element whose lines sit under several peaks explains them together (Cu Ka, Kb,
    # La); an element already modelled is likelier than a new one (its modelled line is
    # then off: absorption, detector).
    support = {}
    for _, _, lines in found:
        for element, _, _, likelihood in lines:
            support[element] = support.get(element, 0.0) + likelihood
    modelled = tuple(model.elements)
    peaks = []
    for c, centre, lines in found:

        def weight(line):
            element, _, _, likelihood = line
            others = support[element] - likelihood
            return (
                likelihood
                * (1.0 + SUPPORT_WEIGHT * others)
                * (MODELLED_PRIOR if element in modelled else 1.0)
            )

        ordered = sorted(lines, key=weight, reverse=True)
        peaks.append(
            ResidualPeak(
                energy_keV=centre,
                missed_counts=float(missed[c]),
                sigma=float(missed[c] / noise[c]),
                missed_share=float(share[c]),
                candidates=tuple(line[:3] for line in ordered[:3]),
                modelled=modelled,
            )
        )
    return peaks

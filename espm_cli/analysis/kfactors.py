"""Cliff-Lorimer k-factors from the physics model, for exspy's ``quantification``.

exspy's Cliff-Lorimer quantification takes one factor per X-ray line and gives weight
fractions C_i = k_i I_i / sum_j k_j I_j from the line intensities I (counts integrated in
a window around each line). The model's column of element e integrated over the same
window is the intensity per atom of e there (W counts atoms), so k_e = A_e / s_e (A the
atomic weight) makes C_e proportional to the number of atoms times the atomic weight: the
mass.
"""

from __future__ import annotations


def cliff_lorimer_factors(xray_lines, per_atom_intensities):
    """One k-factor per line, relative to the first.

    Parameters
    ----------
    xray_lines : sequence of str
        exspy line names, ``"Fe_Ka"``.
    per_atom_intensities : sequence of float
        The model's column of each line's element integrated over the line's window.

    Returns
    -------
    list of float

    Raises
    ------
    ValueError
        A line whose window holds no intensity of its element.
    """
    from ..physics.xray_lines import atomic_weight

    factors = []
    for line, per_atom in zip(xray_lines, per_atom_intensities):
        if not per_atom > 0:
            raise ValueError(
                f"line {line!r}: the model has no intensity of its element in its integration window"
            )
        factors.append(atomic_weight(str(line).split("_")[0]) / float(per_atom))
    return [factor / factors[0] for factor in factors]

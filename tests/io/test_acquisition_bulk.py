"""SEM specimens without a film thickness are modelled as bulk for self-absorption."""

import numpy as np
import pytest

from espm_cli.io.acquisition import AcquisitionParameters


@pytest.mark.parametrize(
    "microscope, thickness, expected",
    [("SEM", None, True), ("SEM", 100.0, False), ("TEM", None, False), (None, None, False)],
)
def test_bulk_specimen_rule(microscope, thickness, expected):
    acquisition = AcquisitionParameters(microscope=microscope, thickness_nm=thickness)
    assert acquisition.bulk_specimen is expected


def test_sem_model_absorbs_soft_lines_more_than_tem():
    from espm_cli.analysis import build_model
    from espm_cli.physics import EnergyAxis

    models = {}
    for microscope in ("SEM", "TEM"):
        acquisition = AcquisitionParameters(
            elements=("Al", "Cu"), beam_energy_keV=15.0, microscope=microscope
        )
        models[microscope] = build_model(EnergyAxis(0.0, 0.01, 1500), acquisition)
    assert models["SEM"].sample.bulk and not models["TEM"].sample.bulk
    cu = models["SEM"].elements.index("Cu")
    energy = 0.01 * np.arange(1500)
    soft = (energy > 0.8) & (energy < 1.1)  # Cu L, strongly absorbed in a bulk specimen
    hard = (energy > 7.8) & (energy < 8.3)  # Cu Ka, hardly
    ratio = {name: model.G[soft, cu].sum() / model.G[hard, cu].sum() for name, model in models.items()}
    assert ratio["SEM"] < 0.8 * ratio["TEM"]

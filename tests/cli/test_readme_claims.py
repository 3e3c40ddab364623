"""The README's numbers and outcomes about the command line, checked.

The demo's summary and truth comparison (everything but the seconds, which depend on
the machine), the sample data's description, and what `espm simulate --seed 0` makes.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from espm_cli.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_block(first_line_start):
    """The fenced block of README.md whose first line starts with ``first_line_start``."""
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", README, flags=re.S | re.M):
        if block.startswith(first_line_start):
            return block.rstrip("\n").splitlines()
    raise AssertionError(f"no README block starting with {first_line_start!r}")


def without_seconds(lines):
    return [re.sub(r"in \d+(\.\d+)? s,", "in <t> s,", line) for line in lines]


def test_demo_output_is_the_readme_s(runner, tmp_path):
    result = runner.invoke(
        cli, ["decompose", "--config", str(ROOT / "configs" / "run.yaml"), "-o", str(tmp_path), "-q"]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout.rstrip("\n").splitlines()
    summary = readme_block("sample.hspy: 64 x 64 pixels")
    results_at = next(i for i, line in enumerate(summary) if line.startswith("results in"))
    assert without_seconds(out[:results_at]) == without_seconds(summary[:results_at])
    assert out[results_at + 1] == summary[results_at + 1]  # the files (the folder differs)
    truth = readme_block("compared with the truth")
    assert out[-len(truth) :] == truth


def test_sample_data_is_as_described():
    import hyperspy.api as hs

    signal = hs.load(ROOT / "sample_data" / "sample.hspy")
    assert signal.data.shape == (64, 64, 2048) and signal.data.dtype == np.uint8
    assert signal.axes_manager.signal_axes[0].scale == pytest.approx(0.01)
    assert signal.data.sum(axis=-1).mean() == pytest.approx(200, rel=0.02)
    assert (ROOT / "sample_data" / "sample.hspy").stat().st_size / 1e6 == pytest.approx(0.6, abs=0.05)
    assert "64 x 64 pixels, 2048 channels of 10 eV, 200 counts per pixel" in README


def test_simulate_seed_0_remakes_the_sample(runner, tmp_path):
    import hyperspy.api as hs

    from espm_cli.io import read_result

    result = runner.invoke(cli, ["simulate", str(tmp_path / "sample.hspy"), "--seed", "0", "-q"])
    assert result.exit_code == 0, result.output
    made, bundled = (
        read_result(tmp_path / "sample_truth.h5"),
        read_result(ROOT / "sample_data" / "sample_truth.h5"),
    )
    np.testing.assert_array_equal(made.maps, bundled.maps)
    np.testing.assert_allclose(made.composition, bundled.composition, atol=1e-6)
    counts = [
        float(hs.load(p).data.sum(dtype=np.float64))
        for p in (tmp_path / "sample.hspy", ROOT / "sample_data" / "sample.hspy")
    ]
    assert abs(counts[0] - counts[1]) / counts[1] < 0.01  # the README says: under 1 %

"""The README's hyperspy example runs on the bundled sample data."""

import re
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[2]


def readme_hyperspy_blocks():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Using espm_cli from hyperspy", 1)[1]
    section = re.split(r"\n## ", section, maxsplit=1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_first_example_runs_on_the_sample_data(monkeypatch, capsys):
    if not (REPO / "sample_data" / "sample.hspy").exists():
        pytest.skip("sample_data/sample.hspy is absent")
    blocks = readme_hyperspy_blocks()
    assert len(blocks) >= 2
    monkeypatch.chdir(REPO)
    namespace = {}
    exec(compile(blocks[0], "README.md (hyperspy example)", "exec"), namespace)
    printed = capsys.readouterr().out
    assert "at.%" in printed and "phase 2" in printed
    signal = namespace["s"]
    assert signal.phase_results.maps.shape == (3, 64, 64)
    import matplotlib.pyplot as plt

    plt.close(namespace["fig"])

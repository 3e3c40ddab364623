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


def test_algorithm_example_runs_as_written_on_the_integer_sample(monkeypatch):
    """The `algorithm=` snippet, no flags, on the uint8 sample: a Poisson fit of the counts."""
    import warnings

    import numpy as np

    if not (REPO / "sample_data" / "sample.hspy").exists():
        pytest.skip("sample_data/sample.hspy is absent")
    blocks = readme_hyperspy_blocks()
    monkeypatch.chdir(REPO)
    namespace = {}
    exec(
        compile(
            "import espm_cli\ns = espm_cli.load('sample_data/sample.hspy')\nmodel = s.build_G()",
            "setup",
            "exec",
        ),
        namespace,
    )
    signal = namespace["s"]
    assert not np.issubdtype(signal.data.dtype, np.floating)  # integer counts, as stored
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exec(compile(blocks[1], "README.md (algorithm= example)", "exec"), namespace)
    assert not [w for w in caught if "non-integer" in str(w.message)]  # no normalisation
    results = signal.learning_results
    assert results.poissonian_noise_normalized is False and results.navigation_mask is None
    assert not np.issubdtype(signal.data.dtype, np.floating)  # the data left alone
    assert results.loadings.shape == (64 * 64, 3)

"""Generated configurations (hypothesis): whatever the values, ``decompose --config`` and
``batch`` end with exit code 0, 1 or 2, one line on stderr when they fail, and never a
traceback.

Values mix what a hostile or careless user writes (bools, lists, mappings, nan, inf,
huge numbers, strings) with valid ones, so that some runs reach the fit. The PNG
report is replaced by a no-op to keep each example fast; everything else runs.
"""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from espm_cli.analysis.run_config import OPTIONS  # noqa: E402
from espm_cli.cli.main import cli  # noqa: E402

HOSTILE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=6),
    st.lists(st.integers(-3, 300), max_size=5),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
#: Valid values that keep a fit short (max_iter small: a valid 10**6 would run for long).
VALID = {
    "n_components": st.integers(1, 4) | st.integers(250, 2000),
    "elements": st.sampled_from([["Fe", "O"], "Fe,Pt,O", "O,Si,Al,Fe,Pt,Ti", ["Xx"], "Fe,12", ""]),
    "ignore_elements": st.sampled_from([["Fe"], "Cu"]),
    "beam_energy": st.floats(0.05, 400),
    "elevation": st.floats(-100, 100),
    "azimuth": st.floats(-400, 400),
    "tilt": st.floats(-95, 95),
    "mnka_fwhm": st.floats(-10, 300),
    "thickness": st.floats(-1, 500),
    "density": st.floats(-1, 20),
    "lambda_L": st.floats(-1, 1e6),
    "mu": st.floats(-1, 1e3),
    "epsilon_reg": st.floats(-1, 10),
    "simplex": st.sampled_from(["H", "W", "none", "h", "x"]),
    "max_iter": st.integers(-2, 4) | st.integers(10**7 + 1, 10**12),
    "tol": st.floats(-1, 1),
    "seed": st.integers(-5, 2**33),
    "init": st.sampled_from(["auto", "spa", "kmeans", "nndsvda", "random", "svd", "Kmeans"]),
    "n_init": st.integers(-1, 4) | st.integers(1001, 10**9),
    "beta_loss": st.sampled_from(["kullback-leibler", "Frobenius", "itakura-saito", 1.5, 0.0, "kl", "2"]),
    "normalize": st.booleans(),
    "method": st.sampled_from(["smooth-nmf", "semi-nmf", "Semi-NMF", "pca"]),
    "backend": st.sampled_from(["auto", "numba", "reference", "Numba"]),
    "solver": st.sampled_from(["mu", "pgd", "adagrad", "PGD", "sgd"]),
    "l1": st.floats(-1, 10),
    "learning_rate": st.floats(-1, 5),
    "mask_energy": st.sampled_from([[0.0, 0.3], [[0.0, 0.3], [1.7, 1.8]], [2.0, 1.0], [[0, 99]], []]),
    "bin": st.integers(-1, 20) | st.integers(10**6, 10**9),
    "crop": st.lists(st.integers(-2, 20), min_size=3, max_size=5),
    "energy_range": st.lists(st.floats(-5, 30) | st.just(float("nan")), min_size=1, max_size=3),
    "no_physics": st.booleans(),
    "overwrite": st.booleans(),
    "log_spectra": st.booleans(),
    "lazy": st.booleans(),
    # true runs 20 bootstrap refits (tests/cli/test_select_k_command.py covers it): too slow here
    "uncertainty": st.just(False),
    "output_dir": st.sampled_from(["out", "out/deeper"]),
    "truth": st.sampled_from(["small_truth.h5", "missing_truth.h5", "small.hspy"]),
}
#: Examples per test; ESPM_GENERATED_EXAMPLES=300 for a thorough run.
EXAMPLES = int(os.environ.get("ESPM_GENERATED_EXAMPLES", "60"))
# scheduler / workers: a valid value reaches or starts a cluster (minutes per example);
# their bad values are rows of test_bad_input_table.py, the fit tests/solver/test_distributed_fit.py
NAMES = [option.name for option in OPTIONS if option.name not in ("output_dir", "scheduler", "workers")]


def value(name):
    """Mostly valid values (so that runs get to the fit), one in four hostile."""
    return st.integers(0, 3).flatmap(lambda draw: HOSTILE if draw == 0 else VALID[name])


configs = st.lists(st.sampled_from(NAMES + ["lamda_L"]), unique=True, max_size=6).flatmap(
    lambda keys: st.fixed_dictionaries({key: value(key) if key in VALID else HOSTILE for key in keys})
)


@pytest.fixture(scope="module")
def workspace(small_image_master):
    folder = Path(tempfile.mkdtemp(prefix="espm_generated_"))
    for path in small_image_master:
        shutil.copy(path, folder / path.name)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fast_report(monkeypatch):
    import espm_cli.report

    monkeypatch.setattr(espm_cli.report, "write_report", lambda *args, **kwargs: [])


def check_outcome(result):
    hypothesis.event(f"exit {result.exit_code}")
    assert result.exit_code in (0, 1, 2), (result.exit_code, result.output, repr(result.exception))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    if result.exit_code == 0:
        assert lines == [], result.stderr  # -q: nothing on stderr when it worked
    else:
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def dump(data):
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(config=configs)
def test_generated_decompose_configs(workspace, fast_report, config):
    run = Path(tempfile.mkdtemp(dir=workspace))
    try:
        text = dump({"file": "../small.hspy", "output_dir": "out", **config})
        if text is None:
            return
        (run / "run.yaml").write_text(text)
        shutil.copy(workspace / "small_truth.h5", run / "small_truth.h5")
        result = CliRunner().invoke(cli, ["decompose", "--config", str(run / "run.yaml"), "-q"])
        check_outcome(result)
    finally:
        shutil.rmtree(run, ignore_errors=True)


def mostly(strategy):
    return st.integers(0, 5).flatmap(lambda draw: HOSTILE if draw == 0 else strategy)


small_configs = st.lists(st.sampled_from(NAMES), unique=True, max_size=2).flatmap(
    lambda keys: st.fixed_dictionaries({key: value(key) for key in keys})
)
sweeps = st.lists(st.sampled_from(NAMES), unique=True, max_size=2).flatmap(
    lambda keys: st.fixed_dictionaries(
        {key: mostly(st.lists(value(key), min_size=1, max_size=2)) for key in keys}
    )
)
runs = st.lists(mostly(small_configs.map(lambda c: {"file": "small.hspy", **c})), min_size=1, max_size=2)
studies = st.fixed_dictionaries(
    {
        "defaults": mostly(small_configs),
        "runs": mostly(runs),
        "sweep": mostly(sweeps),
        "output_dir": mostly(st.sampled_from(["results", "results/x"])),
    }
)


@settings(
    max_examples=max(1, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(study=studies)
def test_generated_batch_studies(workspace, fast_report, study):
    run = Path(tempfile.mkdtemp(dir=workspace))
    try:
        text = dump(study)
        if text is None:
            return
        shutil.copy(workspace / "small.hspy", run / "small.hspy")
        (run / "study.yaml").write_text(text)
        result = CliRunner().invoke(cli, ["batch", str(run / "study.yaml"), "-q"])
        check_outcome(result)
        assert not list(run.rglob(".*staging-*")) and not list(run.rglob(".*.part*"))
    finally:
        shutil.rmtree(run, ignore_errors=True)

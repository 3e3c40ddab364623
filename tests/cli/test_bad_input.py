"""Every kind of bad input gets one clear line and exit code 2 (usage) or 1 (refused)."""

import numpy as np
import pytest
from cli_helpers import write_hspy

from espm_cli.cli.main import cli

FAST = ["--max-iter", "5", "-q"]


def check(result, exit_code, *fragments):
    """Exit code, message fragments, and no traceback."""
    assert result.exit_code == exit_code, result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_missing_file(runner, tmp_path):
    check(runner.invoke(cli, ["decompose", str(tmp_path / "nope.hspy")]), 2, "does not exist")
    check(runner.invoke(cli, ["info", str(tmp_path / "nope.bcf")]), 2, "does not exist")
    check(runner.invoke(cli, ["decompose"]), 2, "Missing argument 'FILE'")


@pytest.mark.parametrize(
    "name, content", [("junk.hspy", "not an hdf5 file"), ("notes.txt", "hello"), ("scan.xyz", "1 2 3")]
)
def test_unreadable_or_unsupported_file(runner, tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    result = runner.invoke(cli, ["decompose", str(path)])
    check(result, 1, f"cannot read {name}")
    assert len(result.output.strip().splitlines()) == 1


def test_single_spectrum_and_images_only(runner, tmp_path):
    single = write_hspy(tmp_path / "single.hspy", np.ones(64, dtype=np.uint16), elements=["Fe"])
    check(runner.invoke(cli, ["decompose", str(single)]), 1, "single spectrum, not a spectrum image")
    images = write_hspy(tmp_path / "images.hspy", np.ones((8, 8)), signal_dimension=2)
    check(runner.invoke(cli, ["info", str(images)]), 1, "only images, no spectrum image")


def test_no_elements_and_no_beam_energy(runner, tmp_path):
    rng = np.random.default_rng(0)
    data = rng.poisson(1.0, (6, 6, 64)).astype(np.uint16)
    bare = write_hspy(tmp_path / "bare.hspy", data, elements=None)
    check(
        runner.invoke(cli, ["decompose", str(bare), *FAST]),
        1,
        "lists no elements in its metadata",
        "--elements",
    )
    no_beam = write_hspy(tmp_path / "nobeam.hspy", data, elements=["O"], beam_energy=None)
    check(runner.invoke(cli, ["decompose", str(no_beam), *FAST]), 1, "no beam energy", "--beam-energy")
    # told on the command line, it runs
    ok = runner.invoke(
        cli, ["decompose", str(bare), "--elements", "O,C", "--beam-energy", "200", "-k", "2", *FAST]
    )
    assert ok.exit_code == 0, ok.output


def test_unknown_element_and_no_line_in_range(runner, small_image):
    image, _ = small_image
    check(runner.invoke(cli, ["decompose", str(image), "--elements", "Fe,Xx", *FAST]), 1, "'Xx'")
    check(
        runner.invoke(cli, ["decompose", str(image), "--elements", "Fe,12", *FAST]),
        2,
        "'12' is not an element symbol",
    )
    check(
        runner.invoke(
            cli, ["decompose", str(image), "--elements", "O,Fe", "--energy-range", "3", "8", *FAST]
        ),
        1,
        "'O' has no X-ray line",
    )


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--max-iter", "abc"], "must be a whole number, got 'abc'"),
        (["--lambda-L", "-1"], "'--lambda-L'"),
        (["--mu", "x"], "must be a number, got 'x'"),
        (["-k", "0"], "'-k' / '--n-components'"),
        (["--tol", "-0.1"], "'--tol'"),
        (["--beam-energy", "0"], "'--beam-energy'"),
        (["--bin", "-2"], "'--bin'"),
        (["--simplex", "X"], "'--simplex'"),
        (["--crop", "0", "0", "4"], "'--crop'"),
    ],
)
def test_non_numeric_or_negative_options(runner, small_image, args, fragment):
    image, _ = small_image
    check(runner.invoke(cli, ["decompose", str(image), *args]), 2, fragment)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["-k", "300"], "n_components=300 is larger than the 256 pixels"),
        (["--bin", "17"], "bin_factor 17"),
        (["--energy-range", "30", "40"], "outside the energy axis"),
        (["--energy-range", "5", "2"], "LOW < HIGH"),
        (["--crop", "10", "10", "10", "10"], "must lie inside the image of 16 pixels across and 16 down"),
    ],
)
def test_options_that_do_not_fit_the_data(runner, small_image, args, fragment):
    image, _ = small_image
    result = runner.invoke(cli, ["decompose", str(image), *args, *FAST])
    check(result, 2, fragment)
    assert not (image.parent / "small_espm").exists()


def test_output_dir_not_writable(runner, small_image, tmp_path):
    image, _ = small_image
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    check(
        runner.invoke(cli, ["decompose", str(image), "-o", str(blocker / "out"), *FAST]), 1, "is not writable"
    )


def test_yaml_syntax_error_names_the_line(runner, small_image, tmp_path):
    image, _ = small_image
    config = tmp_path / "bad.yaml"
    config.write_text("n_components: 3\nlambda_L: [1, 2\nmu: 0\n")
    check(
        runner.invoke(cli, ["decompose", str(image), "--config", str(config)]),
        2,
        "YAML syntax error in bad.yaml at line",
    )


def test_unknown_yaml_key_is_named_with_the_valid_ones(runner, small_image, tmp_path):
    image, _ = small_image
    config = tmp_path / "typo.yaml"
    config.write_text("n_components: 3\nlamda_L: 1.0\n")
    check(
        runner.invoke(cli, ["decompose", str(image), "--config", str(config)]),
        2,
        "unknown key 'lamda_L'",
        "valid keys:",
        "lambda_L",
        "n_components",
    )


def test_bad_value_in_yaml(runner, small_image, tmp_path):
    image, _ = small_image
    config = tmp_path / "value.yaml"
    config.write_text("max_iter: many\n")
    check(
        runner.invoke(cli, ["decompose", str(image), "--config", str(config)]),
        2,
        "must be a whole number, got 'many'",
    )


def test_nan_run_is_reported_and_writes_nothing(runner, small_image, monkeypatch):
    from espm_cli.solver import SmoothNMF

    original_fit = SmoothNMF.fit

    def fit_then_break(self, X, *args, **kwargs):
        original_fit(self, X, *args, **kwargs)
        self.W_[0, 0] = np.nan
        return self

    monkeypatch.setattr(SmoothNMF, "fit", fit_then_break)
    image, _ = small_image
    check(runner.invoke(cli, ["decompose", str(image), *FAST]), 1, "NaN", "nothing was written")
    assert not (image.parent / "small_espm").exists()


def test_simulate_bad_phase(runner, tmp_path):
    check(
        runner.invoke(cli, ["simulate", str(tmp_path / "s.hspy"), "--phase", "Fe50"]), 1, "Symbol=at.% pairs"
    )
    check(runner.invoke(cli, ["simulate", str(tmp_path / "s.txt")]), 1, "must end in .hspy")

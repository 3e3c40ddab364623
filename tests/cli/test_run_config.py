"""The declarative option table: click options, checks, defaults and hash all come from it."""

import dataclasses

import pytest

from espm_cli.analysis.run_config import OPTIONS, ConfigError, check_value, config_hash, make_config
from espm_cli.cli.decompose import decompose


def another_value(option, tmp_path):
    """A valid value of ``option`` other than its default."""
    if option.kind == "flag":
        return not option.default
    if option.kind in ("choice", "loss"):
        return next(c for c in option.choices if c != option.default)
    if option.multiple:
        return ((0.0, 0.25), (1.7, 1.8))
    if option.kind == "symbols":
        return ("Fe", "O")
    if option.kind == "path":
        path = tmp_path / "truth.h5"
        path.write_text("")
        return str(path)
    if option.kind == "folder":
        return str(tmp_path / "out")
    if option.kind == "address":
        return "tcp://127.0.0.1:8786"
    if option.nargs == 4:
        return (0, 0, 4, 4)
    if option.nargs == 2:
        return (0.5, 8.0)
    low = option.minimum if option.minimum is not None else 0
    value = low + 1 if option.kind == "int" else low + 0.5
    return value if value != option.default else value + 1


def test_every_row_is_a_click_option_with_its_default():
    params = {p.name: p for p in decompose.params}
    for option in OPTIONS:
        assert option.name in params, option.name
        assert params[option.name].default == option.default
        assert option.cli_flags[-1] in params[option.name].opts


def test_defaults_and_frozen():
    config = make_config({"file": "/data/a.hspy"})
    assert {option.name: config[option.name] for option in OPTIONS} == {o.name: o.default for o in OPTIONS}
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.max_iter = 5
    assert make_config(config, max_iter=5).max_iter == 5 and config.max_iter == 200


def test_hash_follows_exactly_the_options_that_change_the_result(tmp_path):
    base = make_config({"file": "/data/a.hspy"})
    reference = config_hash(base, "0" * 64)
    for option in OPTIONS:
        changed = make_config(base, **{option.name: another_value(option, tmp_path)})
        assert (config_hash(changed, "0" * 64) != reference) == option.changes_result, option.name


@pytest.mark.parametrize(
    "name, value",
    [
        ("max_iter", True),
        ("n_components", 2.7),
        ("n_components", [2, 3]),
        ("overwrite", -3),
        ("lambda_L", float("nan")),
        ("mu", float("inf")),
        ("tol", "nan"),
        ("simplex", None),
        ("elements", [1]),
        ("crop", [0, 0, 4]),
        ("energy_range", [3, 1]),
        ("seed", -1),
    ],
)
def test_no_silent_coercion(name, value):
    with pytest.raises(ConfigError) as error:
        check_value(name, value)
    assert error.value.option == name and str(error.value).startswith(
        f"--{name.replace('_', '-')}" if name != "n_components" else "--n-components"
    )


def test_strings_parse_as_on_the_command_line():
    assert check_value("max_iter", "5") == 5 and check_value("n_components", 3.0) == 3
    assert check_value("elements", "Fe, Pt,O") == ("Fe", "Pt", "O")
    assert check_value("simplex", "h") == "H" and check_value("lambda_L", 1) == 1.0


def test_start_options_reach_the_solver(runner, small_image):
    from espm_cli.cli.main import cli
    from espm_cli.io import read_result

    image, _ = small_image
    config = image.parent / "run.yaml"
    config.write_text("init: kmeans\nn_init: 2\n")
    result = runner.invoke(
        cli,
        [
            "decompose",
            str(image),
            "--config",
            str(config),
            "--max-iter",
            "3",
            "-q",
            "-o",
            str(image.parent / "a"),
        ],
    )
    assert result.exit_code == 0, result.output
    saved = read_result(image.parent / "a" / "small.h5")
    assert saved.estimator_params["init"] == "kmeans" and saved.estimator_params["n_init"] == 2
    assert saved.config["init"] == "kmeans" and saved.config["n_init"] == 2
    # the defaults: n_init None is the solver's "auto"
    result = runner.invoke(
        cli, ["decompose", str(image), "--max-iter", "3", "-q", "-o", str(image.parent / "b")]
    )
    assert result.exit_code == 0, result.output
    saved = read_result(image.parent / "b" / "small.h5")
    assert saved.estimator_params["init"] == "auto" and saved.estimator_params["n_init"] == "auto"


def test_the_workflow_imports_no_command_line():
    import subprocess
    import sys

    code = (
        "import sys, espm_cli.analysis.run, espm_cli.analysis.run_config, "
        "espm_cli.analysis.input_checks; "
        "print(sorted(m for m in sys.modules if m == 'click' or m.startswith('espm_cli.cli')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout

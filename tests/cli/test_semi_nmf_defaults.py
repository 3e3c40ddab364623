"""--method semi-nmf has its own defaults (no simplex, the Frobenius loss), stated and
recorded; a setting given that it cannot honour is a usage error, from every front end."""

import csv

import numpy as np
import pytest
import yaml

from espm_cli.analysis.decomposition import make_estimator
from espm_cli.analysis.run_config import ConfigError, make_config
from espm_cli.cli.main import cli
from espm_cli.io import ProcessingOptionError, read_result
from espm_cli.solver import SemiNMF


def _decompose(runner, image, *extra):
    out = image.parent / "out"
    result = runner.invoke(
        cli, ["decompose", str(image), "-k", "2", "--max-iter", "5", "-o", str(out), "--overwrite", *extra]
    )
    return result, out / f"{image.stem}.h5"


@pytest.mark.parametrize(
    "extra, shown",
    [
        (["--simplex", "H"], "--simplex H"),
        (["--simplex", "W"], "--simplex W"),
        (["--beta-loss", "kullback-leibler"], "--beta-loss kullback-leibler"),
        (["--beta-loss", "1.5"], "--beta-loss 1.5"),
        (["--lambda-L", "0.5"], "--lambda-L 0.5"),
        (["--mu", "0.1"], "--mu 0.1"),
        (["--normalize"], "--normalize"),
        (["--init", "kmeans"], "--init kmeans"),
        (["--learning-rate", "0.3"], "--learning-rate 0.3"),
        (["--solver", "adagrad"], "--solver adagrad"),
        (["--mask-energy", "0", "0.3"], "--mask-energy 0 0.3"),
    ],
)
def test_a_setting_semi_nmf_cannot_honour_is_a_usage_error(runner, small_image, extra, shown):
    image, _ = small_image
    for order in (["--method", "semi-nmf", *extra], [*extra, "--method", "semi-nmf"]):
        result, saved = _decompose(runner, image, *order)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert shown in lines[0] and "semi-nmf" in lines[0], lines[0]
        assert "leave it out" in lines[0] or "use one of them" in lines[0] or "crop" in lines[0]
        assert not saved.exists()


def test_semi_nmf_defaults_are_stated_and_recorded(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--method", "semi-nmf", "-v")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if "phases to" in line)
    assert "semi-nmf" in line and "no simplex" in line and "frobenius" in line and "start svd" in line, line
    config = read_result(saved).config
    assert config["method"] == "semi-nmf"
    assert config["simplex"] == "none" and config["beta_loss"] == "frobenius"
    # what SemiNMF does: one start from the singular vectors, in numpy
    assert config["init"] == "svd" and config["n_init"] == 1 and config["backend"] == "reference"
    run_yaml = yaml.safe_load((saved.parent / "run.yaml").read_text())
    assert run_yaml["simplex"] == "none" and run_yaml["beta_loss"] == "frobenius"
    assert run_yaml["init"] == "svd" and run_yaml["n_init"] == 1
    # the recorded file reproduces the run: its values are semi-nmf's own
    again = runner.invoke(cli, ["decompose", "--config", str(saved.parent / "run.yaml"), "--overwrite", "-q"])
    assert again.exit_code == 0, again.output


def test_semi_nmf_takes_its_own_values_given_explicitly(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(
        runner,
        image,
        *("--method", "semi-nmf", "--simplex", "none", "--beta-loss", "frobenius", "--lambda-L", "0"),
        *("--solver", "pgd", "--l1", "0.1", "--seed", "3", "-q"),
    )
    assert result.exit_code == 0, result.output
    assert read_result(saved).loss_names == ["frobenius", "l1_sparsity", "total"]


@pytest.mark.parametrize(
    "extra, init",
    [
        (["--n-init", "1"], "svd"),
        (["--init", "random"], "random"),
        (["--init", "svd", "--backend", "auto"], "svd"),
        (["--backend", "reference"], "svd"),
    ],
)
def test_semi_nmf_takes_the_start_and_backend_it_has(runner, small_image, extra, init):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--method", "semi-nmf", *extra, "-q")
    assert result.exit_code == 0, result.output
    assert read_result(saved).config["init"] == init


def test_the_semi_nmf_start_reaches_the_estimator():
    assert make_estimator(2, None, (4, 4), method="semi-nmf").init == "svd"
    assert make_estimator(2, None, (4, 4), method="semi-nmf", init="random").init == "random"
    with pytest.raises(ProcessingOptionError, match="semi-nmf starts from svd or random"):
        make_estimator(2, None, (4, 4), method="semi-nmf", init="spa")


def test_smooth_nmf_keeps_its_defaults(runner, small_image):
    image, _ = small_image
    result, saved = _decompose(runner, image, "--simplex", "H", "-q")
    assert result.exit_code == 0, result.output
    config = read_result(saved).config
    assert config["simplex"] == "H" and config["beta_loss"] == "kullback-leibler"


def test_yaml_config_setting_refused_under_semi_nmf(runner, small_image):
    image, _ = small_image
    run_yaml = image.parent / "run.yaml"
    run_yaml.write_text(f"file: {image.name}\nmethod: semi-nmf\nsimplex: H\nmax_iter: 5\n")
    result = runner.invoke(cli, ["decompose", "--config", str(run_yaml), "-o", str(image.parent / "o")])
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "--simplex H" in line and "semi-nmf" in line
    # a smooth-nmf file with the method changed on the command line: its simplex was given
    run_yaml.write_text(f"file: {image.name}\nbeta_loss: kullback-leibler\nmax_iter: 5\n")
    result = runner.invoke(cli, ["decompose", "--config", str(run_yaml), "--method", "semi-nmf"])
    assert result.exit_code == 2 and "--beta-loss kullback-leibler" in result.stderr


def test_batch_study_semi_nmf(runner, small_image):
    image, _ = small_image
    study = image.parent / "study.yaml"
    study.write_text(
        "output_dir: results\ndefaults:\n  max_iter: 5\n  lambda-L: 0.0\n  n_components: 2\n"
        f"runs:\n  - file: {image.name}\n    name: small\n"
        "sweep:\n  method: [smooth-nmf, semi-nmf]\n"
    )
    result = runner.invoke(cli, ["batch", str(study), "-q"])
    assert result.exit_code == 0, result.output
    with open(image.parent / "results" / "summary.csv") as handle:
        names = [row["name"] for row in csv.DictReader(handle)]
    configs = {name: read_result(image.parent / "results" / name / "small.h5").config for name in names}
    by_method = {config["method"]: config for config in configs.values()}
    assert by_method["semi-nmf"]["simplex"] == "none" and by_method["semi-nmf"]["beta_loss"] == "frobenius"
    assert by_method["smooth-nmf"]["simplex"] == "H"

    study.write_text(study.read_text().replace("lambda-L: 0.0", "simplex: H"))
    result = runner.invoke(cli, ["batch", str(study), "-q"])
    assert result.exit_code == 2
    line = result.stderr.strip().splitlines()[-1]
    assert "--simplex H" in line and "semi-nmf" in line, line


def test_make_config_gives_the_method_defaults():
    semi = make_config({"method": "semi-nmf"})
    assert semi["simplex"] == "none" and semi["beta_loss"] == "frobenius"
    smooth = make_config({})
    assert smooth["simplex"] == "H" and smooth["beta_loss"] == "kullback-leibler"
    assert make_config(smooth, method="semi-nmf") == semi  # smooth's defaults were not given
    with pytest.raises(ConfigError) as error:
        make_config(make_config({"simplex": "H"}), method="semi-nmf")
    assert error.value.option == "simplex"


def test_make_estimator_applies_the_same_rule():
    estimator = make_estimator(2, None, (4, 4), method="semi-nmf", l1=0.1)
    assert isinstance(estimator, SemiNMF) and estimator.l1 == 0.1
    for arguments, shown in (
        ({"simplex": "H"}, "simplex='H'"),
        ({"beta_loss": "kullback-leibler"}, "beta_loss='kullback-leibler'"),
        ({"lambda_L": 1.0}, "lambda_L=1.0"),
        ({"mask": np.zeros(4, bool)}, "a mask"),
    ):
        with pytest.raises(ProcessingOptionError, match="semi-nmf") as error:
            make_estimator(2, None, (4, 4), method="semi-nmf", **arguments)
        assert str(error.value).startswith(shown)
    assert make_estimator(2, None, (4, 4), method="semi-nmf", simplex=None, beta_loss="frobenius")

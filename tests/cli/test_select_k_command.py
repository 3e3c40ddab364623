"""espm select-k, decompose --uncertainty and select_k: true in a study, through CliRunner."""

import csv
import json

import h5py

from espm_cli.cli.main import cli
from espm_cli.io import read_result

FAST = ["--max-iter", "4", "-q"]


def test_select_k_writes_the_curve_and_a_result_folder_per_k(runner, small_image):
    image, _ = small_image
    out = image.parent / "sk"
    result = runner.invoke(
        cli, ["select-k", str(image), "--k", "1..2", "--folds", "2", "-o", str(out), *FAST]
    )
    assert result.exit_code == 0, result.output
    assert "suggested k:" in result.stdout
    rows = list(csv.DictReader((out / "select_k.csv").open()))
    assert [row["k"] for row in rows] == ["1", "2"]
    assert sum(row["suggested"] == "True" for row in rows) == 1
    assert len(rows[0]["heldout_folds"].split()) == 2
    assert (out / "select_k.png").stat().st_size > 1000
    for k in (1, 2):  # each a normal result folder of espm decompose
        fitted = read_result(out / f"k{k}" / "small.h5")
        assert fitted.n_components == k
        assert (out / f"k{k}" / "heldout.json").is_file()
    # a rerun with the same options keeps the fits (resumable like a batch)
    before = (out / "k2" / "small.h5").stat().st_mtime_ns
    again = runner.invoke(
        cli, ["select-k", str(image), "--k", "1..2", "--folds", "2", "-o", str(out), "--max-iter", "4"]
    )
    assert again.exit_code == 0, again.output
    assert "up to date" in again.stderr
    assert (out / "k2" / "small.h5").stat().st_mtime_ns == before
    # other folds: refitted
    before = (out / "k1" / "small.h5").stat().st_mtime_ns
    other = runner.invoke(
        cli,
        [
            "select-k",
            str(image),
            "--k",
            "1",
            "--folds",
            "2",
            "--fold-seed",
            "5",
            "-o",
            str(out),
            "--max-iter",
            "4",
        ],
    )
    assert other.exit_code == 0, other.output
    assert "k1: done" in other.stderr
    assert (out / "k1" / "small.h5").stat().st_mtime_ns != before


def test_decompose_uncertainty_writes_error_bars(runner, small_image):
    image, _ = small_image
    out = image.parent / "out"
    result = runner.invoke(cli, ["decompose", str(image), "--uncertainty", "-o", str(out), *FAST])
    assert result.exit_code == 0, result.output
    assert "±" in result.stdout
    header = (out / "composition.csv").read_text().splitlines()[0]
    assert "Fe_at%_sd" in header
    fitted = read_result(out / "small.h5")
    assert fitted.composition_sd.shape == fitted.composition.shape
    assert fitted.maps_sd.shape == fitted.maps.shape
    with h5py.File(out / "small.h5") as f:  # plain h5py reads it
        assert f["uncertainty"].attrs["method"] == "parametric bootstrap"


def test_study_with_select_k_reports_heldout_deviance(runner, small_image):
    image, _ = small_image
    study = image.parent / "study.yaml"
    study.write_text(
        "select_k: true\ndefaults: {max_iter: 3}\nruns:\n  - file: small.hspy\n"
        "sweep:\n  n_components: [1, 2]\n"
    )
    result = runner.invoke(cli, ["batch", str(study), "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((image.parent / "study_results" / "summary.csv").open()))
    assert all(float(row["heldout_deviance"]) > 0 for row in rows)
    assert {row["suggested_k"] for row in rows} in ({"1"}, {"2"})
    assert "held-out deviance" in result.stdout


def test_study_fold_settings_from_yaml_reach_the_fold_fits(runner, small_image):
    image, _ = small_image
    study = image.parent / "folds.yaml"
    study.write_text(
        "select_k: {folds: 2, fold_kind: speckle, fold_seed: 7}\ndefaults: {max_iter: 3}\n"
        "runs:\n  - file: small.hspy\nsweep:\n  n_components: [1, 2]\n"
    )
    result = runner.invoke(cli, ["batch", str(study), "-q"])
    assert result.exit_code == 0, result.output
    records = sorted((image.parent / "folds_results").glob("*/heldout.json"))
    assert len(records) == 2
    for path in records:
        record = json.loads(path.read_text())
        assert (record["n_folds"], record["fold_kind"], record["fold_seed"]) == (2, "speckle", 7)
        assert len(record["heldout"]) == 2


def test_fold_fits_use_the_data_the_run_read(runner, small_image, monkeypatch):
    """select-k reads the file once per k (the run's read serves its fold fits too), and the
    held-out numbers are those of a fresh read."""
    import espm_cli.io
    from espm_cli.analysis.run import run_decomposition
    from espm_cli.analysis.select_k import heldout_of_config

    image, _ = small_image
    config = {"file": str(image), "n_components": 2, "max_iter": 4, "output_dir": str(image.parent / "o1")}
    outcome = run_decomposition(config)
    settings = {"n_folds": 2, "fold_kind": "speckle", "fold_seed": 0}
    reused = heldout_of_config(config, **settings, loaded=outcome.loaded)
    fresh = heldout_of_config(config, **settings)
    assert reused["heldout"] == fresh["heldout"] and reused["training"] == fresh["training"]

    reads = []
    original = espm_cli.io.load_spectrum_image

    def counting(*args, **kwargs):
        if not kwargs.get("lazy"):  # the parent's shape check reads lazily, no counts
            reads.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(espm_cli.io, "load_spectrum_image", counting)
    out = image.parent / "sk_once"
    result = runner.invoke(
        cli, ["select-k", str(image), "--k", "1..2", "--folds", "2", "--jobs", "1", "-o", str(out), *FAST]
    )
    assert result.exit_code == 0, result.output
    assert len(reads) == 2, reads  # one per k

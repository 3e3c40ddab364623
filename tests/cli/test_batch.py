"""espm batch: expansion, resume, --force, failures, parallel runs."""

import csv

import pytest

from espm_cli.cli.main import cli


def write_study(path, image, extra_runs="", sweep="sweep:\n  n_components: [2, 3]\n"):
    path.write_text(
        "output_dir: results\n"
        "defaults:\n  max_iter: 5\n  lambda-L: 0.0\n"
        f"runs:\n  - file: {image.name}\n    name: small\n{extra_runs}"
        f"{sweep}"
    )
    return path


def read_summary(folder):
    with open(folder / "summary.csv") as handle:
        return list(csv.DictReader(handle))


def test_sweep_runs_then_resumes_then_forces(runner, small_image):
    image, _ = small_image
    study = write_study(image.parent / "study.yaml", image)
    first = runner.invoke(cli, ["batch", str(study)])
    assert first.exit_code == 0, first.output
    rows = read_summary(image.parent / "results")
    assert [r["name"] for r in rows] == ["small_n_components2", "small_n_components3"]
    assert [r["status"] for r in rows] == ["done", "done"]
    assert (image.parent / "results" / "small_n_components3" / "small.h5").is_file()
    assert "small_n_components2" in first.stdout and "summary:" in first.stdout

    again = runner.invoke(cli, ["batch", str(study)])
    assert again.exit_code == 0
    assert [r["status"] for r in read_summary(image.parent / "results")] == ["up to date"] * 2

    # a changed default changes the configuration hash: those runs are redone
    study.write_text(study.read_text().replace("max_iter: 5", "max_iter: 6"))
    changed = runner.invoke(cli, ["batch", str(study)])
    assert [r["status"] for r in read_summary(image.parent / "results")] == ["done", "done"], changed.output

    forced = runner.invoke(cli, ["batch", str(study), "--force"])
    assert [r["status"] for r in read_summary(image.parent / "results")] == ["done", "done"], forced.output


def test_failing_run_is_reported_and_others_go_on(runner, small_image):
    image, _ = small_image
    extra = f"  - file: {image.name}\n    name: broken\n    elements: [Fe, Xx]\n"
    study = write_study(image.parent / "study.yaml", image, extra_runs=extra, sweep="")
    result = runner.invoke(cli, ["batch", str(study)])
    assert result.exit_code == 1
    assert "1 of 2 runs failed" in result.output
    rows = read_summary(image.parent / "results")
    assert [r["status"] for r in rows] == ["done", "failed"]
    assert "'Xx'" in rows[1]["error"]


def test_parallel_jobs(runner, small_image):
    image, _ = small_image
    study = write_study(image.parent / "study.yaml", image)
    result = runner.invoke(cli, ["batch", str(study), "--jobs", "2", "-q"])
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in read_summary(image.parent / "results")] == ["done", "done"]


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("runs:\n  - file: small.hspy\n    lamda_L: 1\n", "unknown key 'lamda_L'"),
        ("defaults: {k: 3}\nruns:\n  - file: small.hspy\n", "unknown key 'k'"),
        ("run:\n  - file: small.hspy\n", "unknown key 'run'"),
        ("defaults: {}\n", "needs a 'runs:' list"),
        ("runs:\n  - name: x\n", "has no 'file:'"),
        ("runs:\n  - file: small.hspy\nsweep:\n  mu: 0.5\n", "must be a non-empty list"),
        ("runs:\n  - file: small.hspy\n    max_iter: -3\n", "'max_iter' in study.yaml runs[0]"),
        ("runs:\n  - file: missing.hspy\n", "does not exist"),
        ("runs:\n  - file: small.hspy\n   bad indent: [\n", "YAML syntax error in study.yaml at line"),
    ],
)
def test_bad_study_files(runner, small_image, text, fragment):
    image, _ = small_image
    study = image.parent / "study.yaml"
    study.write_text(text)
    result = runner.invoke(cli, ["batch", str(study)])
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert "Traceback" not in result.output


def test_ctrl_c_in_a_study_then_resume(runner, small_image, monkeypatch):
    import os
    import signal

    from espm_cli.analysis import run as pipeline

    if not pipeline.solver_accepts_callback():
        pytest.skip("SmoothNMF has no per-iteration callback")
    image, _ = small_image
    study = image.parent / "study.yaml"
    study.write_text(
        "output_dir: results\ndefaults:\n  max_iter: 30\n  tol: 0\n"
        f"runs:\n  - file: {image.name}\n    name: s\nsweep:\n  n_components: [2, 3, 4]\n"
    )
    original_fit = pipeline.fit

    def ctrl_c_in_the_second_run(image, model, config, progress=None, should_stop=None):
        def progress_then_ctrl_c(n_iter, losses_row):
            if config["n_components"] == 3 and n_iter == 3:
                os.kill(os.getpid(), signal.SIGINT)

        return original_fit(image, model, config, progress_then_ctrl_c, should_stop)

    monkeypatch.setattr(pipeline, "fit", ctrl_c_in_the_second_run)
    import espm_cli.report

    monkeypatch.setattr(espm_cli.report, "write_report", lambda *args, **kwargs: [])  # speed
    first = runner.invoke(cli, ["batch", str(study), "-q"])
    assert first.exit_code == 130, first.output
    results = image.parent / "results"
    assert [r["status"] for r in read_summary(results)] == ["done", "interrupted", "not started"]
    assert not (results / "s_n_components4").exists()
    assert [p.name for p in results.iterdir() if p.name.startswith(".")] == []

    monkeypatch.setattr(pipeline, "fit", original_fit)
    again = runner.invoke(cli, ["batch", str(study), "-q"])
    assert again.exit_code == 0, again.output
    # the interrupted run is complete on disk but not taken as done
    assert [r["status"] for r in read_summary(results)] == ["up to date", "done", "done"]

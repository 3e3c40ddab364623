"""Ctrl-C during the fit still writes the result (not converged); the progress bar."""

import io
import os
import signal

import pytest

from espm_cli.analysis import run as pipeline
from espm_cli.cli import decompose as decompose_module
from espm_cli.cli.main import cli
from espm_cli.io import read_result


def test_ctrl_c_stops_after_the_iteration_and_writes(runner, small_image, monkeypatch):
    if not pipeline.solver_accepts_callback():
        pytest.skip("SmoothNMF has no per-iteration callback")
    original_fit = pipeline.fit

    def fit_interrupted_at_13(image, model, config, progress=None, should_stop=None):
        def progress_then_ctrl_c(n_iter, losses_row):
            if n_iter == 13:
                os.kill(os.getpid(), signal.SIGINT)

        return original_fit(image, model, config, progress_then_ctrl_c, should_stop)

    monkeypatch.setattr(pipeline, "fit", fit_interrupted_at_13)
    image, _ = small_image
    result = runner.invoke(cli, ["decompose", str(image), "--max-iter", "50", "--tol", "0"])
    assert result.exit_code == 130, result.output  # the shell's code for Ctrl-C
    assert "13 iterations (interrupted)" in result.stdout
    saved = read_result(image.parent / "small_espm" / "small.h5")
    assert saved.n_iter == 13 and not saved.converged
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_progress_bar_only_on_a_terminal(monkeypatch):
    fake = io.StringIO()
    monkeypatch.setattr(fake, "isatty", lambda: False, raising=False)
    monkeypatch.setattr("sys.stderr", fake)
    assert decompose_module._progress_bar(10) is None
    monkeypatch.setattr(fake, "isatty", lambda: True, raising=False)
    bar = decompose_module._progress_bar(10)
    bar.update(4, [1.0, 0.0, 0.0, 123.5])
    bar.close()
    assert "4/10" in fake.getvalue() and "objective 123.5" in fake.getvalue()

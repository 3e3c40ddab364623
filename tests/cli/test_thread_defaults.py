"""The command line (not the library) sets single-threaded OpenBLAS unless the user chose."""

import os

from click.testing import CliRunner

from espm_cli.cli.main import cli


def test_cli_sets_openblas_threads_when_unset(monkeypatch):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    result = CliRunner().invoke(cli, ["info", "--help"])
    assert result.exit_code == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


def test_cli_keeps_the_users_thread_setting(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    result = CliRunner().invoke(cli, ["info", "--help"])
    assert result.exit_code == 0
    assert os.environ["OPENBLAS_NUM_THREADS"] == "2"


def test_importing_the_library_changes_no_thread_setting(monkeypatch):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY")}
    code = (
        "import os, espm_cli.solver, espm_cli.physics; "
        "print(os.environ.get('OPENBLAS_NUM_THREADS'), os.environ.get('OMP_WAIT_POLICY'))"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["None", "None"]

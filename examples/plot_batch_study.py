"""
A batch study from YAML
=======================

``espm batch STUDY.yaml`` runs many files and parameter sweeps from one YAML file: every
key is an ``espm decompose`` option name. Here a study over the bundled sample sweeps the
number of phases; the command is called in-process through click's test runner (on a
terminal it is the same line).
"""

# %%
# Write the study
# ---------------
import csv
import tempfile
from pathlib import Path

from click.testing import CliRunner

import espm_cli
from espm_cli.cli.main import cli

SAMPLE = Path(espm_cli.__file__).resolve().parents[1] / "sample_data" / "sample.hspy"
folder = Path(tempfile.mkdtemp())
study = folder / "study.yaml"
study.write_text(
    f"""\
output_dir: results
defaults:
  max_iter: 100
runs:
  - file: {SAMPLE}
    name: sample
sweep:
  n_components: [2, 3]
""",
    encoding="utf-8",
)

# %%
# Run it
# ------
# The table of runs goes to stdout, and to ``summary.csv``; each run has its own folder
# with its result file and figures. Running the same study again skips the runs that are
# up to date (same input file, same options).
runner = CliRunner()
outcome = runner.invoke(cli, ["batch", str(study)])
print("exit code", outcome.exit_code)
print(outcome.output)

with open(folder / "results" / "summary.csv", newline="", encoding="utf-8") as handle:
    for row in csv.DictReader(handle):
        print(row["name"], row["status"], row["final_objective"], row["n_iter"], row["converged"])

again = runner.invoke(cli, ["batch", str(study)])
print(again.output.splitlines()[-4:])

# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs

.PHONY: test demo install bench lint format typecheck docs clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install when pyproject.toml changes; compile the numba kernels once at install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,dev]"
	$(PY) -m espm_cli.solver.warmup
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# decompose the sample data (configs/run.yaml) and compare the phases with the truth
demo: $(STAMP)
	$(VENV)/bin/espm decompose --config configs/run.yaml --overwrite

bench: $(STAMP)
	$(PY) benchmarks/bench_solver.py

# ruff: lint rules and the format check ([tool.ruff] in pyproject.toml); `make format` rewrites
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# mypy over the public modules listed in [tool.mypy] of pyproject.toml
typecheck: $(STAMP)
	$(VENV)/bin/mypy

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(PY) -m pip install --quiet -e ".[test,dev,docs]"
	touch $(DOCS_STAMP)

# the documentation site, gallery examples run, warnings as errors: docs/_build/html/index.html
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(PY) -m sphinx -b html -W --keep-going -q docs docs/_build/html
	@echo "open docs/_build/html/index.html"

clean:
	rm -rf $(VENV) build *.egg-info docs/_build docs/api docs/auto_examples docs/sg_execution_times.rst

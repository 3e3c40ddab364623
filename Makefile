# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install when pyproject.toml changes; compile the numba kernels once at install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
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

clean:
	rm -rf $(VENV) build *.egg-info

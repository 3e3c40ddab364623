# Two entry points for a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo install bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-install when pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

demo: $(STAMP)
	$(PY) -m espm_cli.demo

bench: $(STAMP)
	$(PY) benchmarks/bench_solver.py

clean:
	rm -rf $(VENV) build *.egg-info

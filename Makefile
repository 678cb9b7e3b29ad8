# Everything a fresh machine needs: `make run` (the main job) and `make test` (the suite).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup browser run test lint bench bench-quick clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -c 'from tracedsl.output.plain_compiled import warm; warm()' || echo 'numba did not load: tracedsl reads with numpy alone'  # compile the fast reader once, now
	touch $(STAMP)

# Debian's chromium, for the HTML tests (needs root, as on the project's machines).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: setup
	$(VENV)/bin/tracedsl run default --num-sessions 1000 --seed 42 --output runs

lint: setup
	$(VENV)/bin/ruff check tracedsl tests benchmarks

test: setup browser lint
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/run.py

bench-quick: setup
	$(PY) benchmarks/run.py --sizes 1k,10k,100k

clean:
	rm -rf $(VENV) runs build dist *.egg-info .pytest_cache

# ILRS station node: one entry point for people and CI.
# `make run` creates the virtual environment on first use with what running needs; `make test`
# (and lint, hil, venv) add the development tools. Each install has its own stamp.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.installed-base
DEV    := $(VENV)/.installed-dev
PORT   ?=
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench hil flash fuzz clean

# Python 3.11 or newer, checked before anything is made.
PYCHECK := import sys; sys.exit(sys.version_info < (3, 11))
PYWHICH := import sys; print(sys.version.split()[0], sys.executable)

# A .venv its interpreter cannot run (made by a 3.10, or by an interpreter since removed) is
# rebuilt: forget its stamps here, and the recipe below replaces it.
ifneq ($(shell $(PY) -c '$(PYCHECK)' >/dev/null 2>&1 && echo ok),ok)
  $(shell rm -f $(BASE) $(DEV))
endif

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 10

$(BASE): pyproject.toml
	@$(PYTHON) -c '$(PYCHECK)' >/dev/null 2>&1 || { \
	  echo "make: this project needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -c '$(PYWHICH)' 2>/dev/null || echo 'not found'): run make PYTHON=python3.12 $(MAKECMDGOALS)" >&2; \
	  exit 2; }
	@if ! $(PY) -c '$(PYCHECK)' >/dev/null 2>&1; then \
	  if [ -e $(VENV) ]; then echo "make: $(VENV) was made by an interpreter that cannot run it now: rebuilding it with $(PYTHON)"; rm -rf $(VENV); fi; \
	  echo "$(PYTHON) -m venv $(VENV)"; $(PYTHON) -m venv $(VENV); fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(BASE)

$(DEV): $(BASE)
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --upgrade --no-compile --target typings micropython-rp2-rpi_pico-stubs
	touch $(DEV)

venv: $(DEV)  ## create .venv with everything: what running needs and the development tools

run: $(BASE)  ## the main job: console against the simulated node (a scripted demo without a terminal)
	$(PY) -m ground.run $(ARGS)

test: $(DEV)  ## lint, unit/property tests on both interpreters, the HIL suite on the simulated node
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest

lint: $(DEV)  ## ruff everywhere; type-check ground/hil (CPython) and protocol/firmware (Pico stubs)
	$(PY) -m ruff check .
	$(PY) -m mypy ground hil
	$(PY) -m pyright -p pyrightconfig.json

bench: $(BASE)  ## benchmarks: prints a table, writes bench/results/bench.json (node rows on a board with PORT=)
	$(PY) -m bench $(if $(PORT),--port $(PORT),) $(ARGS)

hil: $(DEV)  ## HIL suite: on the simulated node, or on a board with PORT=/dev/ttyACM0
	$(PY) -m pytest hil/tests $(if $(PORT),--target $(PORT),--target sim) $(ARGS)

flash: $(BASE)  ## flash a Pico: make flash PORT=/dev/ttyACM0
	@test -n "$(PORT)" || { echo "make flash: set PORT, e.g. make flash PORT=/dev/ttyACM0" >&2; exit 2; }
	$(PY) -m ground flash --port $(PORT)

fuzz: $(BASE)  ## live protocol fuzzing: make fuzz [PORT=...] ARGS='--cases 100000'
	$(PY) -m ground fuzz $(if $(PORT),--port $(PORT),) $(ARGS)

clean:  ## remove build output and caches (keeps .venv)
	rm -rf build dist bench/results .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

# ILRS station node: one entry point for people and CI.
# `make run` and `make test` create the virtual environment on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?=
TARGET ?=
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help venv run test lint bench hil flash fuzz clean

help:  ## list the targets
	@grep -E '^[a-z]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | expand -t 10

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m pip install --quiet --upgrade --no-compile --target typings micropython-rp2-rpi_pico-stubs
	touch $(STAMP)

venv: $(STAMP)  ## create .venv and install the project with everything it needs

run: $(STAMP)  ## the main job: console against the simulated node (a scripted demo without a terminal)
	$(PY) -m ground.run $(ARGS)

test: $(STAMP)  ## lint, unit/property tests on both interpreters, the HIL suite on the simulated node
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest

lint: $(STAMP)  ## ruff everywhere; type-check ground/hil (CPython) and protocol/firmware (Pico stubs)
	$(PY) -m ruff check .
	$(PY) -m mypy ground hil
	$(PY) -m pyright -p pyrightconfig.json

bench: $(STAMP)  ## benchmarks: prints a table, writes bench/results/bench.json (node rows on a board with PORT=)
	$(PY) -m bench $(if $(PORT),--port $(PORT),) $(ARGS)

hil: $(STAMP)  ## HIL suite: simulated node; a board: PORT=/dev/ttyACM0; virtual Pico: TARGET=vpico
	$(PY) -m pytest hil/tests $(if $(PORT),--target $(PORT),--target $(or $(TARGET),sim)) $(ARGS)

flash: $(STAMP)  ## flash a Pico: make flash PORT=/dev/ttyACM0
	@test -n "$(PORT)" || { echo "make flash: set PORT, e.g. make flash PORT=/dev/ttyACM0" >&2; exit 2; }
	$(PY) -m ground flash --port $(PORT)

fuzz: $(STAMP)  ## live protocol fuzzing: make fuzz [PORT=...] ARGS='--cases 100000'
	$(PY) -m ground fuzz $(if $(PORT),--port $(PORT),) $(ARGS)

clean:  ## remove build output and caches (keeps .venv)
	rm -rf build dist bench/results .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

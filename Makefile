# ILRS station node: one entry point for people and CI.
# `make run` creates the virtual environment on first use with what running needs; `make test`
# (and lint, hil, venv) add the development tools. Each install has its own stamp.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
BASE   := $(VENV)/.installed-base
DEV    := $(VENV)/.installed-dev
PORT   ?=
TARGET ?=
ARGS   ?=
# The 32-bit MicroPython VM the bench measures the node's heap on (npm; bench/heap32.py)
WASM_DIR   := .wasm
WASM_PKG   := @micropython/micropython-webassembly-pyscript@1.27.0
WASM_STAMP := $(WASM_DIR)/.installed-1.27.0

.DEFAULT_GOAL := help
.PHONY: help venv wasm run test soak lint bench hil flash fuzz mutate clean

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

# Never fatal: without Node.js/npm (or offline) the heap rows fail with the reason and their
# test skips; make test and the rest of make bench go on.
$(WASM_STAMP):
	@if ! command -v npm >/dev/null 2>&1; then \
		echo "make: no npm: the 32-bit heap rows of make bench need Node.js and npm" >&2; \
	elif npm install --prefix $(WASM_DIR) --no-save --no-package-lock --no-audit --no-fund \
			--loglevel=error $(WASM_PKG); then \
		touch $@; \
	else \
		echo "make: could not install $(WASM_PKG): no 32-bit heap rows" >&2; \
	fi

wasm: $(WASM_STAMP)  ## install the 32-bit MicroPython VM (WebAssembly, npm) into .wasm/ for the heap rows

run: $(BASE)  ## the main job: console against the simulated node (a scripted demo without a terminal)
	$(PY) -m ground.run $(ARGS)

test: $(DEV) $(WASM_STAMP)  ## lint, unit/property tests on both interpreters, the HIL suite on the simulated node (not the soak runs)
	$(MAKE) --no-print-directory lint
	HIL_IMPAIRED_COMMANDS=200 $(PY) -m pytest -m "not soak" $(PARALLEL)

# one pytest worker a core (xdist), four at most: each HIL worker runs its own simulated node
PARALLEL := -n auto --maxprocesses 4 --dist worksteal

soak: $(DEV)  ## the long acceptance runs make test leaves out: the lunar night, the whole HIL suite through a broker, 1,000 commands through an impaired link
	$(PY) -m pytest -m soak
	$(PY) -m pytest hil/tests/test_impaired_link.py

lint: $(DEV)  ## ruff everywhere; type-check ground/hil (CPython) and protocol/firmware (Pico stubs)
	$(PY) -m ruff check .
	$(PY) -m mypy ground hil
	$(PY) -m pyright -p pyrightconfig.json

bench: $(BASE) $(WASM_STAMP)  ## benchmarks: prints a table, writes bench/results/bench.json (node rows on a board with PORT=)
	$(PY) -m bench $(if $(PORT),--port $(PORT),) $(ARGS)

hil: $(DEV)  ## HIL suite: simulated node; a board: PORT=/dev/ttyACM0; virtual Pico: TARGET=vpico
	$(PY) -m pytest hil/tests $(if $(PORT),--target $(PORT),--target $(or $(TARGET),sim)) $(ARGS)

flash: $(BASE)  ## flash a Pico: make flash PORT=/dev/ttyACM0
	@test -n "$(PORT)" || { echo "make flash: set PORT, e.g. make flash PORT=/dev/ttyACM0" >&2; exit 2; }
	$(PY) -m ground flash --port $(PORT)

fuzz: $(BASE)  ## live protocol fuzzing: make fuzz [PORT=...] ARGS='--cases 100000'
	$(PY) -m ground fuzz $(if $(PORT),--port $(PORT),) $(ARGS)

mutate: $(STAMP)  ## mutation testing (slow, not in make test): make mutate [ARGS='protocol/crc.py --fresh']
	$(PY) -m pip install --quiet -e '.[mutate]'
	$(PY) tools/mutate.py $(ARGS)

clean:  ## remove build output and caches (keeps .venv)
	rm -rf build dist bench/results .pytest_cache .hypothesis .mypy_cache .ruff_cache
	find . -name __pycache__ -not -path './.venv/*' -prune -exec rm -rf {} +

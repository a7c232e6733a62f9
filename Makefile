# One command each: `make quick` (CPU quick profile) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where CIFAR-10 comes from; empty keeps params.yaml's data.source.
DATA ?=

.PHONY: setup test lint quick repro plots clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -q

quick: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mobilenet_study.profiles quick $(if $(DATA),--data "$(DATA)")

repro: setup
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m mobilenet_study.profiles full $(if $(DATA),--data "$(DATA)")

clean:
	rm -rf $(VENV)

# kit: `make titanic` trains and writes a submission; `make test` runs the whole suite.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kit-installed
# torch/torchvision pinned as a matching pair (the CPU-only 2.13 wheel breaks PyPI's torchvision: torchvision::nms)
TORCH := torch==2.14.1 torchvision==0.29.1
PIP := $(BIN)/python -m pip install --disable-pip-version-check -q
# this machine's pip config lists index folders that may be absent: keep their warnings out of the log
QUIET_PIP := 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
DATA ?= data/titanic
BENCH_DATA ?= ../shared/data/titanic
COMP ?= titanic
ARGS ?=

.PHONY: help setup test lint titanic bench-titanic clean

help:
	@echo "make titanic [DATA=dir]   train the Titanic MLP with 5-fold CV and write a submission"
	@echo "make test                 run the whole test suite"
	@echo "make lint                 ruff"
	@echo "make bench-titanic        kit's MLP vs scikit-learn baselines on ../shared/data/titanic"

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing $(TORCH) and kit into $(VENV) ..."
	@$(PIP) $(TORCH) $(QUIET_PIP)
	@$(PIP) -e '.[test]' $(QUIET_PIP)
	@$(BIN)/python -c "import torch, torchvision, fastai, kit" 
	@touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q $(ARGS)

lint: setup
	$(BIN)/ruff check kit competitions tests bench

titanic: setup
	$(BIN)/kit train --comp titanic --data-dir $(DATA) $(ARGS)

bench-titanic: setup
	$(BIN)/python bench/titanic.py --data-dir $(BENCH_DATA)

clean:
	rm -rf runs .pytest_cache .ruff_cache

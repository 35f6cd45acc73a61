# `make demo` and `make test` work on a fresh machine with Python 3.11+:
# each creates .venv, installs gradsweep into it (demo: gradsweep alone; test: with the test extra), then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo survey dim calibration test bench bench-gpu gpu-static lint clean clean-cache

BASE := $(VENV)/.installed-base

# gradsweep alone (what demo and survey need); the test extra (dask, numba-cuda's CUDA wheels, ...) on top
$(BASE): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "gradsweep needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP): $(BASE)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(BASE)
	$(VENV)/bin/gradsweep demo --out-dir results --overwrite

# The survey's variance-against-k figures: one sweep per objective (examples/survey_*.toml), then its plot.
SURVEY := quadratic exp_quadratic cos
survey: $(BASE)
	for f in $(SURVEY); do \
		$(VENV)/bin/gradsweep run examples/survey_$$f.toml -o results/survey_$$f.nc --overwrite && \
		$(VENV)/bin/gradsweep plot results/survey_$$f.nc -o results/survey_$$f.png --x k --overwrite || exit 1; \
	done

# Variance against the dimension of x for the whole family (examples/dim_cos.toml), then its plot.
dim: $(BASE)
	$(VENV)/bin/gradsweep run examples/dim_cos.toml -o results/dim_cos.nc --overwrite
	$(VENV)/bin/gradsweep plot results/dim_cos.nc -o results/dim_cos.png --x dim --overwrite

# How often the 95% intervals cover the exact values (results/CALIBRATION.md); about 5 minutes on 2 cores.
calibration: $(BASE)
	$(PY) examples/calibrate_intervals.py 1000

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pytest bench --benchmark-enable --benchmark-disable-gc --benchmark-json=results/benchmarks.json -p no:randomly
	$(PY) bench/summarize.py results/benchmarks.json > results/BENCHMARKS.md

# On a GPU machine: the GPU benchmarks next to the CPU engine measured in the same run.
# Where gradsweep and its test extra are installed already: make bench-gpu PY=python3 STAMP=
bench-gpu: $(STAMP)
	$(PY) -m pytest bench/test_throughput.py bench/test_scaling.py::test_common_random_numbers_grid bench/test_gpu.py \
		--benchmark-enable --benchmark-disable-gc --benchmark-json=results/benchmarks_gpu.json -p no:randomly
	$(PY) bench/summarize.py results/benchmarks_gpu.json "make bench-gpu" > results/BENCHMARKS_GPU.md

gpu-static: $(STAMP)
	$(PY) -m pip install --quiet nvidia-cuda-nvdisasm
	$(PY) bench/gpu_static.py > results/GPU_STATIC.md

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

clean-cache:  # numba's cache only checks each kernel file's own timestamp
	find src tests bench -name __pycache__ -type d -prune -exec rm -rf {} +

clean: clean-cache
	rm -rf $(VENV) .pytest_cache .benchmarks

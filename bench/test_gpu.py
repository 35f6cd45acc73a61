"""Samples per second of the CUDA backend on the reference workload, and its ratio to the CPU backend.

Needs a real GPU (skipped, with the reason, elsewhere). ``make bench-gpu`` on a
GPU machine records the device, the rate and ``ratio_to_cpu_engine`` (the CPU
engine's rate measured in the same run by test_throughput.py) in
results/BENCHMARKS_GPU.md. Target on an
H100-class GPU: 1e11 samples/s in float64. A second group times a 20 x 20 grid
with independent streams and with common random numbers, where the GPU draws
each normal once per tile of cells (``gpu._chunk_sums_shared``).
"""

import pytest
from conftest import RATES
from test_scaling import GRID
from test_throughput import CONFIG

import gradsweep
from gradsweep import gpu

REASON = gpu.unavailable() if not gpu.simulator() else "the CUDA simulator is not a GPU"
N = 1_000_000
SAMPLES = N * 65_536  # 6.6e10 samples: about 0.7 s at the 1e11/s target
GPU_CONFIG = {**CONFIG, "N": [N], "reps": SAMPLES // N}
GPU_GRID = {**GRID, "N": [N]}  # 400 cells x 100 reps x 1e6 = 4e10 cell-samples
needs_gpu = pytest.mark.skipif(REASON is not None, reason=str(REASON))


@needs_gpu
@pytest.mark.benchmark(group="reference workload on the GPU, 6.6e10 samples")
def test_cuda_engine(benchmark, record):
    gradsweep.sweep(**{**GPU_CONFIG, "reps": 2, "N": [1000]}, backend="cuda")  # compile before timing
    benchmark.pedantic(gradsweep.sweep, kwargs={**GPU_CONFIG, "backend": "cuda"}, rounds=3, warmup_rounds=1, iterations=1)
    rate = record("cuda", SAMPLES, device=gpu.device_name())
    if "engine" in RATES:
        benchmark.extra_info["ratio_to_cpu_engine"] = rate / RATES["engine"]


@needs_gpu
@pytest.mark.parametrize("crn", [False, True], ids=["independent", "common"])
@pytest.mark.benchmark(group="20 x 20 grid on the GPU, 4e10 cell-samples")
def test_cuda_common_random_numbers_grid(benchmark, record, crn):
    cfg = {**GPU_GRID, "common_random_numbers": crn, "backend": "cuda"}
    gradsweep.sweep(**{**cfg, "reps": 2, "N": [10]})
    benchmark.pedantic(gradsweep.sweep, kwargs=cfg, rounds=3, warmup_rounds=1, iterations=1)
    rate = record(f"cuda_crn{crn}", 400 * N * 100, device=gpu.device_name())
    if crn:
        benchmark.extra_info["ratio_to_independent_streams"] = rate / RATES["cuda_crnFalse"]
    if f"crn{crn}" in RATES:
        benchmark.extra_info["ratio_to_cpu"] = rate / RATES[f"crn{crn}"]

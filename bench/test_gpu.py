"""Samples per second of the CUDA backend on the reference workload, and its ratio to the CPU backend.

Needs a real GPU (skipped, with the reason, elsewhere). ``make bench`` on a GPU
machine records the device, the rate and ``ratio_to_cpu_engine`` (the CPU
engine's rate measured in the same run by test_throughput.py). Target on an
H100-class GPU: 1e11 samples/s in float64.
"""

import pytest
from conftest import RATES
from test_throughput import CONFIG

import gradsweep
from gradsweep import gpu

REASON = gpu.unavailable() if not gpu.simulator() else "the CUDA simulator is not a GPU"
N = 1_000_000
SAMPLES = N * 65_536  # 6.6e10 samples: about 0.7 s at the 1e11/s target
GPU_CONFIG = {**CONFIG, "N": [N], "reps": SAMPLES // N}


@pytest.mark.skipif(REASON is not None, reason=str(REASON))
@pytest.mark.benchmark(group="reference workload on the GPU, 6.6e10 samples")
def test_cuda_engine(benchmark, record):
    gradsweep.sweep(**{**GPU_CONFIG, "reps": 2, "N": [1000]}, backend="cuda")  # compile before timing
    benchmark.pedantic(gradsweep.sweep, kwargs={**GPU_CONFIG, "backend": "cuda"}, rounds=3, warmup_rounds=1, iterations=1)
    rate = record("cuda", SAMPLES, device=gpu.device_name())
    if "engine" in RATES:
        benchmark.extra_info["ratio_to_cpu_engine"] = rate / RATES["engine"]

"""Samples per second: the engine against numpy written the way a notebook would.

Reference workload: f(x) = x^2, theta = 2, sigma = 1, score and pathwise,
wrt theta and sigma (four terms per sample), 4e8 samples.
Run with ``make bench`` (writes results/benchmarks.json and results/BENCHMARKS.md).
"""

import numpy as np
import pytest
from conftest import RATES

import gradsweep

SAMPLES = 400_000_000
N = 1_000_000
REPS = SAMPLES // N
CONFIG = dict(
    objective="square", estimators=["score", "pathwise"], wrt=["theta", "sigma"], N=[N], theta=[2.0], sigma=[1.0], reps=REPS, seed=0
)


def numpy_notebook(samples: int, n: int, theta: float = 2.0, sigma: float = 1.0, chunk: int = 1_000_000, seed: int = 0):
    """The same sweep as a notebook does it: chunked standard_normal, vector operations."""
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(samples // n):
        sums = np.zeros(4)
        for start in range(0, n, chunk):
            z = rng.standard_normal(min(chunk, n - start))
            x = theta + sigma * z
            f, df = x * x, 2 * x
            terms = (f * z / sigma, f * (z * z - 1) / sigma, df, df * z)
            sums += [t.sum() for t in terms]
        estimates.append(sums / n)
    est = np.array(estimates)
    return est.mean(axis=0), est.var(axis=0, ddof=1)


@pytest.mark.benchmark(group="reference workload, 4e8 samples")
def test_numpy_notebook(benchmark, record):
    benchmark.pedantic(numpy_notebook, args=(SAMPLES, N), rounds=1, iterations=1)
    record("numpy", SAMPLES)


@pytest.mark.benchmark(group="reference workload, 4e8 samples")
def test_engine(benchmark, record):
    gradsweep.sweep(**{**CONFIG, "reps": 2, "N": [1000]})  # compile (or load the cache) before timing
    benchmark.pedantic(gradsweep.sweep, kwargs=CONFIG, rounds=3, warmup_rounds=1, iterations=1)
    rate = record("engine", SAMPLES)
    if "numpy" in RATES:
        ratio = rate / RATES["numpy"]
        benchmark.extra_info["ratio_to_numpy"] = ratio
        assert ratio >= 5, f"engine is only {ratio:.1f}x numpy"

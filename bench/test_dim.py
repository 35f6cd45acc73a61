"""The dimension D of x: time per sample against D.

f(x) = sum_d cos(x_d), N = 1, theta = 0.5, sigma = 1, the survey's five estimators (score, the mean and the
optimal baselines, pathwise, mvd): three of them sum over the other D - 1 coordinates of every sample (two
distinct sums: f, and f less its mean), the other two do not depend on them. SAMPLES_BY_DIM samples at each
D, with the same number of coordinate draws at every D > 1. Recorded per D:

* ``samples_per_s`` and ``coordinates_per_s`` (samples x D per second);
* ``work_growth``: the time per sample at D over the time per sample at D = 1 in the same run, divided by D;
  at most 1 means the work per sample grows no faster than D (the target).
"""

import time

import pytest
from conftest import RATES

import gradsweep

ESTIMATORS = ["score", "score_mean_baseline", "score_optimal_baseline", "pathwise", "mvd"]
DIMS = [1, 10, 100]
SAMPLES_BY_DIM = {1: 100_000_000, 10: 20_000_000, 100: 2_000_000}
GROUP = "dimension D"


def config(dim: int, samples: int) -> dict:
    return dict(
        objective={"name": "cos", "k": 1.0},
        estimators=ESTIMATORS,
        N=[1],
        theta=[0.5],
        sigma=[1.0],
        reps=samples,
        dim=dim,
        compare="none",
    )


def _rate_at_one(rounds: int = 2) -> float:
    """The best D = 1 rate so far in this run, after timing it ``rounds`` more times."""
    for _ in range(rounds):
        start = time.perf_counter()
        gradsweep.sweep(**config(1, SAMPLES_BY_DIM[1]))
        RATES["dim=1"] = max(RATES.get("dim=1", 0.0), SAMPLES_BY_DIM[1] / (time.perf_counter() - start))
    return RATES["dim=1"]


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("dim", DIMS)
def test_time_per_sample_against_dim(benchmark, record, dim):
    samples = SAMPLES_BY_DIM[dim]
    gradsweep.sweep(**config(dim, 4))  # compile or load first
    benchmark.pedantic(gradsweep.sweep, kwargs=config(dim, samples), rounds=3, warmup_rounds=1, iterations=1)
    rate = record(f"dim={dim}", samples, dim=dim, N=1)
    benchmark.extra_info["coordinates_per_s"] = rate * dim
    if dim > 1:
        at_one = _rate_at_one()
        benchmark.extra_info["reference_dim_1_samples_per_s"] = at_one
        benchmark.extra_info["work_growth"] = at_one / rate / dim

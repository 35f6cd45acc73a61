"""The estimator family's cost: every estimator's own rate, and all ten against score + pathwise.

Same samples everywhere: f(x) = x^2, theta = 2, sigma = 1, both wrt, N = 1e6, 1e8 samples.
The target: all ten estimators in one sweep cost at most 3 times the score + pathwise sweep
(``ratio_to_score_pathwise``, measured in the same run).
"""

import time

import pytest
from conftest import RATES

import gradsweep
from gradsweep.estimators import NAMES

SAMPLES = 100_000_000
N = 1_000_000
CONFIG = dict(objective="square", wrt=["theta", "sigma"], N=[N], theta=[2.0], sigma=[1.0], reps=SAMPLES // N, seed=0)
GROUP = "estimator family, 1e8 samples"


def _timed(benchmark, estimators):
    gradsweep.sweep(**{**CONFIG, "estimators": estimators, "reps": 2, "N": [1000]})  # compile or load first
    benchmark.pedantic(gradsweep.sweep, kwargs={**CONFIG, "estimators": estimators}, rounds=3, warmup_rounds=1, iterations=1)


@pytest.mark.benchmark(group=GROUP)
def test_score_and_pathwise(benchmark, record):
    _timed(benchmark, ["score", "pathwise"])
    record("score+pathwise", SAMPLES)


def _best_reference_rate(rounds: int = 3) -> float:
    """score + pathwise timed again right after the family (best of ``rounds``): the first sweep of a
    group can run slow on a busy machine, and a ratio against one slow round would flatter the family."""
    best = min(_once(["score", "pathwise"]) for _ in range(rounds))
    return max(RATES.get("score+pathwise", 0.0), SAMPLES / best)


def _once(estimators) -> float:
    start = time.perf_counter()
    gradsweep.sweep(**{**CONFIG, "estimators": estimators})
    return time.perf_counter() - start


@pytest.mark.benchmark(group=GROUP)
def test_all_ten(benchmark, record):
    _timed(benchmark, list(NAMES))
    rate = record("all ten", SAMPLES)
    reference = _best_reference_rate()
    benchmark.extra_info["reference_samples_per_s"] = reference
    benchmark.extra_info["ratio_to_score_pathwise"] = reference / rate


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("name", NAMES)
def test_each_estimator(benchmark, record, name):
    _timed(benchmark, [name])
    rate = record(name, SAMPLES)
    if "score+pathwise" in RATES:
        benchmark.extra_info["ratio_to_score_pathwise"] = RATES["score+pathwise"] / rate

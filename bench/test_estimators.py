"""The estimator family's cost: every estimator's own rate, and all ten against score + pathwise.

Same samples everywhere: f(x) = x^2, theta = 2, sigma = 1, both wrt, N = 1e6, 1e8 samples.
The target: all ten estimators in one sweep cost at most 3 times the score + pathwise sweep
(``ratio_to_score_pathwise``, measured in the same run). ``test_the_family_variates_alone`` times
what every sweep of all ten must draw, and nothing else, against the score + pathwise sweep: a floor
under that ratio that no work on the estimators' arithmetic can go below.
"""

import time

import numpy as np
import pytest
from conftest import RATES
from numba import njit, prange

import gradsweep
from gradsweep import cpu, philox
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


BLOCK = cpu.BLOCK  # pairs per fill, as the chunk kernels draw them at N = 1e6


@njit(parallel=True)
def _family_variates(k0, k1, samples, out):
    """The normals and the measure-valued estimators' extra draw of ``samples`` samples, in blocks as the
    sweep kernels draw them (W, M, U M, W' and eps' of the even and the odd samples), and nothing else."""
    for b in prange(samples // (2 * BLOCK)):
        eps_e, eps_o = np.empty(BLOCK), np.empty(BLOCK)
        e, o = np.empty((5, BLOCK)), np.empty((5, BLOCK))
        p0 = b * BLOCK
        philox.fill_normal_pairs(k0, k1, p0, BLOCK, 0, np.uint64(0), eps_e, eps_o)
        philox.fill_maxwell_second(k0, k1, 2 * p0, 2, BLOCK, 0, 0, np.uint64(0), eps_e, e[0], e[1], e[2], e[3], e[4])
        philox.fill_maxwell_second(k0, k1, 2 * p0 + 1, 2, BLOCK, 0, 0, np.uint64(0), eps_o, o[0], o[1], o[2], o[3], o[4])
        out[b] = eps_e[0] + eps_o[0] + e[:, 0].sum() + o[:, 0].sum()  # keeps every draw alive


@pytest.mark.benchmark(group=GROUP)
def test_the_family_variates_alone(benchmark, record):
    k0, k1 = philox.seed_key(0)
    out = np.empty(SAMPLES // (2 * BLOCK))
    _family_variates(k0, k1, 2 * BLOCK, out[:1])  # compile
    benchmark.pedantic(_family_variates, args=(k0, k1, SAMPLES, out), rounds=3, warmup_rounds=1, iterations=1)
    rate = record("family variates", SAMPLES)
    reference = _best_reference_rate()
    benchmark.extra_info["reference_samples_per_s"] = reference
    benchmark.extra_info["ratio_to_score_pathwise"] = reference / rate

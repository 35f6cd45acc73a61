"""Small N at full speed: time per sample against N, and against numpy written for that N.

The reference workload: f(x) = x^2, score and pathwise, wrt theta and sigma, theta = 2, sigma = 1,
TOTAL samples at every N (N = 1, 2, 10, 100, 1e4, 1e6; reps = TOTAL / N). Recorded per N:

* ``ratio_to_large_n``: its rate over the rate at N = 1e6 (target >= 0.7);
* ``ratio_to_numpy``: its rate over numpy's for the same N, written as a user would (replicates
  vectorised: ``standard_normal((reps, N))``, the four terms, ``.mean(axis=1)``, then mean and
  variance over replicates), on NUMPY_SAMPLES samples (target >= 10).

The shared machines' speed drifts by more than the ratios' margins within minutes, so each ratio is
the median over RATIO_ROUNDS rounds (FAMILY_RATIO_ROUNDS for the family) of the ratio within a round,
where a round times the three workloads back to back (:func:`interleaved_ratios`); ``*_low`` and
``*_high`` record the rounds' smallest and largest, the spread the drift left.

The whole family at N = 2 (the leave-one-out estimators' smallest N) gets the same two ratios:
against the family at N = 1e6, and against the family in numpy (:func:`numpy_family`).

These time the workloads as defined, with ``compare = "none"``. The compared pairs a config records by
default (``compare = "first"``: each estimator with the first) are two more outputs per pair and wrt, most
felt at small N: ``test_default_pairs`` times the default config at N = 1 and 2 and records its rate over
the same workload without pairs (``ratio_to_no_pairs``).
"""

import statistics
import time

import numpy as np
import pytest
from conftest import RATES

import gradsweep
from gradsweep.estimators import NAMES

TOTAL = 200_000_000
LARGE_N = 1_000_000
NS = [LARGE_N, 1, 2, 10, 100, 10_000]  # the large N first: the others' reference
NUMPY_SAMPLES = 10_000_000
RATIO_ROUNDS = 5
FAMILY_RATIO_ROUNDS = 3  # a family round takes about 25 s
GROUP = "small N, 2e8 samples per N"


def config(n: int, estimators, compare="none") -> dict:
    return dict(
        objective="square",
        estimators=estimators,
        wrt=["theta", "sigma"],
        N=[n],
        theta=[2.0],
        sigma=[1.0],
        reps=TOTAL // n,
        compare=compare,
    )


def numpy_rate(n: int, rounds: int = 3) -> float:
    """Samples/s of the reference workload in plain numpy at N = n (best of ``rounds``)."""
    reps = max(2, NUMPY_SAMPLES // n)
    theta, sigma = 2.0, 1.0
    rng = np.random.default_rng(0)
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        z = rng.standard_normal((reps, n))
        x = theta + sigma * z
        f, df = x * x, 2.0 * x
        estimates = ((f * z / sigma).mean(axis=1), (f * (z * z - 1.0) / sigma).mean(axis=1), df.mean(axis=1), (df * z).mean(axis=1))
        for e in estimates:
            e.mean(), e.var(ddof=1)
        best = min(best, time.perf_counter() - start)
    return reps * n / best


def numpy_family(n: int, rounds: int = 3) -> float:
    """Samples/s of all ten estimators, both wrt, in plain numpy at N = n (best of ``rounds``)."""
    reps = max(2, NUMPY_SAMPLES // n)
    t, s = 2.0, 1.0
    f, df = (lambda x: x * x), (lambda x: 2.0 * x)
    mean_f, root = t * t + s * s, s * np.sqrt(2.0 * np.pi)
    rng = np.random.default_rng(0)
    best = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        e = rng.standard_normal((reps, n))
        w, w2 = rng.rayleigh(size=(reps, n)), rng.rayleigh(size=(reps, n))
        m = np.where(rng.random((reps, n)) < 0.5, -1.0, 1.0) * np.sqrt(w * w + e * e)
        um, e2 = rng.random((reps, n)) * m, rng.standard_normal((reps, n))
        x = t + s * e
        fx, dfx = f(x), df(x)
        h = f(t) + df(t) * (x - t) + (x - t) ** 2  # f'' = 2
        terms = []
        for score in (e / s, (e * e - 1.0) / s):
            terms += [fx * score, (fx - mean_f) * score, (fx - mean_f) * score, (fx - h) * score]
            centred = (fx * score).sum(axis=1) - fx.sum(axis=1) * score.sum(axis=1) / n
            terms += [centred / (n - 1), centred / n]  # leave-one-out and batch, already per replicate
        anti = df(t - s * e)
        terms += [dfx, dfx * e, (dfx + anti) / 2, (dfx - anti) * e / 2]
        terms += [(f(t + s * w) - f(t - s * w)) / root, (f(t + s * m) - f(t + s * um)) / s]
        terms += [(f(t + s * w) - f(t - s * w2)) / root, (f(t + s * m) - f(t + s * e2)) / s]
        for term in terms:
            estimate = term if term.ndim == 1 else term.mean(axis=1)
            estimate.mean(), estimate.var(ddof=1)
        best = min(best, time.perf_counter() - start)
    return reps * n / best


def _sweep_rate(n: int, estimators, repeats: int = 2) -> float:
    """Samples/s of the sweep at N = n: the best of ``repeats`` runs back to back."""
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        gradsweep.sweep(**config(n, estimators))
        best = min(best, time.perf_counter() - start)
    return TOTAL / best


def interleaved_ratios(benchmark, n: int, estimators, numpy_reference, rounds: int = RATIO_ROUNDS) -> None:
    """``ratio_to_large_n`` (for n < LARGE_N) and ``ratio_to_numpy`` into the benchmark's extra_info.

    Per round the sweep at n and at LARGE_N (each the best of two runs) and ``numpy_reference(n)`` (the best of
    three: numpy's first run after a sweep is slow, its 80 MB arrays come back from the OS) are timed back to
    back; the recorded ratio is the median of the rounds' ratios, the reference rates the best rounds'.
    """
    ratios: dict[str, list[float]] = {"ratio_to_large_n": [], "ratio_to_numpy": []}
    references: dict[str, list[float]] = {"reference_large_n_samples_per_s": [], "reference_numpy_samples_per_s": []}
    for _ in range(rounds):
        rate = _sweep_rate(n, estimators)
        if n != LARGE_N:
            large = _sweep_rate(LARGE_N, estimators)
            references["reference_large_n_samples_per_s"].append(large)
            ratios["ratio_to_large_n"].append(rate / large)
        numpy = numpy_reference(n, rounds=3)
        references["reference_numpy_samples_per_s"].append(numpy)
        ratios["ratio_to_numpy"].append(rate / numpy)
    for name, values in references.items():
        if values:
            benchmark.extra_info[name] = max(values)
    for name, values in ratios.items():
        if values:
            benchmark.extra_info[name] = statistics.median(values)
            benchmark.extra_info[f"{name}_low"] = min(values)
            benchmark.extra_info[f"{name}_high"] = max(values)


def _timed(benchmark, n: int, estimators, compare="none") -> None:
    gradsweep.sweep(**{**config(n, estimators, compare), "reps": 4})  # compile or load first
    benchmark.pedantic(gradsweep.sweep, kwargs=config(n, estimators, compare), rounds=3, warmup_rounds=1, iterations=1)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("n", NS)
def test_reference_workload(benchmark, record, n):
    _timed(benchmark, n, ["score", "pathwise"])
    record(f"N={n}", TOTAL, N=n)
    interleaved_ratios(benchmark, n, ["score", "pathwise"], numpy_rate)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("n", [LARGE_N, 2])
def test_whole_family(benchmark, record, n):
    _timed(benchmark, n, list(NAMES))
    record(f"family N={n}", TOTAL, N=n)
    if n != LARGE_N:
        interleaved_ratios(benchmark, n, list(NAMES), numpy_family, rounds=FAMILY_RATIO_ROUNDS)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize(("n", "estimators"), [(1, ["score", "pathwise"]), (2, ["score", "pathwise"]), (2, list(NAMES))])
def test_default_pairs(benchmark, record, n, estimators):
    """The default config's compared pairs (compare = "first"), against the same sweep without them."""
    _timed(benchmark, n, estimators, compare="first")
    rate = record(f"pairs {len(estimators)} N={n}", TOTAL, N=n, estimators=len(estimators))
    name = f"N={n}" if len(estimators) == 2 else f"family N={n}"
    if name in RATES:  # timed above in this run
        benchmark.extra_info["reference_no_pairs_samples_per_s"] = RATES[name]
        benchmark.extra_info["ratio_to_no_pairs"] = rate / RATES[name]

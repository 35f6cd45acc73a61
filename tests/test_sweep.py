"""The engine end to end: the right numbers, reproducibly, agreeing with the truth."""

import math

import numpy as np
import pytest
from confidence import z_bound

import gradsweep
from gradsweep import plan, welford
from gradsweep.config import ConfigError
from gradsweep.estimators import ESTIMATORS, NAMES
from gradsweep.objectives import Objective, make_objective
from gradsweep.philox import PAIRED_N, replicate_normals


def reference_states(objective, N, theta, sigma, reps, seed, streams=2):
    """The same sweep computed plainly in numpy from the documented stream layout."""
    obj = make_objective(objective)
    from gradsweep.objectives import derivative, value

    f = np.vectorize(lambda x: value.py_func(obj.code, x, obj.k))
    df = np.vectorize(lambda x: derivative.py_func(obj.code, x, obj.k))
    out = np.empty((len(N), len(theta), len(sigma), 4, 5))
    stream = 0
    for i, n in enumerate(N):
        for j, t in enumerate(theta):
            for k, s in enumerate(sigma):
                est = []
                for r in range(reps):
                    z = replicate_normals(seed, n, r, stream, streams)
                    x = t + s * z
                    fx, dfx = f(x), df(x)
                    est.append([np.mean(fx * z / s), np.mean(fx * (z * z - 1) / s), np.mean(dfx), np.mean(dfx * z)])
                out[i, j, k] = welford.from_values(np.array(est), axis=0)
                stream += 1
    return out


def as_terms(ds):
    """(N, theta, sigma, 4 terms) arrays of mean and var in kernel term order."""
    order = ds.sel(estimator=["score", "score", "pathwise", "pathwise"], wrt=["theta", "sigma", "theta", "sigma"])
    take = lambda v: np.stack([order[v].values[..., i, i] for i in range(4)], axis=-1)  # noqa: E731
    return take("mean"), take("var")


@pytest.mark.parametrize("streams", [2, 1], ids=["replicate pairs up to PAIRED_N", "streams = 1: every N within its replicate"])
def test_kernel_matches_plain_numpy_reference(streams):
    """Both stream layouts, both kernels (N = 1030 is above PAIRED_N), odd reps (a last pair half used)."""
    cfg = dict(objective={"name": "cos", "k": 1.3}, N=[1, 7, 10, 1030], theta=[0.5, -1.5], sigma=[0.8, 2.0], reps=5, seed=99)
    assert min(cfg["N"]) <= PAIRED_N < max(cfg["N"])
    ds = gradsweep.sweep(**cfg, streams=streams)
    ref = reference_states(cfg["objective"], cfg["N"], cfg["theta"], cfg["sigma"], cfg["reps"], cfg["seed"], streams)
    mean, var = as_terms(ds)
    np.testing.assert_allclose(mean, ref[..., 1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(var, ref[..., 2] / (ref[..., 0] - 1), rtol=1e-10, atol=1e-15)
    assert (ds["count"] == 5).all()


def test_read_only_cell_constants_compile_no_second_kernel():
    """numba types a read-only array apart from a writable one: a sweep of one N (whose constants were a
    read-only view) and a dask worker (which unpickles them read-only) compiled every kernel twice."""
    from gradsweep import cpu
    from gradsweep.backends import outputs_of
    from gradsweep.config import Config
    from gradsweep.estimators import layout
    from gradsweep.sweep import cell_constants, config_plan

    cfg = Config.from_dict(dict(objective={"name": "cos", "k": 1.3}, N=[1030], theta=[0.5], sigma=[0.8], reps=3, seed=99))
    cells = cell_constants(cfg)
    assert cells.flags.writeable
    plan_ = config_plan(cfg)
    kernels = cpu.kernels(cfg.objective, layout(*outputs_of(cfg)))
    writable = cpu.compute_units(cfg.objective, cfg.seed, outputs_of(cfg), cells, plan_)
    compiled = [len(k.signatures) for k in kernels]
    cells.flags.writeable = False
    np.testing.assert_array_equal(cpu.compute_units(cfg.objective, cfg.seed, outputs_of(cfg), cells, plan_), writable)
    assert [len(k.signatures) for k in kernels] == compiled


@pytest.mark.parametrize("where", ["caching off", "kernel folder unwritable"])
def test_kernels_that_cannot_be_cached_are_built_in_memory(where, monkeypatch, tmp_path):
    """GRADSWEEP_NUMBA_CACHE=0, or a kernel folder that cannot be made: the generated kernel module runs in
    memory, where numba refuses any function that asks for its cache ('no locator available')."""
    import sys

    import numba

    from gradsweep import _jit, cpu
    from gradsweep.estimators import layout

    if where == "caching off":
        monkeypatch.setattr(_jit, "CACHE", False)
    else:
        (tmp_path / "a file").write_text("")
        monkeypatch.setenv("GRADSWEEP_KERNEL_DIR", str(tmp_path / "a file" / "kernels"))
    monkeypatch.setattr(cpu, "_kernels", {})
    for name in [m for m in sys.modules if m.startswith("gradsweep_kernel_cpu_")]:  # loaded from disk by earlier tests
        monkeypatch.delitem(sys.modules, name)
    kernels = cpu.kernels(make_objective("square"), layout(("score", "pathwise"), ("theta",), (), False))
    assert all(isinstance(k._cache, numba.core.caching.NullCache) for k in kernels)  # defined, not compiled: no cost


def test_replicates_spanning_several_chunks_and_odd_n():
    n = 2 * plan.CHUNK + 3  # three chunks, the last one odd
    ds = gradsweep.sweep(objective="square", N=[n], theta=[0.3], sigma=[1.1], reps=3, seed=4)
    ref = reference_states("square", [n], [0.3], [1.1], 3, 4)
    mean, _ = as_terms(ds)
    np.testing.assert_allclose(mean, ref[..., 1], rtol=1e-12)


def test_bit_identical_across_threads_and_batch_sizes(monkeypatch):
    cfg = dict(objective="square", N=[3, 1000, 70001], theta=[0.0, 2.0], sigma=[0.5, 1.0], reps=17, seed=5)
    one = gradsweep.sweep(threads=1, **cfg)
    two = gradsweep.sweep(threads=2, **cfg)
    monkeypatch.setattr(plan, "BATCH_SAMPLES", 5000)
    monkeypatch.setattr(plan, "BATCH_ITEMS", 7)
    small_batches = gradsweep.sweep(threads=2, **cfg)
    for other in (two, small_batches):
        for v in ("mean", "var", "m2", "m3", "m4", "count"):
            np.testing.assert_array_equal(one[v].values, other[v].values)


def test_seed_changes_the_numbers():
    a = gradsweep.sweep(N=[10], reps=5, seed=1)
    b = gradsweep.sweep(N=[10], reps=5, seed=2)
    assert not np.any(a["mean"].values == b["mean"].values)


OBJECTIVES = ["square", {"name": "quadratic", "k": -0.8}, {"name": "exp_quadratic", "k": 0.6}, {"name": "cos", "k": 1.5}]
STAT_THETA = [2.0, -0.5, 0.7]
STAT_SIGMA = [1.0, 0.3, 2.0]
STAT_N = [2, 10, 1000]
STAT_REPS = 2000
# every (objective, theta, sigma, N, estimator, wrt) cell, mean and variance
STAT_CHECKS = len(OBJECTIVES) * len(STAT_THETA) * len(STAT_SIGMA) * len(STAT_N) * len(NAMES) * 2 * 2
STAT_Z = z_bound(0.01, STAT_CHECKS)


def normal_variance(ds):
    """Cells whose sample variance is near enough to normal for the z interval on ``var``.

    Not score_delta below N = 1000: its per-sample term is a polynomial of degree 4 or 5 in eps
    (the Taylor residual times the score), so the variance of its sample variance involves
    E[eps^16] to E[eps^20]; at 2000 replicates s^2 is far from normal, and its estimated standard
    error (from the sample M4, which misses the rare large terms) is too small. Measured: over 6
    seeds, 4 such cells of cos(1.5 x) gave z from -4.2 to +1.8 in either stream layout, where a
    normal z would stay within 3. Its exact variance is checked against quadrature instead
    (tests/test_truth.py), and its simulated variance at N = 1000, where the mean of 1000 terms is
    near normal.
    """
    return ~((ds["estimator"] == "score_delta") & (ds["N"] < 1000))


@pytest.mark.parametrize("objective", OBJECTIVES, ids=str)
def test_estimates_agree_with_exact_values(objective):
    """Every estimator, both wrt: mean within its exact CI; variance within the CI from its estimated standard error.

    Family-wise level 1% over all cells of all objectives (Bonferroni), fixed seed. Zero-variance
    cells (the delta control variate on a quadratic) must come out exactly at their mean, up to rounding.
    """
    ds = gradsweep.sweep(objective=objective, estimators="all", N=STAT_N, theta=STAT_THETA, sigma=STAT_SIGMA, reps=STAT_REPS, seed=2026)
    assert np.isfinite(ds["exact_var"]).all() and np.isfinite(ds["true_grad"]).all()
    scale = 1.0 + abs(ds["exact_mean"])
    exact_zero = ds["exact_var"] < 1e-12 * scale**2  # rounding of closed forms whose variance is 0
    assert bool((abs(ds["mean"] - ds["exact_mean"]) < 1e-12 * scale).where(exact_zero, True).all())
    assert bool((ds["var"] < 1e-24 * scale**2).where(exact_zero, True).all())
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_z = ((ds["mean"] - ds["exact_mean"]) / np.sqrt(ds["exact_var"] / ds["count"])).where(~exact_zero, 0.0)
        var_z = ((ds["var"] - ds["exact_var"]) / ds["var_se"]).where(~exact_zero, 0.0)
    var_z = var_z.where(normal_variance(ds), 0.0)
    assert float(abs(mean_z).max()) < STAT_Z, mean_z.where(abs(mean_z) >= STAT_Z, drop=True)
    assert float(abs(var_z).max()) < STAT_Z, var_z.where(abs(var_z) >= STAT_Z, drop=True)


ONE_SAMPLE = tuple(name for name in NAMES if ESTIMATORS[name].min_n == 1)
ONE_SAMPLE_CHECKS = len(STAT_THETA) * len(STAT_SIGMA) * len(ONE_SAMPLE) * 2 * 2


def test_one_sample_estimates_agree_with_exact_values():
    """N = 1, where gradient estimators live, for every estimator that takes it (replicate pairs, one
    estimate per replicate): mean and variance within their 1% family-wise intervals, as above."""
    ds = gradsweep.sweep(
        objective={"name": "cos", "k": 1.5}, estimators=ONE_SAMPLE, N=[1], theta=STAT_THETA, sigma=STAT_SIGMA, reps=4001, seed=7
    )
    z = z_bound(0.01, ONE_SAMPLE_CHECKS)
    exact_zero = ds["exact_var"] == 0.0  # none for cos; kept so a zero variance cannot divide by zero
    mean_z = ((ds["mean"] - ds["exact_mean"]) / np.sqrt(ds["exact_var"] / ds["count"])).where(~exact_zero, 0.0)
    var_z = ((ds["var"] - ds["exact_var"]) / ds["var_se"]).where(~exact_zero & normal_variance(ds), 0.0)
    assert (ds["count"] == 4001).all()
    assert float(abs(mean_z).max()) < z, mean_z.where(abs(mean_z) >= z, drop=True)
    assert float(abs(var_z).max()) < z, var_z.where(abs(var_z) >= z, drop=True)


def test_pathwise_beats_score_on_the_classic_example():
    ds = gradsweep.sweep(objective="square", N=[100], theta=[2.0], sigma=[1.0], reps=400, seed=0)
    ratio = ds["var"].sel(estimator="score") / ds["var"].sel(estimator="pathwise")
    exact = ds["exact_var"].sel(estimator="score") / ds["exact_var"].sel(estimator="pathwise")
    np.testing.assert_allclose(exact.sel(wrt="theta"), 87 / 4)
    assert (ratio > 10).all()


def test_large_mean_small_spread_end_to_end():
    """Pathwise d/dtheta of (x - k)^2 with k = -5e7: estimates near 1e8 with spread 1 (sigma = 0.5, N = 1,
    in replicate pairs: power sums of the deviations from a shift, turned into moments per item)."""
    # both wrt (the default layout): the kernels test_cli's k grid compiles too
    ds = gradsweep.sweep(objective={"name": "quadratic", "k": -5e7}, N=[1], theta=[0.0], sigma=[0.5], reps=2000, seed=3)
    z = np.array([replicate_normals(3, 1, r, 0)[0] for r in range(2000)])
    reference = np.var(2 * 0.5 * z, ddof=1)  # the deviations, free of the 1e8 offset
    got = float(ds["var"].sel(estimator="pathwise", wrt="theta").squeeze())
    assert abs(got - reference) / reference < 1e-6
    assert float(ds["mean"].sel(estimator="pathwise", wrt="theta").squeeze()) == pytest.approx(1e8, rel=1e-9)


def cube(x):
    return x * x * x


def dcube(x):
    return 3.0 * x * x


def test_user_objective_through_the_api():
    obj = Objective("cube", f=cube, df=dcube)
    ds = gradsweep.sweep(objective=obj, N=[50], theta=[0.5, 1.0], sigma=[0.7], reps=800, seed=8)
    assert np.isnan(ds["true_grad"]).all() and np.isnan(ds["exact_var"]).all()
    # x ~ N(t, s^2): d/dtheta E[x^3] = 3(t^2 + s^2), d/dsigma = 6 t s; each mean within a 1% family-wise CI
    # whose width uses the simulated variance (the CI of a t statistic, 800 replicates)
    z = z_bound(0.01, 8)
    t = np.array([0.5, 1.0])
    truth = {"theta": 3 * (t**2 + 0.49), "sigma": 6 * t * 0.7}
    for e in ("score", "pathwise"):
        for w in ("theta", "sigma"):
            cell = ds.sel(estimator=e, wrt=w, N=50, sigma=0.7)
            assert np.all(np.abs(cell["mean"].values - truth[w]) < z * cell["mean_se"].values)


def test_user_objective_without_derivative_is_score_only():
    obj = Objective("cube", f=cube)
    ds = gradsweep.sweep(objective=obj, estimators=["score"], N=[10], reps=10)
    assert list(ds.estimator.values) == ["score"]
    # the score terms use f alone: a missing f' must not leak into them
    assert np.isfinite(ds["mean"]).all() and np.isfinite(ds["var"]).all()
    with pytest.raises(ConfigError, match="pathwise"):
        gradsweep.sweep(objective=obj, N=[10], reps=10)


def test_subsets_and_order_of_estimators_and_wrt_are_kept():
    ds = gradsweep.sweep(estimators=["pathwise"], wrt=["sigma", "theta"], N=[10], reps=4)
    assert list(ds.estimator.values) == ["pathwise"] and list(ds.wrt.values) == ["sigma", "theta"]
    full = gradsweep.sweep(N=[10], reps=4)
    np.testing.assert_array_equal(ds["mean"].sel(wrt="sigma").values, full["mean"].sel(estimator=["pathwise"], wrt="sigma").values)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reps": 1}, "reps must be >= 2"),
        ({"sigma": [1.0, 0.0]}, "sigma must be > 0"),
        ({"N": [0]}, "N must be >= 1"),
        ({"N": [2.5]}, "whole numbers"),
        ({"theta": [math.inf]}, "finite"),
        ({"estimators": ["scor"]}, "unknown estimator 'scor'"),
        ({"wrt": ["mu"]}, "unknown wrt 'mu'"),
        ({"objective": "sqaure"}, "unknown objective 'sqaure'"),
        ({"objective": {"name": "exp_quadratic", "k": -1.0}}, "k > 0"),
        ({"seed": -1}, "seed"),
        ({"theta": [1.0, 1.0]}, "repeated"),
        ({"bogus": 1}, "unknown config key"),
        ({"threads": 0}, "threads"),
        ({"common_random_numbers": "yes"}, "true or false"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        gradsweep.sweep(**{"N": [10], "reps": 2, **kwargs})


def test_common_random_numbers_share_the_stream_across_theta_and_sigma():
    cfg = dict(objective="square", N=[10, 101], theta=[0.0, 1.0, 3.0], sigma=[0.5, 2.0], reps=50, seed=6)
    crn = gradsweep.sweep(common_random_numbers=True, **cfg)
    ind = gradsweep.sweep(**cfg)
    # Pathwise d/dtheta of x^2 is 2 (theta + sigma * mean(eps)): with shared eps, shifting theta
    # shifts every replicate by the same amount, so the variance does not depend on theta.
    pw = crn["var"].sel(estimator="pathwise", wrt="theta")
    np.testing.assert_allclose(pw, pw.isel(theta=0).broadcast_like(pw), rtol=1e-9)
    pw_ind = ind["var"].sel(estimator="pathwise", wrt="theta")
    assert not np.allclose(pw_ind, pw_ind.isel(theta=0).broadcast_like(pw_ind), rtol=1e-3)
    assert crn.attrs["common_random_numbers"] == 1 and ind.attrs["common_random_numbers"] == 0


def test_common_random_numbers_on_a_single_cell_grid_is_the_ordinary_stream():
    # With one (theta, sigma) cell, the N index and the cell index coincide: the same numbers.
    cfg = dict(objective={"name": "cos", "k": 0.7}, N=[9, 1000], theta=[0.4], sigma=[1.3], reps=7, seed=2)
    a = gradsweep.sweep(common_random_numbers=True, **cfg)
    b = gradsweep.sweep(**cfg)
    for v in ("mean", "var", "m2", "m3", "m4"):
        np.testing.assert_array_equal(a[v].values, b[v].values)


def test_common_random_numbers_keep_each_cell_exact():
    ds = gradsweep.sweep(
        objective={"name": "cos", "k": 1.3},  # the default layout of cos: the kernels test_analysis compiles too
        N=[20],
        theta=[-1.0, 0.5],
        sigma=[0.4, 1.5],
        reps=1500,
        seed=12,
        common_random_numbers=True,
    )
    z = z_bound(0.01, 2 * 2 * 4 * 2)
    mean_z = (ds["mean"] - ds["true_grad"]) / np.sqrt(ds["exact_var"] / ds["count"])
    var_z = (ds["var"] - ds["exact_var"]) / ds["var_se"]
    assert float(abs(mean_z).max()) < z and float(abs(var_z).max()) < z


def test_common_random_numbers_are_reproducible_across_threads():
    cfg = dict(N=[5, 3000], theta=[0.0, 1.0], sigma=[0.5, 1.0, 2.0], reps=9, seed=1, common_random_numbers=True)
    a, b = gradsweep.sweep(threads=1, **cfg), gradsweep.sweep(threads=2, **cfg)
    np.testing.assert_array_equal(a["var"].values, b["var"].values)


def test_estimate_counts_the_work():
    from gradsweep.config import Config
    from gradsweep.sweep import estimate

    cfg = Config.from_dict(N=[10, 1000], theta=[0.0, 1.0], sigma=[1.0], reps=4, common_random_numbers=True)
    est = estimate(cfg, threads=1)
    assert est["samples"] == (10 + 1000) * 2 * 4 and est["draws"] == (10 + 1000) * 4
    assert est["rate"] > 0 and est["estimate_s"] == pytest.approx(est["samples"] / est["rate"])

"""The dimension of x as a sweep axis: config, the random stream of the other coordinates, exact values, statistics."""

import math

import numpy as np
import pytest
from confidence import z_bound
from numpy.polynomial.hermite_e import hermegauss
from reference import functions

import gradsweep
from gradsweep import truth
from gradsweep.config import Config, ConfigError
from gradsweep.estimators import NAMES, WRT
from gradsweep.objectives import make_objective
from gradsweep.philox import replicate_normals

COS = {"name": "cos", "k": 1.1}
#: The whole family with the default compared pairs, for cos: the layout the shards and dask tests compile
#: for their dim sweeps too (k is a cell constant), so these tests add no compile of their own.
#: N = 2 is drawn in replicate pairs, N = 1100 in chunks (philox.PAIRED_N = 1024).
CFG = dict(objective=COS, estimators="all", N=[2, 1100], theta=[0.5], sigma=[0.7], reps=6, seed=17)


def test_config_reads_a_dim_number_list_or_grid_and_refuses_bad_ones():
    assert Config.from_dict().dim.tolist() == [1] and not Config.from_dict().dim_axis
    assert "dim" not in Config.from_dict().to_dict()  # one dimension: configs (and checkpoints) as before the key
    one = Config.from_dict(dim=8)
    assert one.dim.tolist() == [8] and not one.dim_axis and one.dims == ("N", "theta", "sigma")
    axis = Config.from_dict(dim=[1, 10, 100], objective={"name": "cos", "k": [1.0, 2.0]})
    assert axis.dim_axis and axis.dims == ("N", "dim", "k", "theta", "sigma") and axis.grid_shape == (5, 3, 2, 1, 1)
    assert Config.from_dict(axis.to_dict()).dim.tolist() == [1, 10, 100] and Config.from_dict(one.to_dict()).dim.tolist() == [8]
    grid = Config.from_dict(dim={"start": 1, "stop": 100, "num": 5, "scale": "log"})
    assert grid.dim.tolist() == [1, 3, 10, 32, 100]
    bad = [
        (dict(dim=0), "from 1 to"),
        (dict(dim=[1, 2.5]), "whole numbers"),
        (dict(dim=[2, 2]), "repeated"),
        (dict(dim=10**6), "from 1 to"),
        (dict(dim="10"), "numbers"),
        (dict(dim=2, N=[2**41]), "2\\*\\*40"),
    ]
    for kwargs, words in bad:
        with pytest.raises(ConfigError, match=words):
            Config.from_dict(**kwargs)


def test_the_one_dimensional_cells_of_a_dim_sweep_are_a_plain_run_bit_for_bit():
    """Under common random numbers every cell of an N shares its stream, so a dim = [1, 4] sweep's dim = 1 cells
    draw what a one-dimensional run draws, and its kernels (which sum over other coordinates) add nothing to them."""
    # the whole family: the swept run uses the kernels over dim above, the plain one test_sweep's all-ten cos kernels
    plain = gradsweep.sweep(**CFG, common_random_numbers=True)
    swept = gradsweep.sweep(**CFG, common_random_numbers=True, dim=[1, 4])
    assert swept["mean"].dims[:2] == ("N", "dim") and "dim" not in swept["true_grad"].dims
    for name in ("count", "mean", "m2", "m3", "m4", "pair_mean", "pair_m2", "pair_m3", "pair_m4", "exact_var", "exact_mean"):
        np.testing.assert_array_equal(swept[name].sel(dim=1).values, plain[name].values, err_msg=name)
    assert np.all(swept["var"].sel(dim=4, estimator="score") > 2 * plain["var"].sel(estimator="score"))


def reference_estimates(cfg, dim, n, rep, stream):
    """Score d/dtheta, leave-one-out d/dsigma and delta d/dtheta estimates of one replicate, written plainly from the
    documented stream: coordinate c of every sample from ``replicate_normals(..., coordinate=c)``."""
    g, dg = functions(make_objective(COS))
    t, s = cfg["theta"][0], cfg["sigma"][0]
    z = np.array([replicate_normals(cfg["seed"], n, rep, stream, 2, coordinate=c) for c in range(dim)])  # (dim, n)
    x = t + s * z
    f = g(x).sum(axis=0)
    k = COS["k"]
    h = (g(t) + dg(t) * (x - t) - 0.5 * k * k * g(t) * (x - t) ** 2).sum(axis=0)  # the separable Taylor expansion
    score_sigma = (z[0] ** 2 - 1) / s
    return [
        np.mean(f * z[0] / s),
        np.sum((f - f.mean()) * score_sigma) / (n - 1),
        np.mean((f - h) * z[0] / s) + dg(t),
        np.mean(dg(x[0])),
    ]


@pytest.mark.parametrize("n", [2, 1100], ids=["replicate-pairs", "chunks"])
def test_the_kernels_draw_each_coordinate_from_its_documented_stream(n):
    cfg = dict(CFG, N=[n], dim=3)
    ds = gradsweep.sweep(**cfg)
    est = np.array([reference_estimates(cfg, 3, n, r, 0) for r in range(cfg["reps"])])
    picks = [("score", "theta"), ("score_loo", "sigma"), ("score_delta", "theta"), ("pathwise", "theta")]
    for j, (e, w) in enumerate(picks):
        cell = ds.sel(estimator=e, wrt=w).isel(N=0, theta=0, sigma=0)
        np.testing.assert_allclose(float(cell["mean"]), est[:, j].mean(), rtol=1e-10, err_msg=e)
        np.testing.assert_allclose(float(cell["var"]), est[:, j].var(ddof=1), rtol=1e-9, err_msg=e)


def _brute_force(objective, theta, sigma, n, dim, reps, seed):
    """Replicate estimates of all ten estimators, both wrt, in ``dim`` dimensions, from numpy's own generator and the
    definitions (f evaluated on the whole vector, the measure-valued estimators replacing coordinate 1 only)."""
    g, dg = functions(objective)
    rng = np.random.default_rng(seed)
    z, w = hermegauss(80)
    w = w / math.sqrt(2 * math.pi)
    gx = g(theta + sigma * z)
    mean_g = gx @ w
    bstar = {"theta": gx @ (w * z * z), "sigma": gx @ (w * (z * z - 1) ** 2) / 2}  # E[g s^2] / E[s^2], one coordinate
    g0, dg0 = g(np.float64(theta)), dg(np.float64(theta))
    d2g0 = float(objective.evaluate("d2f", np.float64(theta)))
    eps = rng.standard_normal((reps, n, dim))
    x = theta + sigma * eps
    f = g(x).sum(axis=-1)
    e1 = eps[..., 0]
    scores = {"theta": e1 / sigma, "sigma": (e1 * e1 - 1) / sigma}
    h = (g0 + dg0 * (x - theta) + 0.5 * d2g0 * (x - theta) ** 2).sum(axis=-1)
    rest = f - g(x[..., 0])  # the other coordinates' part of f, shared by the two evaluations of the measure-valued ones

    def f_with_first(first):
        return g(first) + rest

    w1 = rng.rayleigh(1.0, (reps, n))
    w2 = rng.rayleigh(1.0, (reps, n))
    maxwell = rng.choice([-1.0, 1.0], (reps, n)) * np.sqrt(rng.chisquare(3, (reps, n)))
    u = rng.uniform(size=(reps, n))
    other = rng.standard_normal((reps, n))
    c = 1 / (sigma * math.sqrt(2 * math.pi))
    out = {}
    for wrt, s in scores.items():
        shift = dg0 if wrt == "theta" else sigma * d2g0
        centred = ((f - f.mean(axis=1, keepdims=True)) * s).sum(axis=1)
        out["score", wrt] = (f * s).mean(axis=1)
        out["score_mean_baseline", wrt] = ((f - dim * mean_g) * s).mean(axis=1)
        out["score_optimal_baseline", wrt] = ((f - bstar[wrt] - (dim - 1) * mean_g) * s).mean(axis=1)
        out["score_loo", wrt] = centred / (n - 1)
        out["score_batch_baseline", wrt] = centred / n
        out["score_delta", wrt] = ((f - h) * s).mean(axis=1) + shift
        if wrt == "theta":
            out["pathwise", wrt] = dg(x[..., 0]).mean(axis=1)
            out["pathwise_antithetic", wrt] = (0.5 * (dg(x[..., 0]) + dg(2 * theta - x[..., 0]))).mean(axis=1)
            out["mvd", wrt] = (c * (f_with_first(theta + sigma * w1) - f_with_first(theta - sigma * w1))).mean(axis=1)
            out["mvd_uncoupled", wrt] = (c * (f_with_first(theta + sigma * w1) - f_with_first(theta - sigma * w2))).mean(axis=1)
        else:
            out["pathwise", wrt] = (dg(x[..., 0]) * e1).mean(axis=1)
            out["pathwise_antithetic", wrt] = (0.5 * (dg(x[..., 0]) - dg(2 * theta - x[..., 0])) * e1).mean(axis=1)
            near = f_with_first(theta + sigma * maxwell)
            out["mvd", wrt] = ((near - f_with_first(theta + sigma * u * maxwell)) / sigma).mean(axis=1)
            out["mvd_uncoupled", wrt] = ((near - f_with_first(theta + sigma * other)) / sigma).mean(axis=1)
    return out


def test_exact_values_in_dim_dimensions_match_brute_force_simulation():
    """Every estimator's exact mean and variance in 4 dimensions against numpy simulations written from the
    definitions, tolerances from the simulations' own standard errors (family-wise 1%)."""
    objective, theta, sigma, n, dim, reps = make_objective(COS), 0.5, 0.8, 2, 4, 200_000
    exact = truth.exact(objective, [n], [theta], [sigma], NAMES, WRT, dim)
    sim = _brute_force(objective, theta, sigma, n, dim, reps, seed=7)
    z = z_bound(0.01, 2 * len(sim))
    for (e, w), est in sim.items():
        at = (0, 0, 0, NAMES.index(e), WRT.index(w))
        mean, var = exact["exact_mean"][at], exact["exact_var"][at]
        d = est - est.mean()
        var_se = math.sqrt((np.mean(d**4) - est.var() ** 2) / reps)
        assert abs(est.mean() - mean) < z * est.std() / math.sqrt(reps), (e, w, est.mean(), mean)
        assert abs(est.var(ddof=1) - var) < z * var_se, (e, w, est.var(ddof=1), var)


def test_simulated_means_and_variances_match_the_exact_ones_at_dim_1_5_50():
    cfg = dict(CFG, N=[2], theta=[0.3, 1.0], sigma=[0.6], reps=6000, dim=[1, 5, 50])
    ds = gradsweep.sweep(**cfg)
    z = z_bound(0.01, 2 * ds["mean"].size)
    assert float(np.abs((ds["mean"] - ds["exact_mean"]) / ds["mean_se"]).max()) < z
    assert float(np.abs((ds["var"] - ds["exact_var"]) / ds["var_se"]).max()) < z
    # the score family's variance grows with dim; the pathwise and measure-valued estimators' does not change
    exact = ds["exact_var"]
    score_family, others = list(NAMES[:6]), list(NAMES[6:])
    assert bool((exact.sel(dim=5, estimator=score_family) > exact.sel(dim=1, estimator=score_family)).all())
    assert bool((exact.sel(dim=50, estimator=score_family) > exact.sel(dim=5, estimator=score_family)).all())
    np.testing.assert_allclose((exact.sel(dim=50) / exact.sel(dim=1)).sel(estimator=others).values, 1.0, rtol=1e-12)


def test_the_delta_control_variate_is_exact_for_a_quadratic_in_any_dimension():
    ds = gradsweep.sweep(
        objective={"name": "quadratic", "k": 0.5}, estimators=["score_delta"], N=[1, 3], theta=[2.0], sigma=[1.5], reps=50, dim=[1, 20]
    )
    scale = 1.0 + float(np.abs(ds["mean"]).max()) ** 2
    assert float(ds["var"].max()) < 1e-24 * scale * 20**2
    np.testing.assert_array_equal(ds["exact_var"].values, 0.0)

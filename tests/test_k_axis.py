"""The objective's parameter k as a sweep axis: config, layout, kernels, exact values, statistics."""

import numpy as np
import pytest
from confidence import z_bound
from reference import functions, linear_moments

import gradsweep
from gradsweep import welford
from gradsweep.config import Config, ConfigError
from gradsweep.dataset import DIMS, K_DIMS, build_dataset
from gradsweep.estimators import ESTIMATORS, NAMES
from gradsweep.objectives import make_objective
from gradsweep.philox import replicate_normals

K_LIST = [0.5, 1.5, 4.0]
CFG = dict(objective={"name": "cos", "k": K_LIST}, N=[1, 7, 1030], theta=[0.5, -1.0], sigma=[0.8], reps=5, seed=31)


def test_config_reads_a_k_list_or_grid_and_refuses_bad_ones():
    cfg = Config.from_dict(objective={"name": "cos", "k": K_LIST})
    assert cfg.k_axis and cfg.k.tolist() == K_LIST and np.isnan(cfg.objective.k)
    assert cfg.objective.formula == "cos(k * x)" and cfg.n_cells == 5 * 3
    again = Config.from_dict(cfg.to_dict())  # the file's config reads back as the same axis
    assert again.k_axis and again.k.tolist() == K_LIST
    grid = Config.from_dict(objective={"name": "exp_quadratic", "k": {"start": 0.1, "stop": 10, "num": 5, "scale": "log"}})
    np.testing.assert_allclose(grid.k, [0.1, 10**-0.5, 1.0, 10**0.5, 10.0], rtol=1e-14)
    scalar = Config.from_dict(objective={"name": "cos", "k": 2.0})
    assert not scalar.k_axis and scalar.k.tolist() == [2.0] and scalar.objective.k == 2.0
    bad = [
        ({"name": "square", "k": [1.0, 2.0]}, "takes no parameters"),
        ({"name": "exp_quadratic", "k": [1.0, -1.0]}, "k > 0"),
        ({"name": "cos", "k": [1.0, 1.0]}, "repeated"),
        ({"name": "cos", "k": []}, "non-empty"),
        ({"name": "cos", "k": [1.0, "a"]}, "numbers only"),
        ({"name": "cos", "k": {"start": 1, "stop": 2}}, "num"),
    ]
    for spec, words in bad:
        with pytest.raises(ConfigError, match=words):
            Config.from_dict(objective=spec)


def reference_means(cfg):
    """Score and pathwise means (N, k, theta, sigma, [score, pathwise] x [theta, sigma]) written plainly from the
    documented layout: one stream per cell, cells in C order over (N, k, theta, sigma)."""
    out = np.empty((len(cfg["N"]), len(K_LIST), len(cfg["theta"]), len(cfg["sigma"]), 4))
    stream = 0
    for index in np.ndindex(out.shape[:-1]):
        i, kk, j, m = index
        f, df = functions(make_objective({"name": "cos", "k": K_LIST[kk]}))
        t, s, n = cfg["theta"][j], cfg["sigma"][m], cfg["N"][i]
        est = []
        for r in range(cfg["reps"]):
            z = replicate_normals(cfg["seed"], n, r, stream, 2)
            x = t + s * z
            est.append([np.mean(f(x) * z / s), np.mean(f(x) * (z * z - 1) / s), np.mean(df(x)), np.mean(df(x) * z)])
        out[index] = np.mean(est, axis=0)
        stream += 1
    return out


def test_k_cells_match_a_plain_numpy_reference():
    """Both kernels (N = 1030 is drawn in chunks), every k cell its own stream in (N, k, theta, sigma) order."""
    ds = gradsweep.sweep(**CFG)
    assert ds["mean"].dims == K_DIMS and ds["true_grad"].dims == ("k", "theta", "sigma", "wrt")
    assert ds["k"].attrs["long_name"] and ds["k"].values.tolist() == K_LIST
    got = ds["mean"].sel(estimator=["score", "score", "pathwise", "pathwise"], wrt=["theta", "sigma", "theta", "sigma"]).values
    got = np.stack([got[..., i, i] for i in range(4)], axis=-1)
    np.testing.assert_allclose(got, reference_means(CFG), rtol=1e-12, atol=1e-15)


def test_a_scalar_k_keeps_the_layout_and_a_one_value_list_the_numbers():
    scalar = gradsweep.sweep(**{**CFG, "objective": {"name": "cos", "k": 1.5}})
    assert scalar["mean"].dims == DIMS and "k" not in scalar.coords
    listed = gradsweep.sweep(**{**CFG, "objective": {"name": "cos", "k": [1.5]}})
    assert listed.sizes["k"] == 1
    for v in ("mean", "var", "m2", "m3", "m4", "count", "exact_var"):
        np.testing.assert_array_equal(listed[v].isel(k=0).values, scalar[v].values)


def test_common_random_numbers_share_one_stream_across_k():
    """With common random numbers a k grid is the same numbers as one run per k (stream = N index);
    only the merge order of the wider groups differs, so agreement is to rounding."""
    cfg = {**CFG, "common_random_numbers": True, "reps": 40}
    grid = gradsweep.sweep(**cfg)
    for k in K_LIST:
        one = gradsweep.sweep(**{**cfg, "objective": {"name": "cos", "k": k}})
        for v in ("mean", "var"):
            np.testing.assert_allclose(grid[v].sel(k=k).values, one[v].values, rtol=1e-10, atol=1e-14)


SURVEY = [
    ({"name": "quadratic", "k": [-3.0, 0.0, 2.5]}),
    ({"name": "exp_quadratic", "k": [0.1, 1.0, 10.0]}),
    ({"name": "cos", "k": [0.5, 2.0, 5.0]}),
]
SURVEY_ESTIMATORS = ["score", "score_mean_baseline", "score_optimal_baseline", "pathwise", "mvd"]


@pytest.mark.parametrize("objective", SURVEY, ids=lambda o: o["name"])
def test_exact_values_along_k_against_independent_quadrature(objective):
    """The survey's objectives and estimators at theta = sigma = 1: the file's exact per-sample values at each k
    against tests/reference.py's quadrature (no closed forms there)."""
    cfg = Config.from_dict(objective=objective, estimators=SURVEY_ESTIMATORS, N=[1], theta=[1.0], sigma=[1.0])
    state = welford.empty((cfg.n_cells, cfg.n_outputs))
    ds = build_dataset(cfg, state, backend="cpu", kernels="cpu", threads=1)
    for k in objective["k"]:
        obj = make_objective({"name": objective["name"], "k": k})
        for name in SURVEY_ESTIMATORS:
            for wrt in ("theta", "sigma"):
                mean, var = linear_moments(name, wrt, obj, 1.0, 1.0)
                cell = ds.sel(N=1, k=k, theta=1.0, sigma=1.0, estimator=name, wrt=wrt)
                assert float(cell["exact_mean"]) == pytest.approx(mean, rel=1e-9, abs=1e-12), (name, wrt, k)
                assert float(cell["exact_var"]) == pytest.approx(var, rel=1e-8, abs=1e-12), (name, wrt, k)
        grad = ds["true_grad"].sel(k=k, theta=1.0, sigma=1.0)
        assert float(grad.sel(wrt="theta")) == pytest.approx(linear_moments("pathwise", "theta", obj, 1.0, 1.0)[0], abs=1e-12)


ONE_SAMPLE = tuple(name for name in NAMES if ESTIMATORS[name].min_n == 1)  # the layout tests/test_sweep.py compiles too


def test_estimates_along_k_agree_with_exact_values():
    """Each k of a grid is right in distribution: N = 1, mean and variance within 1% family-wise intervals
    (not score_delta's variance at N = 1, whose sample variance is far from normal: see test_sweep.normal_variance)."""
    objective = {"name": "cos", "k": [0.5, 2.0, 5.0]}
    ds = gradsweep.sweep(objective=objective, estimators=ONE_SAMPLE, N=[1], theta=[1.0], sigma=[1.0], reps=4001, seed=5)
    z = z_bound(0.01, 2 * ds["mean"].size)
    mean_z = (ds["mean"] - ds["exact_mean"]) / np.sqrt(ds["exact_var"] / ds["count"])
    var_z = ((ds["var"] - ds["exact_var"]) / ds["var_se"]).where(ds["estimator"] != "score_delta", 0.0)
    assert float(abs(mean_z).max()) < z, mean_z.where(abs(mean_z) >= z, drop=True)
    assert float(abs(var_z).max()) < z, var_z.where(abs(var_z) >= z, drop=True)

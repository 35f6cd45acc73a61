"""Comparisons that hold: the compared pairs' states, the intervals, their coverage, selection, plots, show."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from confidence import z_bound
from reference import functions
from scipy import stats

import gradsweep
from gradsweep import dataset, welford
from gradsweep.calibration import coverage
from gradsweep.cli import main
from gradsweep.config import Config, ConfigError
from gradsweep.objectives import make_objective
from gradsweep.philox import replicate_normals

OBJECTIVE = {"name": "cos", "k": 1.5}
#: N = 1 and 3 run in replicate pairs, N = 1030 in chunks; 7 replicates end on half a pair.
CFG = dict(objective=OBJECTIVE, N=[1, 3, 1030], theta=[0.5, -1.0], sigma=[0.8], reps=7, seed=17)


def reference_estimates(cfg):
    """Replicate estimates (N, theta, sigma, replicate, [score, pathwise], [theta, sigma]) written plainly in
    numpy from the documented stream: one stream per cell, cells in C order over (N, theta, sigma)."""
    f, df = functions(make_objective(cfg["objective"]))
    out = np.empty((len(cfg["N"]), len(cfg["theta"]), len(cfg["sigma"]), cfg["reps"], 2, 2))
    for stream, (i, j, m) in enumerate(np.ndindex(out.shape[:3])):
        t, s, n = cfg["theta"][j], cfg["sigma"][m], cfg["N"][i]
        for r in range(cfg["reps"]):
            z = replicate_normals(cfg["seed"], n, r, stream, 2)
            x = t + s * z
            out[i, j, m, r] = [[np.mean(f(x) * z / s), np.mean(f(x) * (z * z - 1) / s)], [np.mean(df(x)), np.mean(df(x) * z)]]
    return out


@pytest.fixture(scope="module")
def small():
    return gradsweep.sweep(**CFG), reference_estimates(CFG)


def test_a_compared_pair_records_the_states_of_the_sum_and_difference_of_its_estimates(small):
    ds, est = small
    assert list(ds["pair"].values) == ["score/pathwise"] and list(ds["combination"].values) == ["sum", "difference"]
    assert ds["pair_m4"].dims == ("N", "theta", "sigma", "pair", "combination", "wrt")
    score, pathwise = est[..., 0, :], est[..., 1, :]
    for combination, values in (("sum", score + pathwise), ("difference", score - pathwise)):
        want = welford.from_values(values, axis=3)  # (N, theta, sigma, wrt, 5)
        pair = ds[["pair_mean", "pair_m2", "pair_m3", "pair_m4"]]
        got = pair.sel(pair="score/pathwise", combination=combination).transpose("N", "theta", "sigma", "wrt")
        count = ds["count"].isel(estimator=0).transpose("N", "theta", "sigma", "wrt").values
        np.testing.assert_array_equal(count, want[..., 0])
        for f, name in ((1, "mean"), (2, "m2"), (3, "m3"), (4, "m4")):
            scale = max(np.abs(want[..., f]).max(), (want[..., 2] ** (f / 2)).max())  # m3 of a symmetric sum is ~0
            np.testing.assert_allclose(got[f"pair_{name}"].values, want[..., f], rtol=1e-9, atol=1e-11 * scale, err_msg=name)


def delta_interval(a, b, z):
    """The ratio interval written directly from replicate estimates a, b (replicates on the last axis):
    the joint moments from products of deviations, not from the sum and difference."""
    n = a.shape[-1]
    da, db = a - a.mean(-1, keepdims=True), b - b.mean(-1, keepdims=True)
    sa, sb = (da**2).sum(-1) / (n - 1), (db**2).sum(-1) / (n - 1)
    va = ((da**4).mean(-1) - (n - 3) / (n - 1) * sa**2) / n
    vb = ((db**4).mean(-1) - (n - 3) / (n - 1) * sb**2) / n
    cov = (da * db).sum(-1) / (n - 1)
    cov_s2 = ((da**2 * db**2).mean(-1) - sa * sb) / n + 2 * cov**2 / (n * (n - 1))
    se = np.sqrt(np.clip(va / sa**2 + vb / sb**2 - 2 * cov_s2 / (sa * sb), 0, None))
    return sa / sb, sa / sb * np.exp(-z * se), sa / sb * np.exp(z * se)


def test_variance_ratio_equals_the_delta_interval_written_from_the_replicates(small):
    ds, est = small
    level = 0.9
    got = ds.gradsweep.variance_ratio("score", "pathwise", level=level).transpose("N", "theta", "sigma", "wrt")
    want = delta_interval(np.moveaxis(est[..., 0, :], 3, -1), np.moveaxis(est[..., 1, :], 3, -1), stats.norm.ppf(0.95))
    for name, w in zip(("ratio", "lower", "upper"), want, strict=True):
        np.testing.assert_allclose(got[name].values, w, rtol=1e-9, err_msg=name)
    flipped = ds.gradsweep.variance_ratio("pathwise", "score", level=level).transpose("N", "theta", "sigma", "wrt")
    np.testing.assert_allclose(flipped["ratio"].values, 1 / want[0], rtol=1e-9)
    np.testing.assert_allclose(flipped["upper"].values, 1 / want[1], rtol=1e-9)
    single = ds.gradsweep.variance_interval(level=level)
    assert (single["lower"] < ds["var"]).all() and (ds["var"] < single["upper"]).all()
    assert got.attrs["level"] == level


def test_efficiency_is_variance_times_cost_and_relative_to_a_reference(small):
    ds, _ = small
    eff = ds.gradsweep.efficiency(reference="score")
    xr.testing.assert_allclose(eff["work_variance"], ds["var"] * ds["cost"])
    ratio = ds.gradsweep.variance_ratio("score", "pathwise")
    xr.testing.assert_allclose(eff["relative"].sel(estimator="pathwise", drop=True), ratio["ratio"])
    np.testing.assert_array_equal(eff["relative"].sel(estimator="score").values, 1.0)
    assert "relative" not in ds.gradsweep.efficiency()
    dearer = ds.assign(cost=ds["cost"] * xr.DataArray([1, 3], dims="estimator"))  # pathwise at 3 evaluations a sample
    eff = dearer.gradsweep.efficiency(reference="score")
    xr.testing.assert_allclose(eff["relative"].sel(estimator="pathwise", drop=True), ratio["ratio"] / 3)
    xr.testing.assert_allclose(eff["relative_upper"].sel(estimator="pathwise", drop=True), ratio["upper"] / 3)
    upper = ds.gradsweep.variance_interval()["upper"].sel(estimator="pathwise")
    xr.testing.assert_allclose(eff["upper"].sel(estimator="pathwise"), 3 * upper)


def test_what_cannot_be_compared_is_refused_in_one_line(small):
    ds, _ = small
    unrecorded = ds.drop_vars(["pair_mean", "pair_m2", "pair_m3", "pair_m4", "pair", "combination"])
    for call, words in [
        (lambda: unrecorded.gradsweep.variance_ratio("score", "pathwise"), 'compare = [["score", "pathwise"]]'),
        (lambda: unrecorded.gradsweep.efficiency(reference="pathwise"), "no joint record of pathwise and score"),
        (lambda: ds.gradsweep.variance_ratio("score", "mvd"), "'mvd' is not in this file"),
        (lambda: ds.gradsweep.variance_interval(level=95), "between 0 and 1"),
        (lambda: ds.gradsweep.sel(theta=0.4), "theta = 0.4 is not in the file; the nearest are -1 and 0.5"),
        (lambda: ds.gradsweep.sel(N=2000), "the nearest is 1030"),
        (lambda: ds.gradsweep.sel(estimator="mvd"), "'mvd' is not in the file"),
        (lambda: ds.gradsweep.sel(k=1.0), "no k axis"),
        (lambda: ds.gradsweep.plot(kind="pie"), "variance"),
        (lambda: unrecorded.drop_vars("cost").gradsweep.plot(cost=True), "no cost"),
    ]:
        with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("(", r"\(")):
            call()
    ratio = ds.gradsweep.variance_ratio("pathwise", "score")  # either order of a recorded pair
    assert np.isfinite(ratio["upper"]).all() and ds.gradsweep.variance_ratio("score", "score")["lower"].min() == 1
    assert float(ds.gradsweep.sel(theta=0.5 * (1 + 1e-12))["theta"]) == 0.5  # a printed value selects its cell


def test_compare_is_validated_and_read_back():
    assert Config.from_dict(estimators=["score", "pathwise", "mvd"]).compare == (("score", "pathwise"), ("score", "mvd"))
    assert len(Config.from_dict(estimators="all", compare="all").compare) == 45
    assert Config.from_dict(compare="none").compare == () == Config.from_dict(estimators=["score"]).compare
    cfg = Config.from_dict(estimators=["score", "pathwise"], compare=[["pathwise", "score"]])
    assert Config.from_dict(cfg.to_dict()).compare == (("pathwise", "score"),)
    for spec, words in [
        ("some", "compare must be"),
        ([["score", "mvd"]], "'mvd' is not among the estimators"),
        ([["score", "score"]], "two different"),
        ([["score", "pathwise"], ["pathwise", "score"]], "given twice"),
        ([["score"]], "two estimator names"),
        (3, "compare must be"),
    ]:
        with pytest.raises(ConfigError, match=words):
            Config.from_dict(compare=spec)


def test_a_file_from_before_compare_still_reads_and_says_what_it_lacks(tmp_path, small):
    ds, _ = small
    config = json.loads(ds.attrs["config"])
    del config["compare"]
    old = ds.drop_vars(["pair_mean", "pair_m2", "pair_m3", "pair_m4", "pair", "combination"]).assign_attrs(config=json.dumps(config))
    dataset.write(old, tmp_path / "old.nc")
    with xr.open_dataset(tmp_path / "old.nc") as back:
        assert dataset.config_of(back).compare == ()
        with pytest.raises(ConfigError, match="no joint record"):
            back.gradsweep.variance_ratio("score", "pathwise")
    dropped = ds.drop_vars(["pair_m4"])
    with pytest.raises(ConfigError, match="compared pairs"):
        dataset.config_of(dropped.assign_attrs(checksum=dataset.checksum(dropped)))


def test_the_intervals_cover_at_their_level_over_400_seeds():
    """Coverage of the 95% intervals over 400 seeds x 4 independent cells, N = 10, 500 replicates: the
    single variances, a moderately correlated pair (score/pathwise: correlation of the variance estimates
    0.2 to 0.7) and a strongly correlated one (score/score_loo, 0.6 to 0.8). Each rate must be
    consistent with the 93-97% band at a family-wise 1% over the ten rates; and an interval that ignored
    the correlation would cover score/score_loo far too often (it is that much too wide)."""
    family = ["score", "pathwise", "score_loo"]
    cfg = Config.from_dict(objective={"name": "cos", "k": 1.0}, estimators=family, N=[10], theta=[1.0, 2.0], sigma=[0.5, 1.0], reps=500)
    found = coverage(cfg, range(400))
    assert len(found) == 10
    correlations = {(c.what, c.wrt): c.correlation for c in found if "/" in c.what}
    assert 0.5 < correlations["score/score_loo", "sigma"] and 0.5 < correlations["score/pathwise", "theta"] < 0.8
    z = z_bound(0.01, len(found))
    for c in found:
        slack = z * math.sqrt(0.95 * 0.05 / c.trials)
        assert c.trials == 1600 and 0.93 - slack <= c.rate <= 0.97 + slack, c
    runs = xr.concat([gradsweep.sweep(cfg.replace(seed=s)) for s in range(100)], dim="seed")
    single = runs.gradsweep.variance_interval()
    half = np.log(single["upper"] / single["var"])  # z x the log-scale standard error of each variance
    wide = np.exp(np.hypot(half.sel(estimator="score"), half.sel(estimator="score_loo")))
    ratio = runs.gradsweep.variance_ratio("score", "score_loo")
    truth = runs["exact_var"].sel(estimator="score") / runs["exact_var"].sel(estimator="score_loo")
    ignored = ((ratio["ratio"] / wide <= truth) & (truth <= ratio["ratio"] * wide)).mean()
    assert ignored > 0.99 and (ratio["upper"] / ratio["ratio"] < wide).all()


def test_plots_into_an_axes_or_a_new_figure_and_show_selects_exactly(tmp_path, small):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ds, _ = small
    fig, ax = plt.subplots()
    assert ds.gradsweep.plot(ax=ax, wrt="theta", theta=-1.0) is fig
    assert len(ax.lines) >= 2 and ax.get_yscale() == "log" and ax.get_legend() is not None
    with pytest.raises(ConfigError, match="pass wrt="):
        ds.gradsweep.plot(ax=ax)
    grid = gradsweep.sweep(**{**CFG, "N": [3], "theta": [-1.0, 0.0, 1.0], "sigma": {"start": 0.5, "stop": 2.0, "num": 3, "scale": "log"}})
    fig = grid.gradsweep.plot(kind="ratio", a="score", b="pathwise")
    assert len(fig.axes) == 3 and fig.axes[0].get_yscale() == "log"  # two panels and the colour bar
    plt.close("all")
    path = tmp_path / "g.nc"
    dataset.write(grid, path)
    runner = CliRunner()
    for args in (["--ratio", "score/pathwise", "--cost"], ["--cost", "--theta", "0"]):
        r = runner.invoke(main, ["plot", str(path), "-o", str(tmp_path / "r.svg"), "--overwrite", *args])
        assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["plot", str(path), "-o", str(tmp_path / "x.png"), "--theta", "0.3"])
    assert r.exit_code == 2 and "nearest are 0 and 1" in r.stderr and not (tmp_path / "x.png").exists()
    r = runner.invoke(main, ["show", str(path), "--theta", "0,1", "--wrt", "theta", "--reference", "score", "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0].startswith("N,theta,sigma,estimator,wrt,mean") and "ratio_upper" in lines[0] and len(lines) == 1 + 2 * 3 * 2
    r = runner.invoke(main, ["show", str(path), "--estimator", "pathwise", "--format", "json", "--sigma", "1"])
    rows = json.loads(r.stdout)
    assert r.exit_code == 0 and len(rows) == 3 * 2 and {row["estimator"] for row in rows} == {"pathwise"}
    refused = [(["--N", "4"], "N = 4 is not in the file"), (["--k", "1"], "no k axis"), (["--reference", "mvd"], "--reference mvd")]
    for args, words in refused:
        r = runner.invoke(main, ["show", str(path), *args])
        assert r.exit_code == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.output


def test_calibrate_counts_coverage_of_a_users_config(tmp_path):
    """The command runs the config once per seed and counts, per interval and wrt, the cells whose interval
    holds the exact value; a common-random-numbers config (cells not independent) is refused."""
    cfg = tmp_path / "c.toml"
    cfg.write_text('objective = { name = "cos", k = 1.5 }\nN = [3]\ntheta = [0.5, -1.0]\nsigma = [0.8]\nreps = 40\n')
    r = CliRunner().invoke(main, ["calibrate", str(cfg), "--seeds", "30", "--format", "csv"])
    assert r.exit_code == 0, r.output
    lines = r.stdout.strip().splitlines()
    assert lines[0] == "interval,wrt,covered,trials,rate,se,correlation" and len(lines) == 1 + 3 * 2
    want = coverage(Config.from_toml(cfg), range(30))
    for line, c in zip(lines[1:], want, strict=True):
        what, wrt, covered, trials = line.split(",")[:4]
        assert (what, wrt, int(covered), int(trials)) == (c.what, c.wrt, c.covered, 60) and 0 < c.covered <= 60
    cfg.write_text(cfg.read_text() + "common_random_numbers = true\n")
    r = CliRunner().invoke(main, ["calibrate", str(cfg), "--seeds", "3"])
    assert r.exit_code == 2 and "independent cells" in r.stderr

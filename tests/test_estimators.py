"""The estimator family through the engine: determinism, numerics at large offsets, the config rules, the file."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

import gradsweep
from gradsweep import plan
from gradsweep.cli import main
from gradsweep.config import ConfigError
from gradsweep.estimators import ESTIMATORS, NAMES, layout
from gradsweep.objectives import Objective

#: Over dim too: the kernels of the whole family over dim are the ones the dim, shards and dask tests compile
FAMILY = dict(objective={"name": "cos", "k": 1.5}, estimators="all", theta=[0.3, -1.0], sigma=[0.8], seed=11, dim=[1, 2])


def test_all_estimators_bit_identical_across_threads_and_batch_sizes(monkeypatch):
    cfg = dict(FAMILY, N=[2, 7, 70001], reps=9)
    one = gradsweep.sweep(threads=1, **cfg)
    two = gradsweep.sweep(threads=2, **cfg)
    monkeypatch.setattr(plan, "BATCH_SAMPLES", 5000)
    monkeypatch.setattr(plan, "BATCH_ITEMS", 7)
    small = gradsweep.sweep(threads=2, **cfg)
    assert list(one.estimator.values) == list(NAMES)
    for other in (two, small):
        for v in ("mean", "var", "m2", "m3", "m4", "count"):
            np.testing.assert_array_equal(one[v].values, other[v].values)


def test_extending_the_whole_family_equals_one_run():
    from gradsweep.extend import extend

    cfg = dict(FAMILY, N=[2, 300])
    once = gradsweep.sweep(reps=40, **cfg)
    extended = extend(gradsweep.sweep(reps=25, **cfg), 15)
    np.testing.assert_array_equal(extended["count"].values, once["count"].values)
    for v in ("mean", "var", "var_se", "m2"):
        np.testing.assert_allclose(extended[v].values, once[v].values, rtol=1e-12, atol=1e-12 * float(abs(once[v]).max()))


def test_a_subset_computes_the_same_numbers_as_the_whole_family():
    """Each estimator's numbers depend on its own draws only, not on which others were asked for."""
    cfg = dict(FAMILY, N=[2, 9], reps=6)
    whole = gradsweep.sweep(**cfg)
    part = gradsweep.sweep(**{**cfg, "estimators": ["mvd_uncoupled", "score_loo"], "wrt": ["sigma"]})
    for v in ("mean", "var"):
        np.testing.assert_array_equal(part[v].values, whole[v].sel(estimator=["mvd_uncoupled", "score_loo"], wrt=["sigma"]).values)


def test_leave_one_out_keeps_its_digits_at_a_large_offset():
    """f = 1e8 + x^2 against f = x^2 on the same random numbers: the baselines remove the offset exactly
    in exact arithmetic, and the per-cell shift by f(theta) keeps it from eating the digits in floating point;
    in 4 dimensions too (4e8 in all), where each coordinate's term is shifted by its own g(theta)."""
    cfg = dict(estimators=["score_loo", "score_batch_baseline", "mvd"], N=[2, 50], theta=[0.5], sigma=[1.0], reps=400, seed=5, dim=[1, 4])
    plain = gradsweep.sweep(objective=Objective("x2", f=_square), **cfg)  # f alone: the measure-valued estimator needs no more
    offset = gradsweep.sweep(objective=Objective("x2_offset", f=_square_offset), **cfg)
    loo = ["score_loo", "score_batch_baseline"]
    np.testing.assert_allclose(offset["var"].sel(estimator=loo).values, plain["var"].sel(estimator=loo).values, rtol=1e-6)
    scale = float(abs(plain["mean"]).max())
    np.testing.assert_allclose(
        offset["mean"].sel(estimator=loo).values, plain["mean"].sel(estimator=loo).values, rtol=1e-6, atol=1e-6 * scale
    )
    assert np.isfinite(plain["mean"]).all() and np.isfinite(plain["var"]).all()


def _square(x):
    return x * x


def _square_offset(x):
    return 1e8 + x * x


def test_shared_sums_are_computed_once():
    lay = layout(("score_loo", "score_batch_baseline"), ("theta", "sigma"))
    assert len(lay.sums) == 5  # f~ shared by both wrt; f~ s and s per wrt; both estimators share all
    assert lay.output_sums[0] == lay.output_sums[2]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"estimators": ["score_loo"], "N": [1, 10]}, "'score_loo' needs N >= 2"),
        ({"estimators": ["score_batch_baseline"], "N": [1]}, "needs N >= 2"),
        ({"estimators": ["score_delta"], "objective": Objective("x2", f=_square, df=lambda x: 2 * x)}, "second derivative d2f"),
        ({"estimators": ["pathwise_antithetic"], "objective": Objective("x2", f=_square)}, "the derivative df"),
        ({"estimators": ["mvd", "nope"]}, "unknown estimator 'nope'"),
    ],
)
def test_bad_estimator_requests_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        gradsweep.sweep(**{"N": [10], "reps": 2, **kwargs})


def test_the_file_records_cost_exact_mean_and_descriptions(tmp_path):
    cfg = tmp_path / "c.toml"
    # cos at k = 1.5: the all-ten kernels test_sweep compiles too
    cfg.write_text('estimators = "all"\nN = [2, 3]\nreps = 3\ntheta = [0.5]\nsigma = [1.0]\n[objective]\nname = "cos"\nk = 1.5\n')
    out = tmp_path / "o.nc"
    result = CliRunner().invoke(main, ["run", str(cfg), "-o", str(out)])
    assert result.exit_code == 0, result.output
    import xarray as xr

    ds = xr.open_dataset(out)
    assert list(ds.estimator.values) == list(NAMES)
    assert ds["cost"].values.tolist() == [ESTIMATORS[n].cost for n in NAMES]
    for name in ("cost", "exact_mean"):
        assert ds[name].attrs["long_name"] and ds[name].attrs["units"] == "1"
    bias = ds["exact_mean"].sel(estimator="score_batch_baseline") / ds["true_grad"]
    np.testing.assert_allclose(bias.values, np.broadcast_to(np.array([1 / 2, 2 / 3]).reshape(2, 1, 1, 1), bias.shape))
    assert "score_loo" in ds.estimator.attrs["description"]
    bad = tmp_path / "b.toml"
    bad.write_text('estimators = ["score_loo"]\nN = [1]\n')
    result = CliRunner().invoke(main, ["run", str(bad), "-o", str(tmp_path / "b.nc")])
    assert result.exit_code == 2 and "needs N >= 2" in result.output and not (tmp_path / "b.nc").exists()


def _dsquare(x):
    return 2.0 * x


def _d2square(x):
    return 2.0 + 0.0 * x


def test_a_user_objective_runs_the_same_estimator_code_as_the_builtin():
    """x^2 given as a user objective (f, f', f'') reproduces the built-in square: the user kernels rebind
    the objective in every helper an estimator calls (score_delta's residual, say, and the sums over the other
    coordinates of a sweep over dim)."""
    cfg = dict(
        estimators=["score_optimal_baseline", "score_delta", "mvd_uncoupled"], N=[3, 40], theta=[0.5, -1.0], sigma=[0.8], reps=5, dim=[1, 3]
    )
    user = gradsweep.sweep(objective=Objective("x2", f=_square, df=_dsquare, d2f=_d2square), **cfg)
    builtin = gradsweep.sweep(objective="square", **cfg)
    for v in ("mean", "var"):
        np.testing.assert_allclose(user[v].values, builtin[v].values, rtol=1e-12, atol=1e-14)


def test_files_from_before_the_family_stay_readable_and_extendable(tmp_path):
    """A score/pathwise file written by gradsweep 0.1.0 before the redesign (tests/data; no cost or exact_mean,
    no ``streams`` in its config): show and plot read it, and extend merges new replicates into it, drawn
    in its own stream layout (streams = 1), equal to a fresh run of them all in that layout."""
    import shutil
    from pathlib import Path

    import xarray as xr

    old = tmp_path / "old.nc"
    shutil.copy(Path(__file__).parent / "data" / "score_pathwise_before_the_family.nc", old)
    assert "cost" not in xr.open_dataset(old).data_vars
    runner = CliRunner()
    shown = runner.invoke(main, ["show", str(old)])
    assert shown.exit_code == 0 and "pathwise" in shown.output
    assert runner.invoke(main, ["plot", str(old), "-o", str(tmp_path / "old.png")]).exit_code == 0
    assert runner.invoke(main, ["extend", str(old), "--reps", "4"]).exit_code == 0
    extended = xr.open_dataset(old)
    assert json.loads(extended.attrs["config"])["streams"] == 1
    fresh = gradsweep.sweep(objective={"name": "cos", "k": 1.5}, N=[4, 30], theta=[0.0, 1.0], sigma=[0.8], reps=10, seed=3, streams=1)
    np.testing.assert_array_equal(extended["count"].values, fresh["count"].values)
    for v in ("mean", "var"):
        np.testing.assert_allclose(extended[v].values, fresh[v].values, rtol=1e-12)
    assert extended["cost"].values.tolist() == [1, 1]

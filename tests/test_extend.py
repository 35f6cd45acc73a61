"""gradsweep extend: more replicates, equal to running them all at once."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import gradsweep
from gradsweep import dataset
from gradsweep.cli import main
from gradsweep.config import ConfigError
from gradsweep.extend import extend

CFG = dict(
    objective={"name": "quadratic", "k": 0.5},
    N=[7, 1000],
    theta=[0.0, 1.5],
    sigma=[0.5, 2.0],
    seed=21,
    estimators=["pathwise", "score"],
    wrt=["sigma"],
)


def assert_same_result(a, b):
    np.testing.assert_array_equal(a["count"].values, b["count"].values)
    for v in ("mean", "var", "var_se", "m2", "pair_mean", "pair_m2", "pair_m4"):
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-12)


def test_extend_equals_one_run_with_all_replicates():
    once = gradsweep.sweep(reps=50, **CFG)
    assert_same_result(extend(gradsweep.sweep(reps=30, **CFG), 20), once)
    # small N is drawn in replicate pairs: replicate 13 is the second of pair 6, so this extension starts inside it
    assert_same_result(extend(gradsweep.sweep(reps=13, **CFG), 37), once)
    twice = extend(extend(gradsweep.sweep(reps=12, **CFG), 30), 8)
    assert_same_result(twice, once)
    assert twice.attrs["replicates"] == 50 and len(twice.attrs["history"].splitlines()) == 3


def test_extend_along_dim_and_k_axes_equals_one_run():
    cfg = {**CFG, "objective": {"name": "quadratic", "k": [0.5, -2.0]}, "dim": [1, 3]}
    once = gradsweep.sweep(reps=20, **cfg)
    extended = extend(gradsweep.sweep(reps=7, **cfg), 13)
    assert extended["mean"].dims == once["mean"].dims and extended.sizes["k"] == 2 and extended.sizes["dim"] == 2
    assert_same_result(extended, once)


def test_extend_command_in_place(tmp_path):
    path = dataset.write(gradsweep.sweep(reps=10, **CFG), tmp_path / "r.nc")
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "15"])
    assert r.exit_code == 0, r.output
    assert_same_result(xr.open_dataset(path).load(), gradsweep.sweep(reps=25, **CFG))
    assert list(tmp_path.iterdir()) == [path]


def test_extend_refusals(tmp_path):
    path = dataset.write(gradsweep.sweep(reps=4, **CFG), tmp_path / "r.nc")
    before = path.read_bytes()
    for args in (["--reps", "0"], ["--reps", "-3"]):
        r = CliRunner().invoke(main, ["extend", str(path), *args])
        assert r.exit_code == 2 and len(r.stderr.strip().splitlines()) == 1
    assert path.read_bytes() == before
    other = tmp_path / "plain.nc"
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(other)
    r = CliRunner().invoke(main, ["extend", str(other), "--reps", "3"])
    assert r.exit_code == 2 and "not a gradsweep result" in r.stderr


def cube(x):
    return x * x * x


def test_user_objective_results_cannot_be_extended():
    ds = gradsweep.sweep(objective=gradsweep.Objective("cube", f=cube), estimators=["score"], N=[5], reps=3)
    with pytest.raises(ConfigError, match="user objective"):
        extend(ds, 2)


def test_extend_records_every_backend_that_computed_the_result():
    ds = gradsweep.sweep(reps=4, **CFG)
    again = extend(ds, 3)
    assert (again.attrs["backend"], again.attrs["kernels"]) == ("cpu", "cpu") and "device" not in again.attrs
    ds.attrs.update(backend="cuda", kernels="cuda", device="Some GPU")  # as a GPU run records itself
    mixed = extend(ds, 3)
    assert (mixed.attrs["backend"], mixed.attrs["kernels"], mixed.attrs["device"]) == ("cuda+cpu", "cuda+cpu", "Some GPU")
    with pytest.raises(ConfigError, match="extend runs on this machine"):
        extend(ds, 3, backend="dask")


def test_the_commands_are_functions_of_the_package():
    assert gradsweep.extend is extend and callable(gradsweep.merge) and callable(gradsweep.plot)
    assert "extend" in gradsweep.__all__ and "merge" in gradsweep.__all__

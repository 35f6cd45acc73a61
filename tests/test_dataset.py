"""The result file: schema, CF attributes, atomic and refusing writes."""

import json

import netCDF4
import numpy as np
import pytest
import xarray as xr

import gradsweep
from gradsweep import dataset


@pytest.fixture(scope="module")
def ds():
    return gradsweep.sweep(objective={"name": "cos", "k": 2.0}, N=[10, 100], theta=[0.0, 1.0, 2.0], sigma=[0.5, 1.0], reps=20, seed=11)


def test_dimensions_and_variables(ds):
    assert tuple(ds["mean"].dims) == ("N", "theta", "sigma", "estimator", "wrt")
    assert ds["true_grad"].dims == ("theta", "sigma", "wrt")
    for v in ("mean", "var", "mean_se", "var_se", "count", "exact_var", "m2", "m3", "m4"):
        assert ds[v].dims == ds["mean"].dims
    assert ds["count"].dtype == np.int64
    np.testing.assert_allclose(ds["var"], ds["m2"] / (ds["count"] - 1))


def test_every_variable_and_coordinate_is_described(ds):
    for name, var in {**ds.data_vars, **ds.coords}.items():
        assert var.attrs.get("long_name"), name
        assert var.attrs.get("units") == "1", name
    for key in ("Conventions", "history", "config", "seed", "backend", "replicates", "gradsweep_version", "numba_version"):
        assert key in ds.attrs
    assert json.loads(ds.attrs["config"])["objective"] == {"name": "cos", "k": 2.0}


def test_indexes_are_xarrays_defaults_and_select_by_label(ds):
    """build_dataset makes its dimension indexes itself (it is faster): they must be the ones xarray would make."""
    default = xr.Dataset(coords={dim: (dim, ds[dim].values) for dim in ds.dims})
    for dim in ds.dims:
        assert ds.xindexes[dim].equals(default.xindexes[dim]), dim
        assert ds[dim].dtype == default[dim].dtype, dim
    cell = ds.sel(N=100, theta=1.0, sigma=0.5, estimator="score", wrt="sigma")
    assert float(cell["mean"]) == ds["mean"].values[1, 1, 0, list(ds.estimator.values).index("score"), list(ds.wrt.values).index("sigma")]


def test_round_trip_with_plain_xarray(ds, tmp_path):
    path = dataset.write(ds, tmp_path / "r.nc")
    back = xr.open_dataset(path, engine="netcdf4")
    # the file adds only its checksum, which its read-back state reproduces
    assert back.attrs["checksum"] == dataset.checksum(back) == dataset.checksum(ds)
    xr.testing.assert_identical(back.load(), ds.assign_attrs(seed=back.attrs["seed"], checksum=back.attrs["checksum"]))
    with netCDF4.Dataset(path) as nc:
        for coord in ("N", "theta", "sigma"):
            assert "_FillValue" not in nc[coord].ncattrs()
    assert int(back.attrs["seed"]) == 11
    back.close()


def test_refuses_to_replace_without_overwrite(ds, tmp_path):
    path = tmp_path / "r.nc"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        dataset.write(ds, path)
    assert path.read_bytes() == b"precious"
    dataset.write(ds, path, overwrite=True)
    assert xr.open_dataset(path).sizes["theta"] == 3


def test_interrupted_write_leaves_old_file_and_no_debris(ds, tmp_path, monkeypatch):
    path = tmp_path / "r.nc"
    path.write_bytes(b"old")

    def broken(self, target, **kwargs):
        with open(target, "wb") as fh:
            fh.write(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(KeyboardInterrupt):
        dataset.write(ds, path, overwrite=True)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.nc"]


def _messages(results) -> list[str]:
    """Every message of compliance-checker's JSON results, their children's too."""
    out = []
    for r in results:
        out += [f"{r['name']}: {m}" for m in r.get("msgs", [])] + _messages(r.get("children", []))
    return out


def test_a_file_with_every_dimension_passes_cf_1_10_strict(tmp_path):
    """IOOS compliance-checker, CF-1.10 at its strictest, finds nothing in a file with the dim and k axes and the
    compared pairs' variables. (Its monotonicity check raises on string coordinates, which CF allows: not a message.)"""
    from compliance_checker.runner import CheckSuite, ComplianceChecker

    CheckSuite().load_all_available_checkers()

    cfg = dict(objective={"name": "quadratic", "k": [0.5, -2.0]}, N=[7, 1000], theta=[0.0, 1.5], sigma=[0.5, 2.0], seed=21)
    ds = gradsweep.sweep(**cfg, estimators=["pathwise", "score"], wrt=["sigma"], dim=[1, 3], reps=5)
    path = dataset.write(ds, tmp_path / "r.nc")
    report = tmp_path / "report.json"
    ComplianceChecker.run_checker(str(path), ["cf:1.10"], 0, "strict", output_filename=str(report), output_format="json")
    result = json.loads(report.read_text())["cf:1.10"]
    assert _messages(result["all_priorities"]) == []
    assert result["scored_points"] == result["possible_points"] > 200

"""Shards and merge: any split, merged, is bit-identical to a single run."""

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import gradsweep
from gradsweep.cli import main
from gradsweep.config import ConfigError
from gradsweep.extend import extend
from gradsweep.shards import merge_shards

# k and dim are swept: shards split the (N, dim, k, theta, sigma) cells
CFG = dict(
    objective={"name": "cos", "k": [1.1, 2.5]},
    estimators="all",
    N=[6, 2000],
    theta=[0.0, 2.0],
    sigma=[0.7, 1.4],
    reps=9,
    seed=13,
    dim=[1, 3],
)
VARS = ("mean", "var", "var_se", "count", "m2", "m3", "m4", "pair_mean", "pair_m2", "pair_m3", "pair_m4")  # the compared pair's states too


@pytest.mark.parametrize("n", [1, 3, 5])
@pytest.mark.parametrize("crn", [False, True])
def test_merged_shards_equal_single_run(n, crn):
    single = gradsweep.sweep(common_random_numbers=crn, **CFG)
    shards = [gradsweep.sweep(shard=f"{i}/{n}", common_random_numbers=crn, **CFG) for i in reversed(range(n))]
    merged = merge_shards(shards)
    for v in VARS:
        np.testing.assert_array_equal(merged[v].values, single[v].values)
    assert "shard" not in merged.attrs


def test_shard_leaves_other_cells_empty():
    part = gradsweep.sweep(shard="1/4", **CFG)
    filled = int((part["count"].isel(estimator=0, wrt=0) > 0).sum())
    assert 0 < filled < 32 and part.attrs["shard"] == "1/4"
    with pytest.raises(ConfigError, match="merge the shards first"):
        extend(part, 3)


def test_merge_refuses_duplicates_gaps_and_mixed_configs():
    a, b, c = (gradsweep.sweep(shard=f"{i}/3", **CFG) for i in range(3))
    with pytest.raises(ConfigError, match="given twice"):
        merge_shards([a, a, b, c])
    with pytest.raises(ConfigError, match="missing shard"):
        merge_shards([a, c])
    other = gradsweep.sweep(shard="1/3", **{**CFG, "seed": 14})
    with pytest.raises(ConfigError, match="different config"):
        merge_shards([a, other, c])
    with pytest.raises(ConfigError, match="not a shard"):
        merge_shards([a, b, c, gradsweep.sweep(**CFG)])
    with pytest.raises(ConfigError, match="different splits: 0/2, 0/3"):
        merge_shards([a, gradsweep.sweep(shard="0/2", **CFG)])


def test_shard_and_merge_commands(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("objective = 'square'\nN = [10, 100]\ntheta = [0.0, 1.0]\nreps = 5\nseed = 3\n")
    for i in range(2):
        r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(tmp_path / f"s{i}.nc"), "--shard", f"{i}/2"])
        assert r.exit_code == 0, r.output
    r = CliRunner().invoke(main, ["merge", str(tmp_path / "all.nc"), str(tmp_path / "s1.nc"), str(tmp_path / "s0.nc")])
    assert r.exit_code == 0, r.output
    single = gradsweep.sweep(objective="square", N=[10, 100], theta=[0.0, 1.0], reps=5, seed=3)
    np.testing.assert_array_equal(xr.open_dataset(tmp_path / "all.nc")["var"].values, single["var"].values)
    for bad in ("2/2", "x", "1/0"):
        r = CliRunner().invoke(main, ["run", str(cfg), "-o", str(tmp_path / "b.nc"), "--shard", bad])
        assert r.exit_code == 2 and "--shard" in r.stderr and not (tmp_path / "b.nc").exists()
    r = CliRunner().invoke(main, ["merge", str(tmp_path / "m.nc"), str(tmp_path / "s0.nc")])
    assert r.exit_code == 2 and "missing shard(s) 1/2" in r.stderr and not (tmp_path / "m.nc").exists()

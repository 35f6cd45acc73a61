"""The CUDA backend without a GPU: real compilation to PTX, the simulator run, and the refusals.

The kernels themselves are tested in ``tests/cuda`` (run here under the simulator).
"""

import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import simulator_run

import gradsweep
from gradsweep import dataset, gpu
from gradsweep.checkpoint import Checkpoint
from gradsweep.cli import main
from gradsweep.config import Config, ConfigError
from gradsweep.estimators import NAMES
from gradsweep.objectives import Objective, make_objective

ROOT = Path(__file__).resolve().parents[1]


def wavy(x):
    return math.sin(x) * math.exp(-0.1 * x * x)


def dwavy(x):
    return (math.cos(x) - 0.2 * x * math.sin(x)) * math.exp(-0.1 * x * x)


@pytest.mark.parametrize(
    ("spec", "estimators", "coordinates"),
    [
        ("square", ("score", "pathwise"), False),
        ({"name": "quadratic", "k": 2.0}, ("score", "pathwise"), False),
        ({"name": "exp_quadratic", "k": 0.5}, ("score", "pathwise"), False),
        ({"name": "cos", "k": 3.0}, ("score", "pathwise"), False),
        ("user", ("score", "pathwise"), True),
        ({"name": "cos", "k": 3.0}, NAMES, True),
        ("user", ("score_loo", "pathwise_antithetic", "mvd", "mvd_uncoupled"), False),
    ],
    ids=["square", "quadratic", "exp_quadratic", "cos", "user-over-dim", "cos-all-estimators-over-dim", "user-family"],
)
def test_every_kernel_compiles_to_ptx_for_sm_90(spec, estimators, coordinates):
    """numba's typing and lowering and NVVM run for real: any compile error of a real launch shows here
    (``coordinates``: the kernels of a sweep over dim, which sum over the other coordinates)."""
    objective = Objective("wavy", f=wavy, df=dwavy) if spec == "user" else make_objective(spec)
    compare = tuple((estimators[0], e) for e in estimators[1:])  # the default compare = "first": the pairs' outputs too
    texts = gpu.ptx(objective, cc=(9, 0), estimators=estimators, compare=compare, coordinates=coordinates)
    assert sorted(texts) == ["_chunk_sums", "_chunk_sums_per_thread", "_chunk_sums_shared", "_pair_states", "_unit_states"]
    for name, text in texts.items():
        assert ".target sm_90" in text
        assert re.search(rf"\.entry\s+\w*{name}\w*\(", text), name
        # gradsweep's helpers are all inlined; only libdevice's rare slow paths (trig range reduction) remain calls
        callees = set(re.findall(r"\bcall(?:\.uni)?\s+(?:\([^)]*\),\s*)?(\w+)", text))
        assert all(c.startswith("__internal_") for c in callees), (name, callees)
    # the shared kernel is compiled for SHARED_MIN_BLOCKS blocks per SM (see gpu.launch_bounds)
    bounds = {name: re.findall(r"\.(?:maxntid|minnctapersm) [\d, ]+", text) for name, text in texts.items()}
    assert bounds.pop("_chunk_sums_shared") == [f".maxntid {gpu.THREADS}, 1, 1", f".minnctapersm {gpu.SHARED_MIN_BLOCKS}"]
    assert not any(bounds.values()), bounds


def test_the_kernel_suite_passes_under_the_simulator(request):
    """tests/cuda under NUMBA_ENABLE_CUDASIM=1, in its own process (the simulator replaces numba.cuda),
    started in the background when the run was collected (tests/conftest.py)."""
    proc, _ = request.config.stash[simulator_run]
    stdout, stderr = proc.communicate(timeout=1800)
    assert proc.returncode == 0, stdout[-6000:] + stderr[-3000:]
    assert " passed" in stdout and " failed" not in stdout


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(gpu, "unavailable", lambda: "no usable CUDA GPU: CUDA driver library cannot be found.")


def test_cuda_backend_without_a_gpu_exits_2_with_one_line(tmp_path, no_gpu):
    (tmp_path / "s.toml").write_text('N = [10]\nreps = 2\n[objective]\nname = "square"\n')
    r = CliRunner().invoke(main, ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "o.nc"), "--backend", "cuda"])
    assert r.exit_code == 2
    assert r.stderr == "gradsweep: error: --backend cuda: no usable CUDA GPU: CUDA driver library cannot be found.\n"
    assert not (tmp_path / "o.nc").exists()


def test_extend_on_cuda_without_a_gpu_exits_2_and_leaves_the_file(tmp_path, no_gpu):
    path = dataset.write(gradsweep.sweep(N=[10], reps=2), tmp_path / "r.nc")
    before = path.read_bytes()
    r = CliRunner().invoke(main, ["extend", str(path), "--reps", "2", "--backend", "cuda"])
    assert r.exit_code == 2
    assert r.stderr == "gradsweep: error: --backend cuda: no usable CUDA GPU: CUDA driver library cannot be found.\n"
    assert path.read_bytes() == before


@pytest.mark.skipif(gpu.unavailable() is None, reason="a GPU is usable here")
def test_the_reason_is_the_drivers_own_where_there_is_no_gpu():
    reason = gpu.unavailable()
    assert reason.startswith("no usable CUDA GPU: ") and "\n" not in reason
    with pytest.raises(ConfigError, match="--backend cuda: no usable CUDA GPU"):
        gradsweep.sweep(backend="cuda", N=[10], reps=2)


def test_auto_runs_on_the_cpu_without_a_gpu_and_says_so(no_gpu):
    ds = gradsweep.sweep(backend="auto", N=[10], reps=3)
    assert ds.attrs["backend"] == ds.attrs["kernels"] == "cpu"
    np.testing.assert_array_equal(ds["mean"].values, gradsweep.sweep(N=[10], reps=3)["mean"].values)


def test_worker_backend_is_only_for_dask(tmp_path):
    (tmp_path / "s.toml").write_text('N = [10]\nreps = 2\n[objective]\nname = "square"\n')
    r = CliRunner().invoke(main, ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "o.nc"), "--worker-backend", "cuda"])
    assert r.exit_code == 2 and r.stderr == "gradsweep: error: --worker-backend needs --backend dask\n"


def test_a_checkpoint_never_mixes_cpu_and_gpu_sums(tmp_path):
    cfg = Config.from_dict({"N": [10], "reps": 2})
    Checkpoint(tmp_path / "o.nc", cfg, resume=False, kernels="cuda").maybe_save(1, np.zeros((cfg.n_cells, 4, 5)), force=True)
    with pytest.raises(ConfigError, match="different config"):
        Checkpoint(tmp_path / "o.nc", cfg, resume=True, kernels="cpu").check()
    Checkpoint(tmp_path / "o.nc", cfg, resume=True, kernels="cuda").check()


def test_the_kernels_decode_chunk_items_as_the_plan_numbers_them(monkeypatch):
    """gpu._item (plain Python here) against plan.chunk_items, on units of several sizes and grown chunks."""
    from gradsweep import plan

    monkeypatch.setattr(plan, "CHUNK", 8)
    monkeypatch.setattr(plan, "MAX_CHUNKS", 4)
    monkeypatch.setattr(plan, "UNIT_SAMPLES", 200)
    p = plan.make_plan((4, 2, 1), np.array([1, 9, 32, 101]), 7, 11, streams=1)  # every N in chunks
    item_unit, item_rep, item_start, item_stop, offset = plan.chunk_items(p)
    unit_offset, per_rep, size = plan.unit_items(p)
    units = (unit_offset, p.rep0, per_rep, size, p.n)
    decoded = np.array([gpu._item(i, *units) for i in range(item_unit.size)])
    np.testing.assert_array_equal(decoded, np.stack([item_unit, item_rep, item_start, item_stop], axis=1))

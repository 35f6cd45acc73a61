"""The CUDA backend gives the CPU backend's answers, from the same random stream.

Sizes are small: under the simulator every GPU thread is a Python thread.
"""

import math

import numba
import numpy as np
import pytest
from numba import cuda

import gradsweep
from gradsweep import elementary, gpu, philox
from gradsweep.objectives import Objective

STATS = ("mean", "var", "m3", "m4")
#: GPU and CPU add a chunk's terms and merge a unit's replicate estimates in different
#: orders (and may fuse different multiply-adds); every other step is the same code in the same order.
RTOL = 1e-10


def assert_close_to_cpu(got, expected):
    np.testing.assert_array_equal(got["count"].values, expected["count"].values)
    assert ("pair" in got.dims) == ("pair" in expected.dims)
    pairs = ("pair_mean", "pair_m2", "pair_m3", "pair_m4") if "pair" in expected.dims else ()  # compared pairs' sums and differences
    for v in (*STATS, *pairs):
        a, b = got[v].values, expected[v].values
        scale = np.nanmax(np.abs(b))  # m3 of a symmetric estimate is ~0: compare relative to the variable's scale,
        if v.endswith("m3"):  # and |M3| <= M2^1.5 (of two replicates M3 is 0, and rounding is all either backend has)
            scale = max(scale, np.nanmax(expected[v.replace("m3", "m2")].values) ** 1.5)
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale, err_msg=v)


#: The two tests that launch a kernel of their own: one small block on host arrays, as a test harness does.
harness_launch = pytest.mark.filterwarnings(
    "ignore:.*Grid size",  # under 128 blocks (numba's messages start with a terminal escape code)
    "ignore:.*Host array used in CUDA kernel",  # copied to and from the device
)


def _draw(k0, k1, rep, stream, coefficients, pairs, words, z):
    i = cuda.grid(1)
    if i < pairs.size:
        p = np.uint64(pairs[i])
        w0, w1, w2, w3 = philox4x32_10(p & np.uint64(0xFFFFFFFF), p >> np.uint64(32), rep, stream, k0, k1)  # noqa: F821
        words[i, 0] = w0
        words[i, 1] = w1
        words[i, 2] = w2
        words[i, 3] = w3
        z[i, 0], z[i, 1] = normal_pair(k0, k1, p, rep, stream, coefficients)  # noqa: F821


@harness_launch
def test_the_gpu_draws_the_cpu_stream():
    h = gpu.helpers()
    draw = gpu._compile(_draw, cuda=cuda, philox4x32_10=h.philox4x32_10, normal_pair=h.normal_pair)
    seed, rep, stream = 0x1234_5678_9ABC_DEF0, 7, 3
    pairs = np.concatenate([np.arange(24), [2**32 - 1, 2**32, 2**40 + 5, 2**61 + 11]]).astype(np.uint64)
    words = np.zeros((pairs.size, 4), np.uint64)
    z = np.zeros((pairs.size, 2))
    k0, k1 = philox.seed_key(seed)
    draw[1, 32](k0, k1, np.uint64(rep), np.uint64(stream), elementary.COEFFICIENTS, pairs, words, z)
    counters = np.stack([pairs & 0xFFFFFFFF, pairs >> np.uint64(32), np.full_like(pairs, rep), np.full_like(pairs, stream)], axis=1)
    np.testing.assert_array_equal(words, philox.philox_blocks(counters, (int(k0), int(k1))))
    expected = np.stack([np.concatenate([philox.normals(seed, 2, rep=rep, stream=stream, start=2 * int(p)) for p in pairs[:24]])])
    # the same bits in; log/sincos may fuse multiply-adds differently on another target: 4 ulp
    np.testing.assert_array_max_ulp(z[:24].ravel(), expected.ravel(), maxulp=4)
    for j, p in enumerate(pairs[24:], start=24):
        np.testing.assert_array_max_ulp(z[j], philox.normals(seed, 2, rep=rep, stream=stream, start=2 * int(p)), maxulp=4)


CASES = {
    # k swept: each cell's k is its own constant
    "cos over k, odd N, several chunks": dict(
        objective={"name": "cos", "k": [1.1, 2.5]}, N=[7, 200], theta=[0.0, 1.0], sigma=[0.7], reps=3, seed=5
    ),
    "square, common random numbers": dict(
        objective="square", N=[5, 130], theta=[-1.0, 2.0], sigma=[0.5, 1.5], reps=2, seed=9, common_random_numbers=True
    ),
    # under the simulator 8 threads: tiles of 8 cells, the second holding one; passes of 16 samples;
    # the (k, theta) cells of one N share a stream
    "cos, common random numbers over two tiles": dict(
        objective={"name": "cos", "k": [0.8, 1.6, 3.2]},
        N=[7, 150],
        theta=[-1.0, 0.0, 1.5],
        sigma=[1.0],
        reps=2,
        seed=3,
        common_random_numbers=True,
    ),
    # under the simulator more replicates in a unit than threads in a block: runs of 3 reps per thread, one
    # thread idle; N = 1 and 3 in replicate pairs (conftest), 10 pairs over 8 threads; at N = 1 the CPU finishes
    # each replicate's estimates straight from its quantities, the GPU from its sums
    "quadratic, many replicates per unit": dict(objective={"name": "quadratic", "k": 0.5}, N=[1, 3, 20], theta=[0.5], reps=20, seed=1),
    # every estimator (generic sums, non-linear finishes, the measure-valued extra draw); N = 3 runs in
    # replicate pairs (conftest), and under the simulator N = 21 a block, and 21 > 16 ends on a part pass
    "cos, the whole family": dict(
        objective={"name": "cos", "k": 1.1}, estimators="all", N=[3, 21], theta=[0.5], sigma=[0.7], reps=2, seed=5
    ),
    "square, the whole family, common random numbers": dict(
        objective="square", estimators="all", N=[3, 21], theta=[-1.0, 2.0], sigma=[1.5], reps=2, seed=9, common_random_numbers=True
    ),
    # dim swept: the other coordinates' normals drawn per sample (one-cell kernels, replicate pairs at N = 3)
    "cos over dim, the score family": dict(
        objective={"name": "cos", "k": 1.1},
        estimators=["score", "score_mean_baseline", "score_loo", "score_delta", "pathwise", "mvd"],
        N=[3, 21],
        theta=[0.5],
        sigma=[0.7],
        reps=2,
        seed=5,
        dim=[1, 3],
    ),
    # a common-random-numbers group of cells of different dimensions: the shared kernel
    "square over dim, common random numbers": dict(
        objective="square", N=[3, 21], theta=[-1.0, 2.0], sigma=[1.5], reps=2, seed=9, common_random_numbers=True, dim=[2, 4]
    ),
    "exp_quadratic, one estimator and wrt": dict(
        objective={"name": "exp_quadratic", "k": 0.3}, estimators=["pathwise"], wrt=["sigma"], N=[65], sigma=[0.5, 2.0], reps=4
    ),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_cuda_backend_matches_cpu(case, small_chunks):
    cfg = CASES[case]
    got = gradsweep.sweep(backend="cuda", **cfg)
    assert got.attrs["backend"] == got.attrs["kernels"] == "cuda"
    assert got.attrs["device"] == gpu.device_name()
    assert_close_to_cpu(got, gradsweep.sweep(backend="cpu", **cfg))


def test_a_block_loops_over_the_tiles_the_grid_leaves_out(small_chunks, monkeypatch):
    cfg = CASES["cos, common random numbers over two tiles"]
    expected = gradsweep.sweep(backend="cuda", **cfg)
    monkeypatch.setattr(gpu, "MAX_GRID_Y", 1)
    got = gradsweep.sweep(backend="cuda", **cfg)
    for v in ("count", "mean", "m2", "m3", "m4"):
        np.testing.assert_array_equal(got[v].values, expected[v].values)


@pytest.mark.parametrize(("width", "cells"), [(2, 2), (3, 4), (8, 8), (9, 8), (400, 8)])
def test_tiles_are_powers_of_two_up_to_a_block(width, cells):
    assert gpu.tile_cells(width, 8) == cells


def _extra(k0, k1, rep, stream, coefficients, samples, out):
    i = cuda.grid(1)
    if i < samples.size:
        u1, u2, sign, u = extra_draw(k0, k1, np.uint64(samples[i]), rep, stream, coefficients)  # noqa: F821
        out[i, 0] = u1
        out[i, 1] = u2
        out[i, 2] = sign
        out[i, 3] = u


@harness_launch
def test_the_gpu_makes_the_cpu_extra_draw():
    """The measure-valued estimators' per-sample block: the same uniforms and sign, bit for bit."""
    h = gpu.helpers()
    kernel = gpu._compile(_extra, cuda=cuda, extra_draw=h.extra_draw)
    samples = np.array([0, 1, 2, 77, 2**32 + 3, 2**61 + 5], dtype=np.uint64)
    out = np.zeros((samples.size, 4))
    k0, k1 = philox.seed_key(77)
    kernel[1, 8](k0, k1, np.uint64(3), np.uint64(4), elementary.COEFFICIENTS, samples, out)
    cpu = numba.njit(lambda k0, k1, s, rep, stream, c: philox.extra_draw_from(k0, k1, s, rep, stream, c))
    want = [cpu(k0, k1, s, np.uint64(3), np.uint64(4), elementary.COEFFICIENTS) for s in samples]
    np.testing.assert_array_equal(out, np.array(want, dtype=np.float64))


def cube(x):
    return x * x * x


def dcube(x):
    return 3.0 * x * x


def sine(x):
    return math.sin(x)


def d2cube(x):
    return 6.0 * x


def test_user_objective_on_the_gpu(small_chunks):
    cfg = dict(
        objective=Objective("cube", f=cube, df=dcube, d2f=d2cube),
        estimators=["score", "score_delta", "pathwise", "mvd"],
        N=[9, 40],
        theta=[0.5],
        sigma=[0.7],
        reps=3,
        seed=2,
    )
    assert_close_to_cpu(gradsweep.sweep(backend="cuda", **cfg), gradsweep.sweep(**cfg))
    score_only = dict(cfg, objective=Objective("sin", f=sine), estimators=["score"])
    assert_close_to_cpu(gradsweep.sweep(backend="cuda", **score_only), gradsweep.sweep(**score_only))


def test_repeated_gpu_runs_are_bit_identical(small_chunks):
    cfg = CASES["square, common random numbers"]
    a, b = gradsweep.sweep(backend="cuda", **cfg), gradsweep.sweep(backend="cuda", **cfg)
    for v in ("count", "mean", "m2", "m3", "m4"):
        np.testing.assert_array_equal(a[v].values, b[v].values)


def test_dask_places_units_on_gpu_workers_without_changing_the_result(monkeypatch):
    distributed = pytest.importorskip("distributed")
    # the workers are other processes, with gpu's defaults (THREADS, SMALL): so must we be
    monkeypatch.undo()
    cfg = dict(objective="square", N=[6, 9], theta=[0.0, 1.0], sigma=[1.0], reps=2, seed=4)
    expected = gradsweep.sweep(backend="cuda", **cfg)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            got = gradsweep.sweep(backend="dask", worker_backend="cuda", client=client, **cfg)
    assert got.attrs["kernels"] == "cuda"
    for v in ("count", "mean", "m2", "m3", "m4"):
        np.testing.assert_array_equal(got[v].values, expected[v].values)


@pytest.mark.gpu
def test_a_large_sweep_matches_cpu_on_the_device():
    """Full-size chunks, many blocks, replicates of up to 1e6 samples (1.3e8 samples in all)."""
    cfg = dict(objective={"name": "cos", "k": 0.7}, N=[1001, 100_000, 1_000_000], theta=[0.0, 2.0], sigma=[0.5, 1.0], reps=30)
    assert_close_to_cpu(gradsweep.sweep(backend="cuda", **cfg), gradsweep.sweep(**cfg))


def test_command_line_cuda_backend_records_what_ran(tmp_path):
    import xarray as xr
    from click.testing import CliRunner

    from gradsweep.cli import main

    (tmp_path / "s.toml").write_text('N = [6]\ntheta = [0.0, 1.0]\nreps = 2\n[objective]\nname = "square"\n')
    r = CliRunner().invoke(main, ["run", str(tmp_path / "s.toml"), "-o", str(tmp_path / "o.nc"), "--backend", "cuda"])
    assert r.exit_code == 0, r.output
    with xr.open_dataset(tmp_path / "o.nc") as ds:
        assert (ds.attrs["backend"], ds.attrs["kernels"], ds.attrs["device"]) == ("cuda", "cuda", gpu.device_name())


def test_a_cpu_result_extended_on_the_gpu(small_chunks):
    from gradsweep.extend import extend

    # N = 3 in replicate pairs: the extension starts inside a pair (replicate 3 is the second of pair 1)
    cfg = dict(objective={"name": "exp_quadratic", "k": 0.3}, N=[3, 70], theta=[0.5], sigma=[1.0, 2.0], seed=8)
    got = extend(gradsweep.sweep(reps=3, **cfg), 4, backend="cuda")
    assert_close_to_cpu(got, gradsweep.sweep(reps=7, **cfg))
    assert (got.attrs["backend"], got.attrs["kernels"], got.attrs["device"]) == ("cpu+cuda", "cpu+cuda", gpu.device_name())

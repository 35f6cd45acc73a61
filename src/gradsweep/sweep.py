"""Run a sweep: plan the units, compute them on a backend, merge in order."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping

import numba
import numpy as np
import xarray as xr

from . import stops, truth
from .backends import kernels_for, outputs_of, resolve_backend, units_function
from .config import Config, ConfigError, parse_shard
from .dataset import build_dataset
from .estimators import CONSTANTS
from .estimators.base import DIM
from .plan import Plan, make_plan
from .welford import empty, fold


@contextlib.contextmanager
def numba_threads(threads: int | None):
    """Run the enclosed code with ``threads`` numba threads (None: all)."""
    if threads is None:
        yield numba.get_num_threads()
        return
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= limit:
        raise ConfigError(f"threads must be an integer from 1 to {limit} (NUMBA_NUM_THREADS), got {threads!r}")
    before = numba.get_num_threads()
    numba.set_num_threads(int(threads))
    try:
        yield int(threads)
    finally:
        numba.set_num_threads(before)


def cell_constants(config: Config) -> np.ndarray:
    """Each cell's constants row (:data:`gradsweep.estimators.CONSTANTS`), cells in C order over (N, dim, k, theta, sigma)."""
    c = np.stack([truth.cell_constants(config.objective.at(k), config.theta, config.sigma, config.estimators) for k in config.k])
    c = np.repeat(c[None], config.dim.size, axis=0)
    c[..., DIM] = config.dim.reshape(-1, 1, 1, 1)
    return np.broadcast_to(c[None], (config.N.size, *c.shape)).reshape(-1, c.shape[-1]).copy()  # a copy: a view of one N is read-only


def memory_needed(config: Config) -> int:
    """Bytes a sweep of ``config`` holds at least, whatever its batches: per cell and output its Welford
    state and the dataset's variables (17 doubles in all), per cell its constants and a unit of the plan."""
    return config.n_cells * (config.n_outputs * 17 * 8 + len(CONSTANTS) * 8 + 5 * 8)


def check_memory(config: Config) -> None:
    """Refuse up front a grid whose state cannot fit in this machine's memory."""
    need = memory_needed(config)
    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: no check
        return
    if need > have:
        raise ConfigError(
            f"the grid's {config.n_cells:,} cells need about {need / 2**30:.3g} GiB of memory, more than this machine's "
            f"{have / 2**30:.3g} GiB; use fewer cells, or shards on machines of their own"
        )


def config_plan(config: Config, rep_start: int = 0, reps: int | None = None) -> Plan:
    reps = config.reps if reps is None else reps
    return make_plan(config.grid_shape, config.N, rep_start, reps, config.common_random_numbers, config.streams)


def progress_bar(total: int, enabled: bool | None):
    """A tqdm bar in samples (rate and ETA); on only when stderr is a terminal unless forced."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, unit="sample", unit_scale=True, disable=not enabled, dynamic_ncols=True, leave=False)


def compute_state(
    config: Config,
    *,
    rep_start: int = 0,
    reps: int | None = None,
    threads=None,
    progress=None,
    shard=None,
    checkpoint=None,
    client=None,
    kernels: str = "cpu",
) -> np.ndarray:
    """Welford states (cells x terms x 5) of replicates ``rep_start .. rep_start+reps-1``.

    ``kernels`` is "cpu" or "cuda" (:mod:`gradsweep.gpu`); with a dask
    ``client`` it says what the workers run.

    With ``shard = (i, n)`` only the stream groups ``g % n == i`` are computed;
    the other cells stay empty. With a :class:`gradsweep.checkpoint.Checkpoint`,
    progress is saved as it goes and a saved run is continued. With a dask
    ``client`` the batches run on its cluster (:mod:`gradsweep.distributed`).
    """
    check_memory(config)
    cells = cell_constants(config)
    plan = config_plan(config, rep_start, reps)
    if shard is not None:
        plan = plan.take(plan.stream % shard[1] == shard[0])
    if client is not None:
        from .distributed import compute_state_dask

        with progress_bar(plan.total(plan.samples), progress) as bar:
            return compute_state_dask(client, config, plan, cells, bar=bar, checkpoint=checkpoint, kernels=kernels)
    compute_units, limits = units_function(kernels)
    state = empty((config.n_cells, config.n_outputs))
    done = 0
    if checkpoint is not None:
        done, state = checkpoint.start(state, plan.size)
    with numba_threads(threads), stops.watching(), progress_bar(plan.total(plan.samples), progress) as bar:
        bar.update(plan.total(plan.samples[:done]))
        first = True
        for batch in plan.batches(*limits):
            if batch.stop <= done:
                continue
            part = plan.take(batch)
            if first:  # the first batch computed (after a resume too) compiles or loads the kernels
                bar.set_description_str("compiling or loading kernels")
            states = compute_units(config.objective, config.seed, outputs_of(config), cells, part)
            if first:
                bar.set_description_str("")
                first = False
            fold(state, part.cells(), states.reshape(-1, config.n_outputs, 5))
            bar.update(part.total(part.samples))
            if checkpoint is not None:
                checkpoint.maybe_save(batch.stop, state)
            stops.check()
    if checkpoint is not None:
        checkpoint.finish(done, plan.size, state)
    return state


def sweep(
    config: Config | Mapping | None = None,
    *,
    threads: int | None = None,
    progress: bool | None = False,
    backend: str = "cpu",
    shard: str | None = None,
    checkpoint=None,
    scheduler: str | None = None,
    client=None,
    worker_backend: str = "cpu",
    **kwargs,
) -> xr.Dataset:
    """Run a sweep and return its labelled dataset.

    Parameters
    ----------
    config : Config or mapping, optional
        The configuration; any config key may instead be given as a keyword
        (``objective``, ``estimators``, ``wrt``, ``N``, ``theta``, ``sigma``,
        ``reps``, ``seed``). Keywords override the mapping.
    threads : int, optional
        numba threads (default: all). Results do not depend on it.
    progress : bool or None
        Show a progress bar; None shows it when stderr is a terminal.
    backend : {"cpu", "cuda", "auto", "dask"}
        Where the kernels run: this process's CPU cores, its GPU
        (:mod:`gradsweep.gpu`), the GPU when one is usable and else the CPU,
        or a dask.distributed cluster (``client``, else the one at
        ``scheduler``, else a new LocalCluster).
    worker_backend : {"cpu", "cuda"}
        With ``backend="dask"``: the kernels the workers run (one GPU per worker for cuda).
    shard : str, optional
        ``"i/n"``: compute only shard i of n (see :mod:`gradsweep.shards`).
    checkpoint : gradsweep.checkpoint.Checkpoint, optional
        Save progress as it goes, and continue a saved run.

    Returns
    -------
    xarray.Dataset
        Dimensions (N, theta, sigma, estimator, wrt); see :mod:`gradsweep.dataset`.
    """
    if isinstance(config, Config):
        if kwargs:
            config = config.replace(**kwargs)
    else:
        config = Config.from_dict(config, **kwargs)
    backend = resolve_backend(backend)
    kernels = kernels_for(backend, worker_backend)
    part = parse_shard(shard)
    if backend == "dask":
        from .distributed import client_for

        with contextlib.nullcontext(client) if client is not None else client_for(scheduler) as c:
            state = compute_state(config, progress=progress, shard=part, checkpoint=checkpoint, client=c, kernels=kernels)
    else:
        state = compute_state(config, threads=threads, progress=progress, shard=part, checkpoint=checkpoint, kernels=kernels)
    device = None
    if backend == "cuda":  # with dask, the GPUs are the workers'
        from . import gpu

        device = gpu.device_name()
    ds = build_dataset(config, state, backend=backend, kernels=kernels, device=device, threads=threads or numba.get_num_threads())
    if part is not None:
        ds.attrs["shard"] = f"{part[0]}/{part[1]}"
    return ds


def estimate(config: Config, *, threads: int | None = None, kernels: str = "cpu") -> dict:
    """Describe the work of ``config`` and estimate its run time from a short calibration.

    The calibration runs the same objective, grid width and stream sharing with
    N capped at 65536 and about 4e6 samples (2e9 on a GPU), after a warm-up
    that compiles (or loads) the kernels. Returns a dict of counts, the
    measured rate and the estimate.
    """
    import math
    import time

    check_memory(config)
    plan = config_plan(config)
    per_n = config.n_cells // config.N.size
    n_cal = int(min(config.N.max(), 1 << 16))
    target = (1 << 31) if kernels == "cuda" else (1 << 22)
    reps_cal = max(2, math.ceil(target / (n_cal * per_n)))
    cal = config.replace(N=[n_cal], reps=reps_cal)
    start = time.perf_counter()
    warm = cal.replace(reps=2)
    compute_state(warm, threads=threads, kernels=kernels)
    ready = time.perf_counter() - start
    start = time.perf_counter()
    compute_state(cal, threads=threads, kernels=kernels)
    rate = cal.total_samples / (time.perf_counter() - start)
    return {
        "cells": config.n_cells,
        "samples": config.total_samples,
        "draws": plan.total(plan.draws),
        "units": plan.size,
        "memory": memory_needed(config),
        "batches": len(plan.batches(*units_function(kernels)[1])),
        "kernels": kernels,
        "threads": threads or numba.get_num_threads(),
        "kernels_ready_s": ready,
        "rate": rate,
        "estimate_s": config.total_samples / rate,
    }

"""Shards: one n-th of a sweep per job, merged into a file identical to a single run.

For batch systems without a dask cluster (a SLURM job array, say). Shard
``i/n`` computes the stream groups ``g`` with ``g % n == i`` — whole groups,
so every cell's state is computed exactly as in a single run — and leaves the
other cells empty (count 0). :func:`merge_shards` checks that the shards
come from one config and together cover it once, then places each cell's
state: the result is bit-identical to running the sweep in one go.
"""

from __future__ import annotations

import numba
import numpy as np
import xarray as xr

from . import welford
from .config import ConfigError, parse_shard
from .dataset import build_dataset, config_of, state_of, verify


def merge_shards(shards: list[xr.Dataset]) -> xr.Dataset:
    """One result from the complete set of shards of a sweep (``gradsweep.merge``).

    Parameters
    ----------
    shards : list of xarray.Dataset
        Every shard ``i/n`` of one config, once each, in any order.

    Returns
    -------
    xarray.Dataset
        The result, bit-identical to running the sweep in one go.

    Raises
    ------
    gradsweep.ConfigError
        If a shard is missing, given twice, edited, or from another config or split.
    """
    if not shards:
        raise ConfigError("no shards to merge")
    seen: dict[int, int] = {}
    for k, ds in enumerate(shards):
        if "shard" not in ds.attrs:
            raise ConfigError(f"input {k + 1} is not a shard (no shard attribute)")
        verify(ds)
        i, n = parse_shard(ds.attrs["shard"])
        if ds.attrs.get("config") != shards[0].attrs.get("config"):
            raise ConfigError(f"shard {i}/{n} comes from a different config than shard {shards[0].attrs['shard']}")
        if n != parse_shard(shards[0].attrs["shard"])[1]:
            raise ConfigError(f"shards of different splits: {', '.join(sorted(str(ds.attrs.get('shard')) for ds in shards))}")
        if i in seen:
            raise ConfigError(f"shard {i}/{n} given twice")
        seen[i] = k
    missing = sorted(set(range(n)) - set(seen))
    if missing:
        raise ConfigError(f"missing shard(s) {', '.join(f'{i}/{n}' for i in missing)}")
    config = config_of(shards[0], allow_shard=True)
    state = state_of(shards[0])
    for ds in shards[1:]:
        state = welford.merged(state, state_of(ds))  # disjoint cells: an exact placement
    if np.any(state[..., 0] != config.reps):
        raise ConfigError("shards do not cover every cell once")
    history = "\n".join(ds.attrs.get("history", "") for ds in shards)
    first = shards[0].attrs
    backend = str(first.get("backend", "cpu"))
    return build_dataset(
        config,
        state,
        backend=backend,
        kernels=str(first.get("kernels", backend)),
        device=first.get("device"),
        threads=numba.get_num_threads(),
        history=history,
    )

"""Merge more replicates into an existing result.

A result file records its config (with ``reps``, the number of replicates
it holds, drawn with replicate indices ``0 .. reps-1``) and its Welford state.
Extending draws replicates ``reps .. reps + R - 1`` — fresh stream positions,
never an index used before — and merges their state into the file's with the
same merge as everywhere else. The result equals a run made with all the
replicates at once, up to the order of floating-point additions.

The new replicates may run on other kernels than the file's (``backend``);
the attributes ``backend``, ``kernels`` and ``device`` then name both, in the
order they ran ("cpu+cuda").
"""

from __future__ import annotations

import numba
import xarray as xr

from . import welford
from .backends import resolve_backend
from .config import ConfigError
from .dataset import build_dataset, config_of, state_of
from .sweep import compute_state


def _joined(before: str | None, now: str) -> str:
    """An attribute naming what computed a result: ``before``'s names, then ``now`` if it is new."""
    names = before.split("+") if before else []
    return "+".join(names if now in names else [*names, now])


def extend(
    ds: xr.Dataset,
    reps: int,
    *,
    threads: int | None = None,
    progress: bool | None = False,
    backend: str = "cpu",
    checkpoint=None,
) -> xr.Dataset:
    """``ds`` with more replicates merged in, as a new dataset (``gradsweep.extend``).

    Parameters
    ----------
    ds : xarray.Dataset
        A complete gradsweep result (not a shard) of a built-in objective.
    reps : int
        Replicates to add: indices ``config.reps .. config.reps + reps - 1``, never drawn before.
    threads : int, optional
        numba threads (default: all). Results do not depend on it.
    progress : bool or None
        Show a progress bar; None shows it when stderr is a terminal.
    backend : {"cpu", "cuda", "auto"}
        Where the new replicates are computed.
    checkpoint : gradsweep.checkpoint.Checkpoint, optional
        Save the new replicates' progress as it goes, and continue a saved extend.

    Returns
    -------
    xarray.Dataset
        Equal to one run with all the replicates, up to the order of floating-point additions
        (1e-12); compared pairs' states are extended too.
    """
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise ConfigError(f"--reps must be an integer >= 1, got {reps!r}")
    if backend == "dask":
        raise ConfigError("extend runs on this machine: --backend cpu, cuda or auto")
    config = config_of(ds)
    if config.reps + reps >= 2**32:
        raise ConfigError("a result can hold at most 2**32 - 1 replicates")
    kernels = resolve_backend(backend)
    state = compute_state(
        config, rep_start=config.reps, reps=reps, threads=threads, progress=progress, kernels=kernels, checkpoint=checkpoint
    )
    merged = welford.merged(state_of(ds), state)
    extended = config.replace(reps=config.reps + reps)
    before = ds.attrs.get("backend", "cpu")
    device = ds.attrs.get("device")
    if kernels == "cuda":
        from . import gpu

        device = _joined(device, gpu.device_name())
    return build_dataset(
        extended,
        merged,
        backend=_joined(before, kernels),
        kernels=_joined(ds.attrs.get("kernels", before), kernels),
        device=device,
        threads=threads or numba.get_num_threads(),
        history=ds.attrs.get("history", ""),
    )

"""The dask backend: the same work units, computed on a dask.distributed cluster.

Each batch of units (the same batches the CPU backend runs) is one dask task
that returns the units' Welford states; the driver merges them in plan order
as soon as an unbroken prefix has arrived, so the result is bit-identical to
``--backend cpu`` for any number of workers, checkpoints work the same way,
and a task lost with a dead worker is simply recomputed by dask (the
recomputation gives the same bits).

Size workers so that numba and dask do not fight: one numba thread pool per
worker process, i.e. ``threads_per_worker=1`` (``--nthreads 1``) and let numba
use the cores given to the process (``NUMBA_NUM_THREADS``).
"""

from __future__ import annotations

import contextlib

import numpy as np

from .backends import outputs_of, units_function
from .config import Config, ConfigError
from .welford import empty, fold

INSTALL_HINT = "the dask backend needs dask.distributed: pip install '.[dask]' in a gradsweep checkout"


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return distributed


@contextlib.contextmanager
def client_for(scheduler: str | None):
    """A client of the cluster at ``scheduler``, or of a new LocalCluster on this machine."""
    distributed = _import_distributed()
    if scheduler:
        try:
            client = distributed.Client(scheduler, timeout="20s")
        except OSError as e:
            raise ConfigError(f"cannot reach the dask scheduler at {scheduler}: {e}") from None
        with client:
            yield client
        return
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster) as client:
        yield client


def _batch_task(kernels, objective, seed, outputs, cell_const, part):
    return units_function(kernels)[0](objective, seed, outputs, cell_const, part)


def compute_state_dask(client, config: Config, plan, cells, *, bar, checkpoint=None, kernels="cpu") -> np.ndarray:
    """Run ``plan``'s batches on ``client``; merge in plan order (bit-identical to the CPU backend).

    With ``kernels="cuda"`` each task runs the GPU kernels of the worker it
    lands on (one GPU per worker); the result is then bit-identical to
    ``--backend cuda``.
    """
    distributed = _import_distributed()
    state = empty((config.n_cells, config.n_outputs))
    done = 0
    if checkpoint is not None:
        done, state = checkpoint.start(state, plan.size)
    bar.update(plan.total(plan.samples[:done]))
    batches = [b for b in plan.batches(*units_function(kernels)[1]) if b.stop > done]
    parts = [plan.take(b) for b in batches]
    # the constants travel inside each task (cells x 9 numbers): scattered data lives only on the
    # workers, and a task whose scattered input died with its worker could not be rerun
    cell_const = cells
    futures = {
        client.submit(
            _batch_task,
            kernels,
            config.objective,
            config.seed,
            outputs_of(config),
            cell_const,
            part,
            pure=False,
            key=f"gradsweep-batch-{b.start}-{b.stop}-{id(plan)}",
        ): k
        for k, (b, part) in enumerate(zip(batches, parts, strict=True))
    }
    arrived: dict[int, np.ndarray] = {}
    next_k = 0
    for future in distributed.as_completed(futures):
        k = futures[future]
        arrived[k] = future.result()
        bar.update(parts[k].total(parts[k].samples))
        future.release()
        while next_k in arrived:
            fold(state, parts[next_k].cells(), arrived.pop(next_k).reshape(-1, config.n_outputs, 5))
            if checkpoint is not None:
                checkpoint.maybe_save(batches[next_k].stop, state)
            next_k += 1
    if checkpoint is not None:
        checkpoint.finish(done, plan.size, state)
    return state

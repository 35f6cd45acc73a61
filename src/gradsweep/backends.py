"""Which kernels compute the work units: the backends' names, how they are decided, and their entry points.

The drivers (:mod:`gradsweep.sweep`, :mod:`gradsweep.distributed`, :mod:`gradsweep.extend`)
read this module; it imports the CPU kernels and, only when asked for, the GPU ones.
"""

from __future__ import annotations

from . import cpu
from .config import Config, ConfigError

BACKENDS = ("auto", "cpu", "cuda", "dask")
#: What computes the work units: this process's CPU kernels, or its GPU's.
KERNELS = ("cpu", "cuda")


def resolve_backend(backend: str) -> str:
    """``backend`` with ``auto`` decided (cuda where a GPU is usable, else cpu); refuses an unusable cuda."""
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend in ("auto", "cuda"):
        from . import gpu

        reason = gpu.unavailable()
        if backend == "auto":  # never the simulator: it is for tests, and very slow
            return "cuda" if reason is None and not gpu.simulator() else "cpu"
        if reason is not None:
            raise ConfigError(f"--backend cuda: {reason}")
    return backend


def kernels_for(backend: str, worker_backend: str = "cpu") -> str:
    """The kernels a resolved ``backend`` runs: its own, or with dask the workers' (``worker_backend``)."""
    if worker_backend not in KERNELS:
        raise ConfigError(f"unknown worker backend {worker_backend!r}; choose from {', '.join(KERNELS)}")
    return worker_backend if backend == "dask" else backend


def units_function(kernels: str):
    """``compute_units(objective, seed, outputs, cell_const, plan)`` and the batch limits for ``kernels``."""
    if kernels == "cuda":
        from . import gpu

        return gpu.compute_units, (gpu.BATCH_SAMPLES, gpu.BATCH_ITEMS)
    if kernels == "cpu":
        return cpu.compute_units, (None, None)
    raise ConfigError(f"unknown kernels {kernels!r}; choose from {', '.join(KERNELS)}")


def outputs_of(config: Config) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...], bool]:
    """What the kernels compute: (estimators, wrt, compared pairs, whether any cell has more than one
    dimension), the arguments of :func:`gradsweep.estimators.layout`."""
    return tuple(config.estimators), tuple(config.wrt), tuple(config.compare), bool(config.dim.max() > 1)

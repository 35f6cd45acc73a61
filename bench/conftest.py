import platform

import numba
import numpy as np
import pytest

import gradsweep

#: Rates measured in this run, so later benchmarks can report ratios to earlier ones.
RATES: dict[str, float] = {}


@pytest.fixture
def record(benchmark):
    """Store samples/s, threads and versions in the benchmark's extra_info."""

    def _record(name: str, samples: int, **extra):
        rate = samples / benchmark.stats.stats.min
        RATES[name] = rate
        benchmark.extra_info.update(
            samples=samples,
            samples_per_s=rate,
            threads=numba.get_num_threads(),
            machine=platform.machine(),
            gradsweep=gradsweep.__version__,
            numba=numba.__version__,
            numpy=np.__version__,
            **extra,
        )
        return rate

    return _record

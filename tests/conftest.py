import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from gradsweep import gpu

SIMULATOR_TEST = "test_the_kernel_suite_passes_under_the_simulator"
#: The CUDA kernel suite under the simulator, started in the background (see pytest_collection_finish).
simulator_run = pytest.StashKey[tuple]()


def pytest_collection_finish(session):
    """Start tests/cuda under the simulator as soon as a run that includes it is collected.

    The simulator is one busy Python thread for minutes, and most of the suite is single-threaded
    numba compiles: on two cores the two overlap. It gets a numba cache of its own, so the two
    processes never compile into one cache at once (numba issues 4807 and 10128).
    """
    if not any(item.name == SIMULATOR_TEST for item in session.items):
        return
    cache = tempfile.TemporaryDirectory(prefix="gradsweep-simulator-cache-")
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "NUMBA_CACHE_DIR": cache.name}
    env.pop("GRADSWEEP_KERNEL_DIR", None)
    root = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(root / "tests" / "cuda")]
    proc = subprocess.Popen(args, env=env, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    session.config.stash[simulator_run] = (proc, cache)


def pytest_unconfigure(config):
    proc, cache = config.stash.get(simulator_run, (None, None))
    if proc is not None and proc.poll() is None:  # the run was cut short
        proc.kill()
        proc.communicate()
    if cache is not None:
        cache.cleanup()


# Without a GPU the CUDA kernel tests run under numba's simulator, in their own
# process (tests/test_gpu.py); with one, they run here on the device.
collect_ignore = ["cuda"] if not gpu.simulator() and gpu.unavailable() is not None else []


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261123)

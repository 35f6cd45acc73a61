import numpy as np
import pytest

from gradsweep import gpu

# Without a GPU the CUDA kernel tests run under numba's simulator, in their own
# process (tests/test_gpu.py); with one, they run here on the device.
collect_ignore = ["cuda"] if not gpu.simulator() and gpu.unavailable() is not None else []


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261123)

"""The CUDA kernel tests run on a real GPU, or under numba's simulator (NUMBA_ENABLE_CUDASIM=1).

``tests/test_gpu.py`` runs this folder under the simulator in every test run;
on a machine with a GPU, ``pytest tests/cuda`` runs it on the device.
"""

import pytest

from gradsweep import gpu, philox, plan


def pytest_collection_modifyitems(config, items):
    reason = gpu.unavailable()
    for item in items:
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=reason))
        elif "gpu" in item.keywords and gpu.simulator():
            item.add_marker(pytest.mark.skip(reason="needs a real GPU; this run is under the CUDA simulator"))


@pytest.fixture
def small_chunks(monkeypatch):
    """Replicates of a few hundred samples span several chunks."""
    monkeypatch.setattr(plan, "CHUNK", 64)


@pytest.fixture(autouse=True)
def simulator_threads(monkeypatch):
    """Fewer threads per block under the simulator, where every thread is a Python thread.

    Items of up to 16 samples then get a thread each and longer ones a block, so with
    ``small_chunks`` the cases below run both one-cell kernels.
    """
    if gpu.simulator():
        monkeypatch.setattr(gpu, "THREADS", 8)
        monkeypatch.setattr(gpu, "SMALL", 2)


@pytest.fixture(autouse=True)
def paired_up_to_4(monkeypatch):
    """Replicates of up to 4 samples are drawn in replicate pairs (pair_states), longer ones in chunks,
    so the cases below run both paths on both backends."""
    monkeypatch.setattr(philox, "PAIRED_N", 4)

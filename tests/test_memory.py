"""Memory does not grow with the number of samples."""

import subprocess
import sys
from pathlib import Path

import pytest

PEAK_RSS = Path(__file__).with_name("peak_rss.py")


@pytest.mark.parametrize(("n", "reps"), [(10**8, 10), (1, 10**9)], ids=["N = 1e8, 10 replicates", "N = 1, 1e9 replicates"])
def test_billion_sample_sweep_stays_under_300_mb(n, reps):
    """No array of replicate estimates either: a billion replicates of one sample take no more memory.

    The kernel is compiled (or loaded) in a process of its own first: LLVM keeps what a compile
    used, which is not the sweep's memory (a cold compile in the measured process added ~70 MB)."""
    warm = f"import gradsweep; gradsweep.sweep(N=[{min(n, 10**4)}], reps=4)"
    subprocess.run([sys.executable, "-c", warm], capture_output=True, text=True, check=True)
    r = subprocess.run([sys.executable, PEAK_RSS, str(n), str(reps)], capture_output=True, text=True, check=True)
    base, peak = map(float, r.stdout.split())
    assert peak < 300, f"peak RSS {peak:.0f} MB"
    assert peak - base < 32, f"grew by {peak - base:.0f} MB over {base:.0f} MB"

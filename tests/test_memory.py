"""Memory does not grow with the number of samples."""

import subprocess
import sys
from pathlib import Path

PEAK_RSS = Path(__file__).with_name("peak_rss.py")


def test_billion_sample_sweep_stays_under_300_mb():
    r = subprocess.run([sys.executable, PEAK_RSS, str(10**8), "10"], capture_output=True, text=True, check=True)
    base, peak = map(float, r.stdout.split())
    assert peak < 300, f"peak RSS {peak:.0f} MB"
    assert peak - base < 32, f"grew by {peak - base:.0f} MB over {base:.0f} MB"

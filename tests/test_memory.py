"""Memory does not grow with the number of samples."""

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import gradsweep

    def hwm_mb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    gradsweep.sweep(N=[10**4], reps=4)           # compile / load kernels
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak to the current size
        fh.write("5")
    base = hwm_mb()
    gradsweep.sweep(N=[10**8], reps=10)          # 1e9 samples
    print(base, hwm_mb())
    """
)


def test_billion_sample_sweep_stays_under_300_mb():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True)
    base, peak = map(float, r.stdout.split())
    assert peak < 300, f"peak RSS {peak:.0f} MB"
    assert peak - base < 32, f"grew by {peak - base:.0f} MB over {base:.0f} MB"

"""Print a sweep's resident memory in MB, before and at its peak: ``python peak_rss.py N REPS``.

Run as a fresh process, so that nothing else the caller holds counts (Linux: VmHWM).
"""

import sys

import gradsweep


def hwm_mb() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) / 1024 for line in fh if line.startswith("VmHWM:"))


if __name__ == "__main__":
    n, reps = map(int, sys.argv[1:3])
    gradsweep.sweep(N=[min(n, 10**4)], reps=4)  # compile or load the kernel it uses first
    with open("/proc/self/clear_refs", "w") as fh:  # the peak restarts from the current size
        fh.write("5")
    base = hwm_mb()
    gradsweep.sweep(N=[n], reps=reps)
    print(base, hwm_mb())

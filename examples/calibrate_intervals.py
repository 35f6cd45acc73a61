"""Measure how often the 95% intervals of gradsweep.analysis cover the exact values; write results/CALIBRATION.md.

Run from the repository root: ``make calibration`` (or ``python examples/calibrate_intervals.py [SEEDS]``).
Every (cell, seed) is an independent trial; each setting runs SEEDS seeds (default 1000) of a 2 x 2
(theta, sigma) grid, so each rate below is over 4 x SEEDS trials.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from pathlib import Path

from gradsweep import Config, __version__
from gradsweep.calibration import coverage

GRID = dict(theta=[1.0, 2.0], sigma=[0.5, 1.0])
FAMILY = ["score", "pathwise", "score_loo"]
SETTINGS = [
    ("cos(x), k = 1", {"name": "cos", "k": 1.0}, 10, 500, FAMILY),
    ("cos(x), k = 1", {"name": "cos", "k": 1.0}, 10, 300, FAMILY),
    ("cos(x), k = 1", {"name": "cos", "k": 1.0}, 1, 500, FAMILY[:2]),
    ("x^2", "square", 100, 300, FAMILY),
    ("x^2", "square", 10, 500, FAMILY),
    ("x^2", "square", 10, 3000, FAMILY),
    ("x^2", "square", 1, 500, FAMILY[:2]),
]


def main(seeds: int) -> str:
    rows, columns = [], None
    start = time.perf_counter()
    for label, objective, n, reps, estimators in SETTINGS:
        cfg = Config.from_dict(objective=objective, estimators=estimators, N=[n], reps=reps, **GRID)
        found = coverage(cfg, range(seeds), progress=None)
        if columns is None:
            columns = [f"{c.what} d/d{c.wrt}" for c in found]
        rates = {f"{c.what} d/d{c.wrt}": c for c in found}
        cells = [f"{rates[k].rate:.3f}" if k in rates else "" for k in columns]
        lowest = min(c.rate for c in found)
        rows.append(f"| {label} | {n} | {reps} | **{lowest:.3f}** | " + " | ".join(cells) + " |")
        corr = {f"{c.what} d/d{c.wrt}": c.correlation for c in found if "/" in c.what}
        print(label, n, reps, " ".join(cells), {k: round(v, 2) for k, v in corr.items()}, file=sys.stderr)
        if label.startswith("cos") and n == 10 and reps == 500:
            correlations = corr
    trials = 4 * seeds
    se = math.sqrt(0.95 * 0.05 / trials)
    header = "| objective | N | replicates | lowest | " + " | ".join(columns) + " |"
    rule = "|" + "---|" * (4 + len(columns))
    corr_text = ", ".join(f"{k}: {v:.2f}" for k, v in correlations.items())
    return f"""# Calibration of the intervals

How often the nominal 95% intervals of `gradsweep.analysis` cover the exact value: the interval on
each estimator's variance (`variance_interval`) and on the ratio of two estimators' variances
(`variance_ratio`, which accounts for the correlation of two variance estimates made from the same
random numbers). Each setting runs {seeds} seeds of a 2 x 2 grid (theta in 1, 2; sigma in 0.5, 1), so
each rate is over {trials} independent trials: its binomial standard error at 95% is {se:.4f}.

Command: `make calibration` (`python examples/calibrate_intervals.py {seeds}`), gradsweep
{__version__}, Python {platform.python_version()}; {time.perf_counter() - start:.0f} s on {_cpu()}
(the rates do not depend on the machine: every run is bit-reproducible).

{header}
{rule}
{chr(10).join(rows)}

Correlation across seeds of the two variance estimates (cos, N = 10, 500 replicates, mean over
cells): {corr_text}. An interval that treated them as independent would be too wide for these
positively correlated pairs (it covers score/score_loo in more than 99% of runs:
`tests/test_analysis.py`, which also checks the first row's setting over 400 seeds).

## What this shows

- Where the replicate estimates' tails are moderate (the bounded objective cos(x), or N = 100), the
  intervals hold their level with a few hundred replicates, for both pairs and every single variance.
- Where they are heavy (the score function's d/dsigma of x^2 is a fourth-degree polynomial in the
  normal sample; at N = 1 nothing averages it), the intervals undercover. A variance's interval
  needs its fourth moment, whose own estimate is too low in exactly the runs that missed the rare
  large values; the file records moments up to the fourth only, so no interval built from it can
  know better. Coverage climbs towards the level with more replicates or a larger N (an average of
  N samples has 1/N of the excess kurtosis): compare the x^2 rows at 500 and 3000 replicates. For a
  heavy-tailed estimator at small N read the intervals as optimistic, and extend the run
  (`gradsweep extend`) until they settle.
"""


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


if __name__ == "__main__":
    text = main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
    Path("results/CALIBRATION.md").write_text(text)
    print("wrote results/CALIBRATION.md", file=sys.stderr)

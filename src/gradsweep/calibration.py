"""How often the intervals of :mod:`gradsweep.analysis` cover the exact values: run a config once per
seed and count, per interval and wrt, the cells whose interval holds the exact variance or ratio.

Cells of one run draw independent streams (unless ``common_random_numbers``), and so do runs of
different seeds, so every (cell, seed) of one interval and wrt is an independent trial.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import xarray as xr

from .analysis import variance_interval, variance_ratio
from .config import Config, ConfigError


@dataclass(frozen=True)
class Coverage:
    """``covered`` of ``trials`` intervals held the exact value: for the variance of ``what`` (an estimator)
    or the ratio ``what`` ("a/b"), with respect to ``wrt``."""

    what: str
    wrt: str
    covered: int
    trials: int
    #: for a ratio: the correlation, across seeds, of the two variance estimates (averaged over the cells)
    correlation: float = math.nan

    @property
    def rate(self) -> float:
        return self.covered / self.trials


def coverage(config: Config, seeds: Iterable[int], level: float = 0.95, progress: bool | None = False) -> list[Coverage]:
    """The coverage of every variance interval and of the ratio interval of every compared pair of
    ``config``, over one run per seed. Cells without an exact value (user objectives) are refused."""
    from .sweep import progress_bar, sweep

    if config.common_random_numbers:
        raise ConfigError("coverage needs independent cells: common_random_numbers = false")
    seeds = list(seeds)
    runs = []
    with progress_bar(len(seeds), progress) as bar:
        for seed in seeds:
            ds = sweep(config.replace(seed=int(seed)))
            runs.append(ds[[v for v in ("count", "var", "var_se", "m4", "pair_m2", "pair_m4", "exact_var") if v in ds]])
            bar.update(1)
    ds = xr.concat(runs, dim="seed")  # the intervals of every run at once: xarray's cost is per call, not per cell
    exact = ds["exact_var"]
    if not np.isfinite(exact.values).all():
        raise ConfigError("coverage needs exact variances in every cell (a built-in objective)")
    single = variance_interval(ds, level)
    checks = [(str(e), single.sel(estimator=e), exact.sel(estimator=e)) for e in config.estimators]
    for a, b in config.compare:
        checks.append((f"{a}/{b}", variance_ratio(ds, a, b, level), exact.sel(estimator=a) / exact.sel(estimator=b)))
    found = []
    for what, interval, truth in checks:
        held = (interval["lower"] <= truth) & (truth <= interval["upper"])
        for w in config.wrt:
            corr = math.nan
            if "/" in what:
                a, b = (ds["var"].sel(estimator=e, wrt=w) for e in what.split("/"))
                corr = float(xr.corr(a, b, dim="seed").mean())
            found.append(Coverage(what, w, int(held.sel(wrt=w).sum()), int(held.sel(wrt=w).size), corr))
    return found

"""``ds.gradsweep``: the analysis and figures of a result as an xarray accessor, registered when gradsweep is imported."""

from __future__ import annotations

import xarray as xr

from . import report
from .analysis import efficiency, select, variance_interval, variance_ratio
from .config import ConfigError


@xr.register_dataset_accessor("gradsweep")
class GradsweepAccessor:
    """``ds.gradsweep``: intervals, comparisons and figures of a gradsweep result."""

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    def variance_interval(self, level: float = 0.95) -> xr.Dataset:
        """See :func:`gradsweep.analysis.variance_interval`."""
        return variance_interval(self._ds, level)

    def variance_ratio(self, a: str, b: str, level: float = 0.95) -> xr.Dataset:
        """See :func:`gradsweep.analysis.variance_ratio`."""
        return variance_ratio(self._ds, a, b, level)

    def efficiency(self, reference: str | None = None, level: float = 0.95) -> xr.Dataset:
        """See :func:`gradsweep.analysis.efficiency`."""
        return efficiency(self._ds, reference, level)

    def sel(self, **at) -> xr.Dataset:
        """Exact selection by value: see :func:`gradsweep.analysis.select`."""
        return select(self._ds, **at)

    def plot(self, kind: str = "variance", ax=None, **options):
        """A figure of the result into ``ax`` (a new figure if None); returns the matplotlib Figure.

        ``kind="variance"``: variance against ``x="N"`` or ``"k"`` (``wrt=`` picks the panel, ``cost=True``
        normalises by cost); ``kind="ratio"``: a heatmap of var[a] / var[b] over (theta, sigma), log colours.
        See :func:`gradsweep.report.variance_axes` and :func:`gradsweep.report.ratio_axes` for the options.
        """
        if kind == "variance":
            return report.variance_axes(self._ds, ax=ax, **options)
        if kind == "ratio":
            return report.ratio_axes(self._ds, ax=ax, **options)
        raise ConfigError(f'plot kind must be "variance" or "ratio", got {kind!r}')

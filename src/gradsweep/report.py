"""Readable summaries and plots of a result dataset (needs no numba)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .config import ConfigError
from .dataset import dims_in


def table(ds: xr.Dataset, max_rows: int | None = 200) -> str:
    """A text table: one row per cell, estimates beside the exact values."""
    df = ds[["mean", "mean_se", "true_grad", "var", "var_se", "exact_var"]].to_dataframe()
    df = df.reorder_levels(list(dims_in(ds))).sort_index(level=["N"], sort_remaining=False)
    df["var/exact"] = df["var"] / df["exact_var"]
    shown = df if max_rows is None or len(df) <= max_rows else df.head(max_rows)
    with np.errstate(invalid="ignore"):
        text = shown.to_string(float_format=lambda v: f"{v:.5g}")
    if len(shown) < len(df):
        text += f"\n... {len(df) - len(shown)} more rows (use --max-rows 0 for all)"
    return text


def header(ds: xr.Dataset) -> str:
    attrs = ds.attrs
    cfg = json.loads(attrs.get("config", "{}"))
    lines = [
        attrs.get("title", "gradsweep result"),
        f"replicates: {attrs.get('replicates', '?')}   seed: {attrs.get('seed', '?')}   backend: {attrs.get('backend', '?')}"
        f"   estimators: {', '.join(cfg.get('estimators', []))}   wrt: {', '.join(cfg.get('wrt', []))}",
        "grid: " + " x ".join(f"{ds.sizes[d]} {d}" for d in ("N", "k", "theta", "sigma") if d in ds.dims),
    ]
    return "\n".join(lines)


def summary(ds: xr.Dataset, max_rows: int | None = 200) -> str:
    return f"{header(ds)}\n\n{table(ds, max_rows)}"


#: The axes a plot can put along x, with their labels.
X_AXES = {"N": "N (samples per estimate)", "k": "k (parameter of the objective)"}


def _is_log_grid(values: np.ndarray) -> bool:
    """Whether ``values`` are positive and evenly spaced in log: a log grid."""
    if values.size < 3 or np.any(values <= 0):
        return False
    steps = np.diff(np.log(values))
    return bool(np.allclose(steps, steps[0], rtol=1e-6))


def plot(ds: xr.Dataset, path, *, x: str = "N", dpi: int = 120, **at):
    """Variance of the N-sample estimate against ``x`` ("N" or "k"), one panel per wrt, one colour per estimator.

    Points are the simulated variances with 95% intervals (var +- 1.96 var_se); lines the exact
    variances; a variance that is zero up to rounding (below 1e-12 of the panel's largest) is
    left out. Every other grid dimension is held at the value given in ``at`` (``theta=1.0``,
    ``N=1``, ...; the nearest in the file) or else at its first value. The y axis is log; the x
    axis is log for N and for a k log grid.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if x not in X_AXES or x not in ds.dims:
        raise ConfigError(f"cannot plot against {x!r}: the file's grid axes are {', '.join(d for d in X_AXES if d in ds.dims)}")
    held = [d for d in ("N", "k", "theta", "sigma") if d in ds.dims and d != x]
    unknown = set(at) - set(held) - {x}
    if unknown:
        raise ConfigError(f"cannot hold {', '.join(sorted(unknown))}: not a grid axis of this plot ({', '.join(held)})")
    bad = {d: v for d, v in at.items() if v is not None and not np.isfinite(v)}
    if bad:
        raise ConfigError(f"{', '.join(bad)}: give a finite value to show, got {', '.join(str(v) for v in bad.values())}")
    if not np.isfinite(ds["var"].values).any():
        raise ConfigError("nothing to plot: every variance in the file is NaN")
    ds = ds.sortby([d for d in ("N", "k", "theta", "sigma") if d in ds.dims])  # a config may list a grid unsorted
    chosen = {d: ds[d].values[0] if at.get(d) is None else at[d] for d in held}
    sel = ds.sel(chosen, method="nearest")
    xs = sel[x].values
    wrts = list(sel.wrt.values)
    fig, axes = plt.subplots(1, len(wrts), figsize=(4.6 * len(wrts) + 1.8, 4.2), squeeze=False, layout="constrained")
    for ax, wrt in zip(axes[0], wrts, strict=True):
        panel = sel.sel(wrt=wrt)
        # a variance that is zero (up to rounding) has no place on a log axis: it is left out
        zero = 1e-12 * float(np.nanmax(np.abs(panel["var"].values))) if np.isfinite(panel["var"].values).any() else 0.0
        for i, est in enumerate(sel.estimator.values):
            cell = panel.sel(estimator=est)
            var, half = cell["var"].values, 1.96 * cell["var_se"].values
            var = np.where(var > zero, var, np.nan)
            lower = np.minimum(half, var * (1 - 1e-3))  # a log axis cannot show an interval reaching 0
            ax.errorbar(xs, var, yerr=[lower, half], fmt="o", ms=3.5, color=f"C{i}", capsize=2, label=f"{est}")
            exact = cell["exact_var"].values
            if np.isfinite(exact).any():
                ax.plot(xs, np.where(exact > zero, exact, np.nan), "-", lw=1.2, color=f"C{i}")
        if x == "N" or _is_log_grid(xs):
            _log_x(ax, xs)
        ax.set_yscale("log")
        ax.set_xlabel(X_AXES[x])
        ax.set_ylabel("variance of the estimate")
        ax.set_title(rf"$\partial/\partial\{wrt}$   " + ", ".join(f"{_math(d)}={float(sel[d]):g}" for d in held))
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", fontsize="small", title="points: simulated (95%)\nlines: exact")
    fig.suptitle(ds.attrs.get("title", ""), fontsize="medium")
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def _log_x(ax, xs: np.ndarray) -> None:
    """A log x axis; over less than three decades, ticks at 1, 2 and 5 times powers of ten, as plain numbers."""
    from matplotlib import ticker

    ax.set_xscale("log")
    if xs.max() / xs.min() < 1e3:
        ax.xaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _math(dim: str) -> str:
    return {"theta": r"$\theta$", "sigma": r"$\sigma$"}.get(dim, dim)

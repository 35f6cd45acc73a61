"""Readable summaries and plots of a result dataset (needs no numba)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .dataset import DIMS


def table(ds: xr.Dataset, max_rows: int | None = 200) -> str:
    """A text table: one row per cell, estimates beside the exact values."""
    df = ds[["mean", "mean_se", "true_grad", "var", "var_se", "exact_var"]].to_dataframe()
    df = df.reorder_levels(list(DIMS)).sort_index(level=["N"], sort_remaining=False)
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
        f"grid: {ds.sizes['N']} N x {ds.sizes['theta']} theta x {ds.sizes['sigma']} sigma",
    ]
    return "\n".join(lines)


def summary(ds: xr.Dataset, max_rows: int | None = 200) -> str:
    return f"{header(ds)}\n\n{table(ds, max_rows)}"


def plot(ds: xr.Dataset, path, *, theta: float | None = None, sigma: float | None = None, dpi: int = 120):
    """Variance of the N-sample estimate against N (log-log), one panel per wrt.

    Points are the simulated variances with one-standard-error bars; dashed
    lines are the exact variances. With several theta or sigma values, the
    nearest to ``theta`` / ``sigma`` is shown (default: the first).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sel = ds.sel(
        theta=ds.theta.values[0] if theta is None else theta,
        sigma=ds.sigma.values[0] if sigma is None else sigma,
        method="nearest",
    )
    wrts = list(sel.wrt.values)
    fig, axes = plt.subplots(1, len(wrts), figsize=(5.2 * len(wrts), 4.2), squeeze=False, sharey=False)
    n = sel.N.values
    for ax, wrt in zip(axes[0], wrts, strict=True):
        for i, est in enumerate(sel.estimator.values):
            cell = sel.sel(wrt=wrt, estimator=est)
            color = f"C{i}"
            ax.errorbar(n, cell["var"], yerr=cell["var_se"], fmt="o", color=color, capsize=3, label=f"{est} (simulated)")
            if np.isfinite(cell["exact_var"]).any():
                ax.plot(n, cell["exact_var"], "--", color=color, label=f"{est} (exact)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("N (samples per estimate)")
        ax.set_ylabel("variance of the estimate")
        ax.set_title(f"d/d{wrt}   theta={float(sel.theta):g}, sigma={float(sel.sigma):g}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(ds.attrs.get("title", ""), fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path

"""Readable summaries and plots of a result dataset (needs no numba)."""

from __future__ import annotations

import json

import numpy as np
import xarray as xr

from .analysis import ratios_to, select, variance_interval, variance_ratio
from .config import ConfigError
from .dataset import GRID_AXES, dims_in


def frame(ds: xr.Dataset, reference: str | None = None, level: float = 0.95):
    """A pandas DataFrame, one row per (grid cell, estimator, wrt): the estimates beside the exact values,
    the variance's ``level`` interval, and with ``reference`` the ratio var / var[reference] with its
    interval (:func:`gradsweep.analysis.variance_ratio`)."""
    interval = variance_interval(ds, level)
    columns = ds[["mean", "mean_se", "true_grad", "var"]].assign(var_lower=interval["lower"], var_upper=interval["upper"])
    columns = columns.assign(exact_var=ds["exact_var"], ratio_to_exact=ds["var"] / ds["exact_var"])
    if reference is not None:
        ratios = ratios_to(ds, reference, level)
        columns = columns.assign(ratio=ratios["ratio"], ratio_lower=ratios["lower"], ratio_upper=ratios["upper"])
    df = columns.drop_vars([c for c in columns.coords if c not in columns.dims]).to_dataframe()
    return df.reorder_levels(list(dims_in(ds))).sort_index(level=["N"], sort_remaining=False)


def table(
    ds: xr.Dataset, max_rows: int | None = 200, *, reference: str | None = None, level: float = 0.95, width: int | None = None
) -> str:
    """A text table of :func:`frame` (at most ``max_rows`` rows, wrapped at ``width`` columns)."""
    df = frame(ds, reference, level)
    shown = df if max_rows is None or len(df) <= max_rows else df.head(max_rows)
    with np.errstate(invalid="ignore"):
        text = shown.to_string(float_format=lambda v: f"{v:.5g}", line_width=width)
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
        "grid: " + " x ".join(f"{ds.sizes[d]} {d}" for d in GRID_AXES if d in ds.dims),
    ]
    return "\n".join(lines)


def summary(ds: xr.Dataset, max_rows: int | None = 200, **options) -> str:
    """:func:`header` and :func:`table` (``options``: its keywords)."""
    return f"{header(ds)}\n\n{table(ds, max_rows, **options)}"


#: The axes a plot can put along x, with their labels.
X_AXES = {"N": "N (samples per estimate)", "dim": "dim (coordinates of x)", "k": "k (parameter of the objective)"}


def _is_log_grid(values: np.ndarray) -> bool:
    """Whether ``values`` are positive and evenly spaced in log: a log grid."""
    if values.size < 3 or np.any(values <= 0):
        return False
    steps = np.diff(np.log(values))
    return bool(np.allclose(steps, steps[0], rtol=1e-6))


def _pyplot(files_only: bool = False):
    """matplotlib.pyplot; ``files_only`` (writing files, as the CLI does) selects the Agg backend, which needs no display."""
    import matplotlib

    if files_only:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _held(ds: xr.Dataset, free: tuple[str, ...], at: dict) -> tuple[xr.Dataset, list[str]]:
    """``ds`` with every grid axis not in ``free`` held at the value ``at`` gives it (exactly; see
    :func:`gradsweep.analysis.select`) or else at its first value; and the held axes."""
    held = [d for d in GRID_AXES if d in ds.dims and d not in free]
    unknown = set(at) - set(held) - set(free) - {"wrt"}
    if unknown:
        raise ConfigError(f"cannot hold {', '.join(sorted(unknown))}: not a grid axis of this plot ({', '.join(held)})")
    bad = {d: v for d, v in at.items() if d != "wrt" and v is not None and not np.isfinite(v)}
    if bad:
        raise ConfigError(f"{', '.join(bad)}: give a finite value to show, got {', '.join(str(v) for v in bad.values())}")
    ds = ds.sortby([d for d in GRID_AXES if d in ds.dims])  # a config may list a grid unsorted
    chosen = {d: ds[d].values[0] if at.get(d) is None else at[d] for d in held}
    return select(ds, **chosen), held


def _wrts(ds: xr.Dataset, wrt, ax) -> list[str]:
    have = [str(w) for w in ds["wrt"].values]
    if wrt is None:
        if ax is not None and len(have) > 1:
            raise ConfigError(f"one axes shows one wrt: pass wrt= one of {', '.join(have)}")
        return have
    wanted = [wrt] if isinstance(wrt, str) else list(wrt)
    for w in wanted:
        if w not in have:
            raise ConfigError(f"wrt {w!r} is not in this file (it has {', '.join(have)})")
    return wanted


def _axes(ax, panels: int):
    """(figure, list of axes): ``ax`` and its figure, or a new figure with one axes per panel."""
    if ax is not None:
        return ax.figure, [ax]
    fig, axes = _pyplot().subplots(1, panels, figsize=(4.6 * panels + 1.8, 4.2), squeeze=False, layout="constrained")
    return fig, list(axes[0])


def variance_axes(ds: xr.Dataset, ax=None, *, x: str = "N", wrt=None, cost: bool = False, level: float = 0.95, **at):
    """Variance of the N-sample estimate against ``x`` ("N", "dim" or "k"), one colour per estimator; returns the figure.

    Points are the simulated variances with their ``level`` intervals
    (:func:`gradsweep.analysis.variance_interval`); lines the exact variances; a variance that is zero up
    to rounding (below 1e-12 of the panel's largest) is left out. With ``cost`` both are multiplied by
    the estimator's cost (evaluations per sample): the variance of an estimate that costs one
    evaluation. Every other grid axis is held at the value given in ``at`` (``theta=1.0``, ``N=1``,
    ...; a value the file does not hold is an error naming the nearest) or else at its first value.
    Into ``ax`` (one ``wrt``), or a new figure with a panel per wrt and one legend. Log y; log x for N
    and dim, and for a k log grid.
    """
    if x not in X_AXES or x not in ds.dims:
        raise ConfigError(f"cannot plot against {x!r}: the file's grid axes are {', '.join(d for d in X_AXES if d in ds.dims)}")
    if not np.isfinite(ds["var"].values).any():
        raise ConfigError("nothing to plot: every variance in the file is NaN")
    sel, held = _held(ds, (x,), at)
    wrts = _wrts(sel, wrt, ax)
    fig, axes = _axes(ax, len(wrts))
    intervals = variance_interval(sel, level)
    scale = _cost(sel) if cost else 1.0
    xs = sel[x].values
    for axis, w in zip(axes, wrts, strict=True):
        panel = (intervals.sel(wrt=w) * scale).assign(exact=sel["exact_var"].sel(wrt=w) * scale)
        finite = np.isfinite(panel["var"].values)
        zero = 1e-12 * float(np.nanmax(np.abs(panel["var"].values))) if finite.any() else 0.0
        for i, est in enumerate(sel.estimator.values):
            cell = panel.sel(estimator=est)
            var = np.where(cell["var"].values > zero, cell["var"].values, np.nan)
            lower = np.nan_to_num(var - cell["lower"].values)
            upper = np.nan_to_num(cell["upper"].values - var)
            axis.errorbar(xs, var, yerr=[lower, upper], fmt="o", ms=3.5, color=f"C{i}", capsize=2, label=f"{est}")
            exact = cell["exact"].values
            if np.isfinite(exact).any():
                axis.plot(xs, np.where(exact > zero, exact, np.nan), "-", lw=1.2, color=f"C{i}")
        if x in ("N", "dim") or _is_log_grid(xs):
            _log_scale(axis, xs)
        axis.set_yscale("log")
        axis.set_xlabel(X_AXES[x])
        axis.set_ylabel("variance x cost" if cost else "variance of the estimate")
        axis.set_title(rf"$\partial/\partial\{w}$   " + ", ".join(f"{_math(d)}={float(sel[d]):g}" for d in held))
        axis.grid(True, which="both", alpha=0.3)
    if ax is None:
        handles, labels = axes[0].get_legend_handles_labels()
        title = f"points: simulated ({level:.0%})\nlines: exact"
        fig.legend(handles, labels, loc="outside right center", fontsize="small", title=title)
        fig.suptitle(ds.attrs.get("title", ""), fontsize="medium")
    else:
        ax.legend(fontsize="small")
    return fig


def ratio_axes(ds: xr.Dataset, ax=None, *, a: str, b: str, wrt=None, cost: bool = False, level: float = 0.95, **at):
    """A heatmap of var[a] / var[b] over (theta, sigma), on a log colour scale centred at 1; returns the figure.

    With ``cost`` the ratio of work-normalised variances (var x cost). A cell whose ``level`` interval
    (:func:`gradsweep.analysis.variance_ratio`) contains 1 is marked with a dot: there the data cannot
    tell the two apart. N and k are held as in :func:`variance_axes` (first value by default).
    """
    from matplotlib.colors import LogNorm

    sel, held = _held(ds, ("theta", "sigma"), at)
    wrts = _wrts(sel, wrt, ax)
    fig, axes = _axes(ax, len(wrts))
    r = variance_ratio(sel, a, b, level)
    if cost:
        r = r * (float(_cost(sel).sel(estimator=a)) / float(_cost(sel).sel(estimator=b)))
    values = r["ratio"].where((r["ratio"] > 0) & np.isfinite(r["ratio"]))  # a zero variance has no place on a log scale
    if not np.isfinite(values.values).any():
        raise ConfigError(f"nothing to plot: no cell has a positive variance for both {a} and {b}")
    spread = float(np.nanmax(np.abs(np.log10(values.values))))
    norm = LogNorm(vmin=10 ** -max(spread, 0.1), vmax=10 ** max(spread, 0.1))
    theta, sigma = sel["theta"].values, sel["sigma"].values
    for axis, w in zip(axes, wrts, strict=True):
        panel = values.sel(wrt=w).transpose("sigma", "theta")
        mesh = axis.pcolormesh(_edges(theta), _edges(sigma), panel.values, norm=norm, cmap="RdBu_r")
        unsure = ((r["lower"] <= 1) & (r["upper"] >= 1)).sel(wrt=w).transpose("sigma", "theta").values
        ys, xs = np.nonzero(unsure)
        axis.plot(theta[xs], sigma[ys], ".", color="0.2", ms=3)
        for which, values_ in (("x", theta), ("y", sigma)):
            if _is_log_grid(values_):
                _log_scale(axis, values_, which)
        axis.set_xlabel(r"$\theta$")
        axis.set_ylabel(r"$\sigma$")
        axis.set_title(rf"$\partial/\partial\{w}$   " + ", ".join(f"{_math(d)}={float(sel[d]):g}" for d in held))
    what = f"(var x cost)[{a}] / (var x cost)[{b}]" if cost else f"var[{a}] / var[{b}]"
    fig.colorbar(mesh, ax=axes, label=what + f"\n(dots: {level:.0%} interval contains 1)")
    return fig


def _cost(ds: xr.Dataset) -> xr.DataArray:
    if "cost" not in ds:
        raise ConfigError("this file has no cost (it was written before the estimator family): plot it without --cost")
    return ds["cost"].astype(np.float64)


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around grid ``values`` (midpoints; geometric for a log grid) for pcolormesh."""
    if values.size == 1:
        return np.array([values[0] - 0.5, values[0] + 0.5]) if values[0] <= 0 else values[0] * np.array([0.8, 1.25])
    v = np.log(values) if _is_log_grid(values) else values
    mid = (v[1:] + v[:-1]) / 2
    edges = np.concatenate([[2 * v[0] - mid[0]], mid, [2 * v[-1] - mid[-1]]])
    return np.exp(edges) if _is_log_grid(values) else edges


def plot(ds: xr.Dataset, path, *, x: str = "N", dpi: int = 120, ratio: tuple[str, str] | None = None, cost: bool = False, **at):
    """Write a figure of a result to a file (``gradsweep.plot``).

    Parameters
    ----------
    ds : xarray.Dataset
        A gradsweep result.
    path : str or pathlib.Path
        The image file; its suffix picks the format (.png, .pdf, .svg).
    x : {"N", "k"}
        What goes along the x axis of a variance figure (:func:`variance_axes`).
    dpi : int
        Resolution of a PNG.
    ratio : (str, str), optional
        Instead, the heatmap of var[a] / var[b] over (theta, sigma) (:func:`ratio_axes`).
    cost : bool
        Multiply each variance by its estimator's cost.
    **at
        Values of the other grid axes to hold (``theta=1.0``, ``N=10``; exact), else their first.
    """
    plt = _pyplot(files_only=True)
    if ratio is not None:
        fig = ratio_axes(ds, a=ratio[0], b=ratio[1], cost=cost, **at)
    else:
        fig = variance_axes(ds, x=x, cost=cost, **at)
    try:
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
    return path


def _log_scale(ax, values: np.ndarray, axis: str = "x") -> None:
    """A log scale on ``axis``; over less than three decades, ticks at 1, 2 and 5 times powers of ten, as plain numbers."""
    from matplotlib import ticker

    getattr(ax, f"set_{axis}scale")("log")
    if values.max() / values.min() < 1e3:
        which = getattr(ax, f"{axis}axis")
        which.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        which.set_major_formatter(ticker.FormatStrFormatter("%g"))
        which.set_minor_formatter(ticker.NullFormatter())


def _math(dim: str) -> str:
    return {"theta": r"$\theta$", "sigma": r"$\sigma$"}.get(dim, dim)

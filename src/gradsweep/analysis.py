"""Intervals on variances, on ratios of two estimators' variances, and on efficiencies (needs no numba).

A variance estimate s^2 of n replicates has, to first order in 1/n,

    Var(s^2) = (mu4 - (n - 3) / (n - 1) sigma^4) / n,

and two estimators measured on the same random numbers (every estimator of a cell is)
have correlated variance estimates:

    Cov(s_a^2, s_b^2) = (mu22 - sigma_a^2 sigma_b^2) / n + 2 sigma_ab^2 / (n (n - 1)),

with mu22 = E[(a - Ea)^2 (b - Eb)^2] and sigma_ab the covariance. A file records, for each
compared pair (config key ``compare``), the Welford states of the replicate estimates' sum
U = a + b and difference V = a - b; they merge like every other state (extend, shards, dask,
resume), and give the joint moments exactly:

    sigma_ab = (Var U - Var V) / 4,    sum (da^2 db^2) = (M4(U) + M4(V) - 2 M4(a) - 2 M4(b)) / 12,

since (da + db)^4 + (da - db)^4 = 2 da^4 + 12 da^2 db^2 + 2 db^4. Intervals are taken on the
log scale (a variance and a ratio are positive, and their sampling distributions are skewed)
by the delta method: log s^2 +- z se(s^2) / s^2, and log(s_a^2 / s_b^2) +- z sqrt(V) with

    V = Var(s_a^2) / s_a^4 + Var(s_b^2) / s_b^4 - 2 Cov(s_a^2, s_b^2) / (s_a^2 s_b^2).

How well the nominal level holds is measured, not assumed: ``tests/test_analysis.py`` and
``results/CALIBRATION.md``.
"""

from __future__ import annotations

from statistics import NormalDist

import numpy as np
import xarray as xr

from .config import ConfigError


def _z(level: float) -> float:
    if not isinstance(level, (int, float)) or isinstance(level, bool) or not 0.0 < level < 1.0:
        raise ConfigError(f"level must be a number between 0 and 1 (0.95 for 95%), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _estimators(ds: xr.Dataset, *names: str) -> None:
    have = [str(e) for e in ds["estimator"].values]
    for name in names:
        if name not in have:
            raise ConfigError(f"estimator {name!r} is not in this file (it has {', '.join(have)})")


def _moments(ds: xr.Dataset, name: str) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """n, s^2 and the estimated Var(s^2) (the file's ``var_se`` squared) of estimator ``name``."""
    e = ds.sel(estimator=name, drop=True)
    return e["count"].astype(np.float64), e["var"], e["var_se"] ** 2


def _interval(center: xr.DataArray, log_se: xr.DataArray, z: float) -> tuple[xr.DataArray, xr.DataArray]:
    """exp(log center +- z log_se); NaN where the center is not positive or the spread unknown."""
    ok = (center > 0) & np.isfinite(log_se)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lower = (center * np.exp(-z * log_se)).where(ok)
        upper = (center * np.exp(z * log_se)).where(ok)
    return lower, upper


def variance_interval(ds: xr.Dataset, level: float = 0.95) -> xr.Dataset:
    """The interval on every estimator's variance.

    Parameters
    ----------
    ds : xarray.Dataset
        A gradsweep result.
    level : float
        Nominal coverage, between 0 and 1.

    Returns
    -------
    xarray.Dataset
        ``var``, ``lower`` and ``upper`` over the result's dimensions; NaN bounds where a variance
        is not positive or has fewer than two replicates. Method: the module docstring.
    """
    z = _z(level)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_se = ds["var_se"] / ds["var"]  # var_se: the standard error of var, from the fourth moment (welford.finish)
    lower, upper = _interval(ds["var"], log_se, z)
    return _result({"var": ds["var"], "lower": lower, "upper": upper}, level, "variance of the N-sample estimate")


def _pair(ds: xr.Dataset, a: str, b: str) -> xr.Dataset:
    """The recorded sum and difference states of estimators a and b (either order)."""
    for label in (f"{a}/{b}", f"{b}/{a}"):
        if "pair" in ds.dims and label in ds["pair"].values:
            return ds[["pair_m2", "pair_m4"]].sel(pair=label, drop=True)
    recorded = ", ".join(map(str, ds["pair"].values)) if "pair" in ds.dims else "none"
    raise ConfigError(
        f"this file has no joint record of {a} and {b} (compared pairs: {recorded}); rerun with "
        f'compare = [["{a}", "{b}"]] (or "all") in the config to get an interval for their ratio'
    )


def _log_ratio_variance(ds: xr.Dataset, a: str, b: str) -> tuple[xr.DataArray, xr.DataArray]:
    """s_a^2 / s_b^2 and the delta-method variance of its log (module docstring)."""
    n, sa, var_sa = _moments(ds, a)
    _, sb, var_sb = _moments(ds, b)
    pair = _pair(ds, a, b)
    ea, eb = ds.sel(estimator=a, drop=True), ds.sel(estimator=b, drop=True)
    u, v = pair.sel(combination="sum", drop=True), pair.sel(combination="difference", drop=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (u["pair_m2"] - v["pair_m2"]) / (4.0 * (n - 1.0))
        mu22 = (u["pair_m4"] + v["pair_m4"] - 2.0 * ea["m4"] - 2.0 * eb["m4"]) / (12.0 * n)
        cov_s2 = (mu22 - sa * sb) / n + 2.0 * cov**2 / (n * (n - 1.0))
        ratio = sa / sb
        log_var = var_sa / sa**2 + var_sb / sb**2 - 2.0 * cov_s2 / (sa * sb)
    return ratio, log_var.clip(min=0.0).where(n >= 2)


def variance_ratio(ds: xr.Dataset, a: str, b: str, level: float = 0.95) -> xr.Dataset:
    """var[a] / var[b] with an interval that accounts for the correlation of the two variance estimates.

    Parameters
    ----------
    ds : xarray.Dataset
        A gradsweep result that recorded the pair (config ``compare``; either order).
    a, b : str
        Estimator names.
    level : float
        Nominal coverage, between 0 and 1.

    Returns
    -------
    xarray.Dataset
        ``ratio``, ``lower`` and ``upper`` over (N, [k,] theta, sigma, wrt).

    Raises
    ------
    gradsweep.ConfigError
        If an estimator is not in the file, or the pair was not recorded (the message says how to record it).
    """
    _estimators(ds, a, b)
    z = _z(level)
    if a == b:
        one = xr.ones_like(ds["var"].sel(estimator=a, drop=True))
        return _result({"ratio": one, "lower": one, "upper": one}, level, f"var[{a}] / var[{b}]")
    ratio, log_var = _log_ratio_variance(ds, a, b)
    lower, upper = _interval(ratio, np.sqrt(log_var), z)
    return _result({"ratio": ratio, "lower": lower, "upper": upper}, level, f"var[{a}] / var[{b}]")


def ratios_to(ds: xr.Dataset, reference: str, level: float = 0.95) -> xr.Dataset:
    """:func:`variance_ratio` of every estimator to ``reference`` (var / var[reference]), over ``estimator`` too."""
    _estimators(ds, reference)
    for e in ds["estimator"].values:
        if e != reference:
            _pair(ds, reference, str(e))  # refuses, naming the pair to record, before any work
    return xr.concat([variance_ratio(ds, str(e), reference, level) for e in ds["estimator"].values], dim=ds["estimator"])


def efficiency(ds: xr.Dataset, reference: str | None = None, level: float = 0.95) -> xr.Dataset:
    """The work-normalised variance, and the efficiency relative to a reference estimator.

    Parameters
    ----------
    ds : xarray.Dataset
        A gradsweep result.
    reference : str, optional
        An estimator every other one was compared with (config ``compare``; ``"first"`` records the first).
    level : float
        Nominal coverage, between 0 and 1.

    Returns
    -------
    xarray.Dataset
        ``work_variance`` = var x cost (the variance of an estimate that costs one evaluation of f or f')
        with ``lower`` and ``upper``; with ``reference`` also ``relative`` = (var x cost)[reference] /
        (var x cost)[estimator] (above 1: the estimator does more per evaluation), ``relative_lower``
        and ``relative_upper``.
    """
    if "cost" not in ds:
        raise ConfigError("this file has no cost (it was written before the estimator family)")
    cost = ds["cost"].astype(np.float64)
    single = variance_interval(ds, level)
    out = {"work_variance": single["var"] * cost, "lower": single["lower"] * cost, "upper": single["upper"] * cost}
    if reference is not None:
        both = ratios_to(ds, reference, level)  # var / var[reference]: its inverse, lower and upper swapped
        scale = float(ds["cost"].sel(estimator=reference)) / cost
        out |= {"relative": scale / both["ratio"], "relative_lower": scale / both["upper"], "relative_upper": scale / both["lower"]}
    return _result(out, level, "variance x cost per sample")


def _result(variables: dict, level: float, what: str) -> xr.Dataset:
    out = xr.Dataset(variables)
    for name in ("lower", "upper", "relative_lower", "relative_upper"):
        if name in out:
            out[name].attrs["long_name"] = f"{name.replace('_', ' ')} bound of the {level:.0%} interval ({what})"
    out.attrs = {"level": level, "method": "delta method on the log scale; see gradsweep.analysis"}
    return out


def select(ds: xr.Dataset, **at) -> xr.Dataset:
    """``ds`` at coordinate values, exactly.

    Parameters
    ----------
    ds : xarray.Dataset
        A gradsweep result.
    **at
        A value or a list of values per dimension (``theta=1.0``, ``N=[10, 100]``, ``estimator="score"``);
        None selects everything. Numbers match to a relative 1e-9, so a value as ``show`` prints it
        selects its cell.

    Raises
    ------
    gradsweep.ConfigError
        For a value the file does not hold (naming the nearest ones) or a dimension it does not have.
    """
    chosen = {}
    for dim, value in at.items():
        if value is None:
            continue
        if dim not in ds.dims:
            raise ConfigError(f"this file has no {dim} axis (its axes: {', '.join(map(str, ds.dims))})")
        have = ds[dim].values
        wanted = list(value) if isinstance(value, (list, tuple, np.ndarray)) else [value]
        picked = []
        for w in wanted:
            if have.dtype.kind in "fi":
                hit = np.flatnonzero(np.isclose(have.astype(np.float64), float(w), rtol=1e-9, atol=0.0))
                if hit.size == 0:
                    values = np.sort(have.astype(np.float64))
                    i = int(np.searchsorted(values, float(w)))
                    nearest = " and ".join(f"{v:g}" for v in values[max(i - 1, 0) : i + 1])
                    verb = "are" if " and " in nearest else "is"
                    raise ConfigError(f"{dim} = {float(w):g} is not in the file; the nearest {verb} {nearest}")
                picked.append(have[hit[0]])
            else:
                if str(w) not in have:
                    raise ConfigError(f"{dim} {w!r} is not in the file (it has {', '.join(map(str, have))})")
                picked.append(str(w))
        chosen[dim] = picked if isinstance(value, (list, tuple, np.ndarray)) else picked[0]
    return ds.sel(chosen)

"""The result as a labelled, self-describing xarray Dataset, and its file.

Dimensions ``N``, ``theta``, ``sigma``, ``estimator``, ``wrt``, and ``k`` (after
``N``) where the objective's parameter is swept. Variables:

* ``mean``, ``var`` — mean and unbiased variance, across replicates, of the
  N-sample estimate; ``mean_se``, ``var_se`` — their standard errors;
* ``count`` — N-sample estimates (replicates) in each cell;
* ``true_grad`` ([k,] theta, sigma, wrt), ``exact_mean`` and ``exact_var`` — the exact
  gradient, and the exact mean and variance of the N-sample estimate (NaN where
  no exact value exists; the mean differs from the gradient only for biased
  estimators);
* ``cost`` (estimator) — evaluations of f or f' per sample;
* ``m2``, ``m3``, ``m4`` — the rest of the Welford state (sums of powers of
  deviations from ``mean``), so more replicates can be merged in later;
* ``pair_mean``, ``pair_m2``, ``pair_m3``, ``pair_m4`` (..., ``pair``, ``combination``, wrt) —
  where the config compares estimators (``compare``), the Welford state of the sum and the
  difference of each pair's replicate estimates (their count is ``count``'s): the joint moments
  :mod:`gradsweep.analysis` needs for an interval on a variance ratio.

Every variable and coordinate has ``long_name`` and ``units`` (``"1"``: all
quantities here are dimensionless numbers); global attributes follow CF-1.10
and record the config, seed, versions, backend and a ``history`` line; a written
file adds a ``checksum`` of its config and state (:func:`checksum`, checked by
:func:`verify`). The file needs only xarray and netCDF4 to open.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from xarray.indexes import PandasIndex

from . import truth
from ._version import __version__
from .config import Config, ConfigError
from .estimators import COMBINATIONS, DESCRIPTIONS, ESTIMATORS
from .files import check_writable, replacing
from .philox import PAIRED_N
from .welford import FIELDS, finish

DIMS = ("N", "theta", "sigma", "estimator", "wrt")
#: The dimensions of a sweep over the objective's parameter k.
K_DIMS = ("N", "k", "theta", "sigma", "estimator", "wrt")
#: Every dimension the statistics may have, in order: ``dim`` and ``k`` where they are swept.
ALL_DIMS = ("N", "dim", "k", "theta", "sigma", "estimator", "wrt")
#: The grid's axes (the cells'), in order.
GRID_AXES = ALL_DIMS[:-2]

_COORD_ATTRS = {
    "N": {"long_name": "samples per gradient estimate", "units": "1"},
    "k": {"long_name": "parameter k of the objective f", "units": "1"},
    "dim": {"long_name": "dimension of x (f is the sum of the objective over the coordinates; the gradient is the first's)", "units": "1"},
    "theta": {"long_name": "mean of the sampling distribution N(theta, sigma^2)", "units": "1"},
    "sigma": {"long_name": "standard deviation of the sampling distribution N(theta, sigma^2)", "units": "1"},
    "estimator": {"long_name": "gradient estimator", "units": "1"},
    "wrt": {"long_name": "parameter the gradient is taken with respect to", "units": "1"},
    "pair": {"long_name": "compared pair of estimators (first/second), sharing random numbers", "units": "1"},
    "combination": {"long_name": "sum or difference of the pair's replicate estimates (first + second, first - second)", "units": "1"},
}

_VAR_ATTRS = {
    "mean": ("mean of the N-sample gradient estimate over replicates", "mean over replicates"),
    "var": ("unbiased variance of the N-sample gradient estimate over replicates", "variance over replicates"),
    "mean_se": ("standard error of mean", "standard error over replicates"),
    "var_se": ("standard error of var (from the fourth central moment)", "standard error over replicates"),
    "count": ("number of N-sample estimates (replicates) in the cell", "count of replicates"),
    "true_grad": ("exact gradient of E[f(x)], x ~ N(theta, sigma^2)", None),
    "exact_var": ("exact variance of the N-sample gradient estimate", None),
    "exact_mean": ("exact expectation of the N-sample gradient estimate", None),
    "cost": ("evaluations of f or f' per sample", None),
    "m2": ("Welford state: sum of squared deviations of the estimates from mean", "sum over replicates"),
    "m3": ("Welford state: sum of cubed deviations of the estimates from mean", "sum over replicates"),
    "m4": ("Welford state: sum of fourth-power deviations of the estimates from mean", "sum over replicates"),
    "pair_mean": ("mean of the sum or difference of a compared pair's N-sample estimates", "mean over replicates"),
    "pair_m2": ("Welford state of a compared pair's sum or difference: sum of squared deviations", "sum over replicates"),
    "pair_m3": ("Welford state of a compared pair's sum or difference: sum of cubed deviations", "sum over replicates"),
    "pair_m4": ("Welford state of a compared pair's sum or difference: sum of fourth-power deviations", "sum over replicates"),
}


def _attrs(name: str) -> dict:
    long_name, method = _VAR_ATTRS[name]
    attrs = {"long_name": long_name, "units": "1"}
    if method:  # not CF cell_methods: the replicates are not a dimension of the file
        attrs["comment"] = method
    return attrs


def _versions() -> dict[str, str]:
    import netCDF4
    import numba

    return {
        "gradsweep_version": __version__,
        "numba_version": numba.__version__,
        "numpy_version": np.__version__,
        "xarray_version": xr.__version__,
        "netcdf4_version": netCDF4.__version__,
        "python_version": platform.python_version(),
    }


def history_line(action: str = "") -> str:
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    call = action or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    return f"{now}: {call} (gradsweep {__version__})"


def dims_of(config: Config) -> tuple[str, ...]:
    """The dimensions of the statistics of a sweep of ``config``: with ``dim`` and ``k`` where they are swept."""
    return (*config.dims, "estimator", "wrt")


def dims_in(ds: xr.Dataset) -> tuple[str, ...]:
    """The dimensions of a result's statistics, as the file has them."""
    return tuple(d for d in ALL_DIMS if d in ds.dims or d not in ("dim", "k"))


def shape_of(config: Config) -> tuple[int, ...]:
    """The statistics' shape, over :func:`dims_of`."""
    return (*(config.axes[d].size for d in config.dims), len(config.estimators), len(config.wrt))


def pair_dims(dims: tuple[str, ...]) -> tuple[str, ...]:
    """The dimensions of the compared pairs' states, from the statistics' ``dims``."""
    return (*dims[:-2], "pair", "combination", "wrt")


def pair_label(a: str, b: str) -> str:
    """The ``pair`` coordinate's label of estimators a and b."""
    return f"{a}/{b}"


def split_outputs(config: Config, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cell states (cells x outputs x 5, kernel order) as the estimators' states over :func:`dims_of` and
    5 fields, and the compared pairs' over :func:`pair_dims` and 5 fields (the kernels write the pairs'
    outputs in (pair, wrt, combination) order: :class:`gradsweep.estimators.Layout`)."""
    grid = shape_of(config)[:-2]
    n_est = len(config.estimators) * len(config.wrt)
    state = np.asarray(state).reshape(*grid, config.n_outputs, 5)
    pairs = state[..., n_est:, :].reshape(*grid, len(config.compare), len(config.wrt), len(COMBINATIONS), 5)  # kernel order
    return state[..., :n_est, :].reshape(*shape_of(config), 5), pairs.swapaxes(-3, -2)


def state_of(ds: xr.Dataset) -> np.ndarray:
    """The Welford state stored in a result dataset, as the kernels write it: (cells, outputs, 5), cells in
    C order over its grid, the estimators' outputs (estimator-major) and then the compared pairs'."""
    dims = dims_in(ds)
    fields = [ds["count"].astype(np.float64), ds["mean"], ds["m2"], ds["m3"], ds["m4"]]
    est = np.stack([f.transpose(*dims).values for f in fields], axis=-1)
    cells = int(np.prod(est.shape[:-3]))
    flat = [est.reshape(cells, -1, 5)]
    if "pair" in ds.dims:
        count = ds["count"].isel(estimator=0).expand_dims(pair=ds["pair"], combination=ds["combination"]).astype(np.float64)
        fields = [count, *(ds[name] for name in PAIR_STATE)]
        kernel_order = (*dims[:-2], "pair", "wrt", "combination")
        flat.append(np.stack([f.transpose(*kernel_order).values for f in fields], axis=-1).reshape(cells, -1, 5))
    return np.concatenate(flat, axis=1)


#: The compared pairs' Welford state variables (their count is ``count``'s).
PAIR_STATE = ("pair_mean", "pair_m2", "pair_m3", "pair_m4")
#: The variables a file's checksum covers: its Welford states.
STATE = ("count", "mean", "m2", "m3", "m4", *PAIR_STATE)


def checksum(ds: xr.Dataset) -> str:
    """SHA-256 of what ``extend``, ``merge``, ``show`` and ``plot`` trust in a file: its config, its
    shard and its Welford states (NaNs made canonical, so a write and a read agree)."""
    h = hashlib.sha256()
    h.update(str(ds.attrs.get("config", "")).encode())
    h.update(str(ds.attrs.get("shard", "")).encode())
    for name in STATE:
        if name not in ds:
            continue
        a = ds[name].transpose(*(pair_dims(dims_in(ds)) if name.startswith("pair_") else dims_in(ds))).values
        a = a.astype("<i8") if a.dtype.kind in "iu" else np.where(np.isnan(a), np.nan, a).astype("<f8")
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def verify(ds: xr.Dataset) -> xr.Dataset:
    """``ds`` if it is a gradsweep result whose checksum (where it has one: files before it have none) matches."""
    if "config" not in ds.attrs or not all(v in ds for v in ("count", "mean", "m2", "m3", "m4")):
        raise ConfigError("not a gradsweep result (no config attribute or Welford state)")
    if "checksum" in ds.attrs and ds.attrs["checksum"] != checksum(ds):
        raise ConfigError("the file was changed after gradsweep wrote it (its config or state does not match its checksum)")
    return ds


def config_of(ds: xr.Dataset, *, allow_shard: bool = False) -> Config:
    """The config a result was made with (refusing files gradsweep cannot extend, or that were edited)."""
    verify(ds)
    if "shard" in ds.attrs and not allow_shard:
        raise ConfigError(f"this is shard {ds.attrs['shard']} of a sweep; merge the shards first (gradsweep merge)")
    try:
        values = json.loads(ds.attrs["config"])
    except ValueError:
        raise ConfigError("the file's config attribute is not valid JSON") from None
    if not isinstance(values, dict):
        raise ConfigError("the file's config attribute is not a config table")
    values.setdefault("streams", 1)  # written before the paired stream layout
    values.setdefault("compare", [])  # written before compared pairs were recorded
    try:
        config = Config.from_dict(values)
    except ConfigError as e:
        if "unknown objective" in str(e):
            raise ConfigError(
                f"result was made with a user objective ({values.get('objective')!r}); only built-in objectives can be extended"
            ) from None
        raise
    dims = dims_of(config)
    count = ds["count"].transpose(*dims).values if set(ds["count"].dims) == set(dims) else None
    if count is None or count.shape != shape_of(config) or not np.all((count == config.reps) | ((count == 0) & ("shard" in ds.attrs))):
        raise ConfigError(f"the file's grid or replicate counts do not match its config ({config.reps} replicates per cell)")
    pairs = [pair_label(a, b) for a, b in config.compare]
    has = ds["pair"].values.tolist() if "pair" in ds.dims else []
    if has != pairs or (pairs and not all(name in ds for name in PAIR_STATE)):
        raise ConfigError(f"the file's compared pairs ({', '.join(has) or 'none'}) do not match its config ({', '.join(pairs) or 'none'})")
    return config


def overflowed(ds: xr.Dataset) -> tuple[int, str]:
    """How many values of a result are NaN or inf where a number was due (float64 overflowed: theta = 1e80,
    say), and where the first is; (0, "") if none. Exact values of user objectives are NaN by design."""
    names = ["mean", "var"] + (["exact_mean", "exact_var"] if np.isfinite(ds["exact_var"].values).any() else [])
    filled = ds["count"] > 1
    bad = {name: ~np.isfinite(ds[name]) & filled for name in names}
    total = int(sum(int(b.sum()) for b in bad.values()))
    if not total:
        return 0, ""
    name, where = next((n, b) for n, b in bad.items() if bool(b.any()))
    first = where.where(where, drop=True)
    cell = ", ".join(f"{d}={first[d].values[0]:g}" if first[d].dtype.kind in "fi" else f"{d}={first[d].values[0]}" for d in first.dims)
    return total, f"{name} at {cell}"


def build_dataset(
    config: Config,
    cell_state: np.ndarray,
    *,
    backend: str,
    kernels: str,
    threads: int,
    device: str | None = None,
    history: str = "",
) -> xr.Dataset:
    """The dataset of a sweep from its states (cells x outputs x 5, as the kernels write them: :func:`split_outputs`).

    ``backend``, ``kernels`` and ``device`` (the GPU, where one ran) record what computed it.
    """
    cell_state, pair_state = split_outputs(config, cell_state)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # overflow is reported once, by overflowed()
        stats = finish(cell_state)
    dims = dims_of(config)

    coord_values = {
        "N": config.N.astype(np.int64),
        **({"dim": config.dim} if config.dim_axis else {}),
        **({"k": config.k} if config.k_axis else {}),
        "theta": config.theta,
        "sigma": config.sigma,
        "estimator": np.array(config.estimators, dtype=str),
        "wrt": np.array(config.wrt, dtype=str),
    }
    described = "; ".join(f"{e}: {DESCRIPTIONS[e]}" for e in config.estimators)
    coord_attrs = {**_COORD_ATTRS, "estimator": {**_COORD_ATTRS["estimator"], "description": described}}
    data = {
        "mean": (dims, stats["mean"]),
        "var": (dims, stats["var"]),
        "mean_se": (dims, stats["mean_se"]),
        "var_se": (dims, stats["var_se"]),
        "count": (dims, stats["count"].astype(np.int64)),
        "m2": (dims, cell_state[..., FIELDS.index("m2")]),
        "m3": (dims, cell_state[..., FIELDS.index("m3")]),
        "m4": (dims, cell_state[..., FIELDS.index("m4")]),
    }

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        per_cell = [
            [truth.exact(config.objective.at(k), config.N, config.theta, config.sigma, config.estimators, config.wrt, d) for k in config.k]
            for d in config.dim
        ]
    grad = np.stack([e["true_grad"] for e in per_cell[0]])  # (k, theta, sigma, wrt): the gradient does not depend on dim
    grad_dims = tuple(d for d in dims[:-2] if d not in ("N", "dim"))
    data["true_grad"] = ((*grad_dims, "wrt"), grad if config.k_axis else grad[0])
    for name in ("exact_mean", "exact_var"):
        v = np.moveaxis(np.array([[e[name] for e in row] for row in per_cell]), 2, 0)  # (N, dim, k, theta, sigma, ...)
        v = v if config.k_axis else v[:, :, 0]
        data[name] = (dims, v if config.dim_axis else v[:, 0])
    data["cost"] = (("estimator",), np.array([ESTIMATORS[e].cost for e in config.estimators], dtype=np.int64))

    if config.compare:
        for name in PAIR_STATE:
            data[name] = (pair_dims(dims), pair_state[..., FIELDS.index(name.removeprefix("pair_"))])
        coord_values["pair"] = np.array([pair_label(a, b) for a, b in config.compare], dtype=str)
        coord_values["combination"] = np.array(COMBINATIONS, dtype=str)

    variables = {k: xr.Variable(dims, v, _attrs(k)) for k, (dims, v) in data.items()}
    no_exact = "NaN where no closed form exists (user objectives)"
    variables["exact_var"].attrs["description"] = (
        f"closed form (the coupled measure-valued d/dsigma by Gauss-Legendre quadrature over u); {no_exact}"
    )
    variables["exact_mean"].attrs["description"] = f"equals true_grad except for biased estimators; {no_exact}"
    if not config.objective.is_builtin and any(ESTIMATORS[e].constants for e in config.estimators):
        variables["mean"].attrs["baselines"] = "the baselines' exact constants (E[f], E[f s^2]) come from Gauss-Hermite quadrature"
    coords = xr.Coordinates(
        {dim: xr.Variable(dim, v, coord_attrs[dim]) for dim, v in coord_values.items()},
        # xarray's default indexes, built directly: its general path costs a sweep about 0.2 ms more
        indexes={dim: PandasIndex(pd.Index(v), dim) for dim, v in coord_values.items()},
    )
    ds = xr.Dataset(variables, coords=coords)
    ds.attrs = {
        "Conventions": "CF-1.10",
        "title": "Monte Carlo gradient estimator variance for "
        + (f"f(x) = sum_d g(x_d), g(x) = {config.objective.formula}" if config.dim.max() > 1 else f"f(x) = {config.objective.formula}"),
        "source": f"gradsweep {__version__}",
        "objective": config.objective.formula,
        "config": config.to_json(),
        "seed": np.uint64(config.seed),
        "replicates": np.int64(config.reps),
        "random_stream": "Philox4x32-10 keyed by the seed; counter = (pair index, replicate word, stream); Box-Muller normals; "
        + (
            f"N <= {PAIRED_N}: replicates 2w and 2w+1 share word w and pair j holds their sample j; larger N: word = replicate, "
            "pair j holds samples 2j and 2j+1; "
            if config.streams >= 2
            else "word = replicate, pair j holds samples 2j and 2j+1; "
        )
        + ("stream = N index, shared by all theta and sigma cells" if config.common_random_numbers else "stream = cell index")
        + ("; coordinate c >= 1 of a sample: c in bits 8-30 of counter word 1" if config.dim.max() > 1 else ""),
        "common_random_numbers": np.int8(config.common_random_numbers),
        "backend": backend,
        "kernels": kernels,
        **({} if device is None else {"device": device}),
        "threads": np.int64(threads),
        **_versions(),
        "history": history_line() + (f"\n{history}" if history else ""),
    }
    return ds


def _encoding(ds: xr.Dataset) -> dict:
    enc = {}
    for name, var in ds.data_vars.items():
        if var.dtype.kind == "f":
            enc[name] = {"zlib": True, "complevel": 4, "_FillValue": np.nan, "dtype": "float64"}
        else:
            enc[name] = {"zlib": True, "complevel": 4, "_FillValue": None}
    for name in ds.coords:
        enc[name] = {"_FillValue": None}
    return enc


def write(ds: xr.Dataset, path, *, overwrite: bool = False) -> Path:
    """Write ``ds`` to netCDF atomically (:func:`gradsweep.files.replacing`): a temporary file beside
    ``path``, then a rename. An interrupted write leaves the previous file (or none) intact, never a
    truncated one; an existing file is only replaced when ``overwrite``; a symlink's target is written.
    """
    path = check_writable(path, overwrite)
    ds = ds.assign_attrs(checksum=checksum(ds))
    with replacing(path, overwrite=overwrite) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=_encoding(ds))
    return path

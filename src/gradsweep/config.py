"""The sweep configuration: parse, validate, normalise.

Every TOML key is also a keyword of :func:`gradsweep.sweep`. Validation
raises :class:`ConfigError` with one readable sentence that names the key.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .estimators import ESTIMATORS, NAMES, WRT
from .objectives import Objective, make_objective
from .philox import MAX_N_COORDINATES


class ConfigError(ValueError):
    """A bad configuration value; its message is one line for the user."""


DEFAULTS = {
    "objective": "square",
    "estimators": ["score", "pathwise"],
    "wrt": list(WRT),
    "N": [10, 100, 1000, 10000, 100000],
    "theta": [2.0],
    "sigma": [1.0],
    "reps": 100,
    "seed": 0,
    "common_random_numbers": False,
    "streams": 2,
    "compare": "first",
    "dim": 1,
}
#: The stream layouts (see gradsweep.philox): 2 draws small N in replicate pairs; 1, every N within
#: a replicate, as gradsweep did before the paired layout (files without ``streams`` in their config).
STREAMS = (1, 2)
KEYS = tuple(DEFAULTS)
#: What ``compare`` may say instead of a list of pairs: every estimator with the first, every pair, none.
COMPARE_WORDS = ("first", "all", "none")
MAX_SEED = 2**64
#: The largest dimension (and, for dim > 1, N) the random stream can address: see gradsweep.philox.
MAX_DIM = 100_000


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _grid(key: str, spec) -> np.ndarray:
    """A list of numbers, or a table {start, stop, num, scale = "linear" | "log"}."""
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"start", "stop", "num", "scale"}
        if unknown:
            raise ConfigError(f"{key}: unknown grid key(s) {', '.join(sorted(unknown))} (use start, stop, num, scale)")
        missing = {"start", "stop", "num"} - set(spec)
        if missing:
            raise ConfigError(f"{key}: a grid needs start, stop and num (missing {', '.join(sorted(missing))})")
        start, stop, num = spec["start"], spec["stop"], spec["num"]
        scale = spec.get("scale", "linear")
        if not (_is_number(start) and _is_number(stop)) or not (math.isfinite(start) and math.isfinite(stop)):
            raise ConfigError(f"{key}: grid start and stop must be finite numbers")
        if not isinstance(num, (int, np.integer)) or isinstance(num, bool) or num < 1:
            raise ConfigError(f"{key}: grid num must be an integer >= 1, got {num!r}")
        if scale == "linear":
            return np.linspace(float(start), float(stop), int(num))
        if scale == "log":
            if start <= 0 or stop <= 0:
                raise ConfigError(f"{key}: a log grid needs start > 0 and stop > 0")
            return np.geomspace(float(start), float(stop), int(num))
        raise ConfigError(f'{key}: grid scale must be "linear" or "log", got {scale!r}')
    if _is_number(spec):
        spec = [spec]
    if not isinstance(spec, (list, tuple, np.ndarray)) or len(spec) == 0:
        raise ConfigError(f"{key} must be a non-empty list of numbers or a grid table, got {spec!r}")
    for v in spec:
        if not _is_number(v):
            raise ConfigError(f"{key} must contain numbers only, got {v!r}")
        if not math.isfinite(v):
            raise ConfigError(f"{key} must contain finite numbers only, got {v}")
    return np.asarray(spec, dtype=np.float64)


def _unique(key: str, values) -> None:
    if len(set(np.asarray(values).tolist())) != len(values):
        raise ConfigError(f"{key} has repeated values: {list(np.asarray(values).tolist())}")


def _choices(key: str, value, allowed) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ConfigError(f"{key} must be a non-empty list from {', '.join(allowed)}")
    for v in value:
        if v not in allowed:
            raise ConfigError(f"unknown {key[:-1] if key.endswith('s') else key} {v!r}; choose from {', '.join(allowed)}")
    _unique(key, list(value))
    return tuple(value)


def _objective_and_k(spec) -> tuple[Objective, np.ndarray, bool]:
    """The objective, its k values and whether they are a sweep axis.

    A k given as a list or a grid table (``objective = { name = "cos", k = [0.5, 1.0] }``) is an
    axis; the objective then carries k = NaN, and each k is checked as a scalar k would be.
    """
    try:
        if isinstance(spec, Mapping) and isinstance(spec.get("k"), (list, tuple, np.ndarray, Mapping)):
            k = _grid("objective k", spec["k"])
            _unique("objective k", k)
            for v in k:  # the checks a scalar k meets (exp_quadratic's k > 0; square takes no k)
                objective = make_objective({**spec, "k": float(v)})
            return objective.at(math.nan), k, True
        objective = make_objective(spec)
    except ValueError as e:
        raise ConfigError(f"objective: {e}") from None
    return objective, np.array([objective.k if objective.has_k else math.nan]), False


def _dim(spec) -> tuple[np.ndarray, bool]:
    """The dimensions and whether they are a sweep axis: a whole number, or a list or grid table of them."""
    values = _grid("dim", spec)
    if isinstance(spec, Mapping):
        values = np.unique(np.rint(values))
    elif np.any(values != np.rint(values)):
        raise ConfigError(f"dim must be whole numbers, got {values.tolist()}")
    if np.any(values < 1) or np.any(values > MAX_DIM):
        bad = values.min() if np.any(values < 1) else values.max()
        raise ConfigError(f"dim must be from 1 to {MAX_DIM:,}, got {bad:g}")
    _unique("dim", values)
    return values.astype(np.int64), not _is_number(spec)


def _compare(spec, estimators: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """The pairs of estimators whose joint moments a sweep records (what ``variance_ratio`` needs).

    ``"first"``: each estimator with the first listed; ``"all"``: every pair; ``"none"`` or ``[]``: none;
    or a list of ``[a, b]`` pairs of requested estimators.
    """
    if isinstance(spec, str):
        if spec not in COMPARE_WORDS:
            raise ConfigError(f"compare must be {', '.join(map(repr, COMPARE_WORDS))} or a list of [a, b] estimator pairs, got {spec!r}")
        if spec == "first":
            return tuple((estimators[0], e) for e in estimators[1:])
        if spec == "all":
            return tuple((a, b) for i, a in enumerate(estimators) for b in estimators[i + 1 :])
        return ()
    if not isinstance(spec, (list, tuple)):
        raise ConfigError(f"compare must be {', '.join(map(repr, COMPARE_WORDS))} or a list of [a, b] estimator pairs, got {spec!r}")
    pairs, seen = [], set()
    for pair in spec:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 or not all(isinstance(e, str) for e in pair):
            raise ConfigError(f'compare: each pair must be two estimator names like ["score", "pathwise"], got {pair!r}')
        a, b = pair
        for e in pair:
            if e not in estimators:
                raise ConfigError(f"compare: {e!r} is not among the estimators ({', '.join(estimators)})")
        if a == b:
            raise ConfigError(f"compare: a pair needs two different estimators, got {list(pair)}")
        if frozenset(pair) in seen:
            raise ConfigError(f"compare: the pair {list(pair)} is given twice")
        seen.add(frozenset(pair))
        pairs.append((a, b))
    return tuple(pairs)


@dataclass(frozen=True, eq=False)
class Config:
    """A validated sweep configuration (build with :meth:`from_dict`)."""

    objective: Objective
    estimators: tuple[str, ...]
    wrt: tuple[str, ...]
    N: np.ndarray
    theta: np.ndarray
    sigma: np.ndarray
    reps: int
    seed: int
    common_random_numbers: bool = False
    streams: int = 2
    #: The objective's k values, one per k cell (one NaN where f has no k); with ``k_axis`` a
    #: dataset dimension (and ``objective.k`` is NaN), else the one k of the objective.
    k: np.ndarray = field(default_factory=lambda: np.array([math.nan]))
    k_axis: bool = False
    #: Pairs of estimators whose replicate estimates' sum and difference are recorded too (:func:`_compare`).
    compare: tuple[tuple[str, str], ...] = ()
    #: The dimensions of x, one per dim cell; with ``dim_axis`` a dataset dimension, else the one dimension.
    dim: np.ndarray = field(default_factory=lambda: np.array([1]))
    dim_axis: bool = False

    @classmethod
    def from_dict(cls, values: Mapping | None = None, **kwargs) -> Config:
        merged = dict(DEFAULTS)
        given = {**(values or {}), **kwargs}
        unknown = [k for k in given if k not in DEFAULTS]
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(map(str, unknown))} (known: {', '.join(KEYS)})")
        merged.update({k: v for k, v in given.items() if v is not None})
        objective, k, k_axis = _objective_and_k(merged["objective"])
        requested = merged["estimators"]
        estimators = NAMES if requested == "all" or requested == ["all"] else _choices("estimators", requested, NAMES)
        words = {"df": "the derivative df", "d2f": "the second derivative d2f"}
        for name in estimators:
            for what in ESTIMATORS[name].needs:
                if not objective.provides(what):
                    raise ConfigError(f"estimator {name!r} needs {words[what]} of the user objective")
        wrt = _choices("wrt", merged["wrt"], WRT)

        n_raw = merged["N"]
        n_float = _grid("N", n_raw)
        if isinstance(n_raw, Mapping):
            n_float = np.unique(np.rint(n_float))
        elif np.any(n_float != np.rint(n_float)):
            raise ConfigError(f"N must be whole numbers, got {n_float.tolist()}")
        if np.any(n_float < 1):
            raise ConfigError(f"N must be >= 1, got {n_float.min():g}")
        if np.any(n_float >= 2**62):
            raise ConfigError("N must be below 2**62")
        N = n_float.astype(np.int64)
        _unique("N", N)
        for name in estimators:
            if N.min() < ESTIMATORS[name].min_n:
                raise ConfigError(f"estimator {name!r} needs N >= {ESTIMATORS[name].min_n}, got N = {N.min()}")

        theta = _grid("theta", merged["theta"])
        sigma = _grid("sigma", merged["sigma"])
        if np.any(sigma <= 0):
            raise ConfigError(f"sigma must be > 0, got {sigma.min():g}")
        _unique("theta", theta)
        _unique("sigma", sigma)

        reps = merged["reps"]
        if not isinstance(reps, (int, np.integer)) or isinstance(reps, bool):
            raise ConfigError(f"reps must be an integer, got {reps!r}")
        if reps < 2:
            raise ConfigError(f"reps must be >= 2 (a variance needs two replicates), got {reps}")
        if reps >= 2**32:
            raise ConfigError("reps must be below 2**32")
        seed = merged["seed"]
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < MAX_SEED:
            raise ConfigError(f"seed must be an integer in [0, 2**64), got {seed!r}")
        crn = merged["common_random_numbers"]
        if not isinstance(crn, bool):
            raise ConfigError(f"common_random_numbers must be true or false, got {crn!r}")
        streams = merged["streams"]
        if streams not in STREAMS or isinstance(streams, bool):
            raise ConfigError(f"streams must be 1 or 2 (the random stream layout; 2 unless extending an old file), got {streams!r}")
        compare = _compare(merged["compare"], estimators)
        dim, dim_axis = _dim(merged["dim"])
        if dim.max() > 1 and N.max() > MAX_N_COORDINATES:
            raise ConfigError(f"N must be at most 2**40 when dim > 1 (the random stream's room for coordinates), got {N.max()}")
        return cls(objective, estimators, wrt, N, theta, sigma, int(reps), int(seed), crn, int(streams), k, k_axis, compare, dim, dim_axis)

    @classmethod
    def from_toml(cls, path) -> Config:
        """Read and validate a TOML file; unreadable files raise ConfigError too."""
        path = Path(path)
        if path.is_dir():
            raise ConfigError(f"cannot read config {str(path)!r}: it is a directory")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config {str(path)!r}: {getattr(e, 'strerror', None) or e}") from None
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config {str(path)!r} is not valid TOML: {e}") from None
        return cls.from_dict(values)

    @property
    def axes(self) -> dict[str, np.ndarray]:
        """The cells' grid: each axis's values, in the order cells are numbered (C order): N, dim, k, theta, sigma."""
        return {"N": self.N, "dim": self.dim, "k": self.k, "theta": self.theta, "sigma": self.sigma}

    @property
    def dims(self) -> tuple[str, ...]:
        """The grid's axes that are dataset dimensions (dim and k only where swept)."""
        return tuple(a for a in self.axes if (a != "dim" or self.dim_axis) and (a != "k" or self.k_axis))

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """The cells' grid (N, dim, k, theta, sigma); cells are numbered in C order over it."""
        return tuple(v.size for v in self.axes.values())

    @property
    def n_cells(self) -> int:
        return math.prod(self.grid_shape)

    @property
    def n_outputs(self) -> int:
        """What the kernels record per cell: each (estimator, wrt), and per compared pair and wrt a sum and a difference."""
        return (len(self.estimators) + 2 * len(self.compare)) * len(self.wrt)

    @property
    def total_samples(self) -> int:
        return int(self.N.sum()) * self.dim.size * self.k.size * self.theta.size * self.sigma.size * self.reps

    def to_dict(self) -> dict:
        """A plain, JSON- and TOML-friendly form that :meth:`from_dict` reads back."""
        return {
            "objective": {"name": self.objective.name, "k": [float(v) for v in self.k]} if self.k_axis else self.objective.to_config(),
            "estimators": list(self.estimators),
            "wrt": list(self.wrt),
            "N": [int(v) for v in self.N],
            "theta": [float(v) for v in self.theta],
            "sigma": [float(v) for v in self.sigma],
            "reps": self.reps,
            "seed": self.seed,
            "common_random_numbers": self.common_random_numbers,
            "streams": self.streams,
            "compare": [list(pair) for pair in self.compare],
            # one dimension is left out, so configs (and checkpoint keys) from before the dim key stay the same
            **({"dim": [int(v) for v in self.dim] if self.dim_axis else int(self.dim[0])} if self.dim_axis or self.dim[0] > 1 else {}),
        }

    def replace(self, **changes) -> Config:
        """This config with ``changes`` (config keys), validated again; a user objective's functions are kept."""
        values = self.to_dict()
        if not self.objective.is_builtin:
            values["objective"] = self.objective
        return Config.from_dict({**values, **changes})

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/n"`` as (i, n) with 0 <= i < n; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not int(m.group(1)) < int(m.group(2)):
        raise ConfigError(f"--shard must be i/n with 0 <= i < n (like 0/4), got {text!r}")
    return int(m.group(1)), int(m.group(2))

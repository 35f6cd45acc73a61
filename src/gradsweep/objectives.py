"""Objectives ``f`` (and their derivatives ``f'``) whose gradients are estimated.

Built-ins, each with a closed-form truth:

=================  ==============  ==============================
name               f(x)            parameter
=================  ==============  ==============================
``square``         x**2            none
``quadratic``      (x - k)**2      ``k`` (default 1.0)
``exp_quadratic``  exp(-k x**2)    ``k > 0`` (default 1.0)
``cos``            cos(k x)        ``k`` (default 1.0)
=================  ==============  ==============================

The kernels evaluate built-ins through :func:`value` and :func:`derivative`,
whose first argument, the objective's code, is a compile-time constant in each
kernel, so the branch folds away. A user's own objective supplies ``f`` and
``f'`` as plain Python functions of one float that numba can compile.

For the exact values (:mod:`gradsweep.truth`) each built-in also states
``f`` and ``f'`` as sums of terms
``coef * poly(x - c) * exp(-a x**2 + b x)`` (real part taken; ``b`` may be
imaginary, which covers cos; the centre ``c`` is k for ``quadratic``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np
from numpy.polynomial import Polynomial as P

from ._jit import rebind, scalar

SQUARE, QUADRATIC, EXP_QUADRATIC, COS = range(4)
USER = -1

BUILTINS = {"square": SQUARE, "quadratic": QUADRATIC, "exp_quadratic": EXP_QUADRATIC, "cos": COS}
FORMULAS = {"square": "x**2", "quadratic": "(x - k)**2", "exp_quadratic": "exp(-k * x**2)", "cos": "cos(k * x)"}
_HAS_K = {"quadratic", "exp_quadratic", "cos"}


@scalar
def value(code, x, k):
    """f(x) of built-in objective ``code`` with parameter ``k``."""
    if code == SQUARE:
        return x * x
    if code == QUADRATIC:
        return (x - k) * (x - k)
    if code == EXP_QUADRATIC:
        return math.exp(-k * x * x)
    if code == COS:
        return math.cos(k * x)
    return math.nan


@scalar
def derivative(code, x, k):
    """f'(x) of built-in objective ``code`` with parameter ``k``."""
    if code == SQUARE:
        return 2.0 * x
    if code == QUADRATIC:
        return 2.0 * (x - k)
    if code == EXP_QUADRATIC:
        return -2.0 * k * x * math.exp(-k * x * x)
    if code == COS:
        return -k * math.sin(k * x)
    return math.nan


@scalar
def second_derivative(code, x, k):
    """f''(x) of built-in objective ``code`` with parameter ``k``."""
    if code == SQUARE:
        return 2.0
    if code == QUADRATIC:
        return 2.0
    if code == EXP_QUADRATIC:
        return (4.0 * k * k * x * x - 2.0 * k) * math.exp(-k * x * x)
    if code == COS:
        return -k * k * math.cos(k * x)
    return math.nan


# A user objective in the kernels' (code, x, k) form. Each backend compiles these sources with
# ``user_f`` / ``user_df`` bound to its own compilation of the user's functions (_jit.rebind).
user_f = user_df = user_d2f = None


def user_value(code, x, k):
    return user_f(x)


def user_derivative(code, x, k):
    return user_df(x)


def user_second_derivative(code, x, k):
    return user_d2f(x)


def no_derivative(code, x, k):
    """f' or f'' of a user objective given without one: NaN (no estimator that needs it is asked for)."""
    return math.nan


def user_helpers(objective, compile_helper, compile_user) -> dict:
    """``value``, ``derivative`` and ``second_derivative`` for a user objective, for one target.

    Each is the (code, x, k) source above with the user's function bound in, compiled by
    ``compile_helper``; the user's own function is compiled by ``compile_user``. A function
    the objective lacks becomes :func:`no_derivative`.
    """
    table = {
        "value": (user_value, "user_f", objective.f),
        "derivative": (user_derivative, "user_df", objective.df),
        "second_derivative": (user_second_derivative, "user_d2f", objective.d2f),
    }
    return {
        name: compile_helper(no_derivative if fn is None else rebind(src, **{slot: compile_user(fn)}))
        for name, (src, slot, fn) in table.items()
    }


# A term: (coef, polynomial in x - c, a, b, c) meaning Re[coef * poly(x - c) * exp(-a x^2 + b x)]. The
# centre c keeps (x - k)^2 in powers of x - k: in powers of x, theta = k = 1e8 would cancel 1e16s.
Term = tuple[complex, P, float, complex, float]


@functools.lru_cache(maxsize=64)  # a table per (name, k); built once, read only
def _gaussian_forms(name: str, k: float) -> dict[str, list[Term]]:
    one = P([1.0])
    xp = P([0.0, 1.0])
    if name in ("square", "quadratic"):
        centre = 0.0 if name == "square" else k
        return {
            "f": [(1, xp**2, 0.0, 0, centre)],
            "df": [(1, 2 * xp, 0.0, 0, centre)],
        }
    if name == "exp_quadratic":
        return {
            "f": [(1, one, k, 0, 0.0)],
            "df": [(-2 * k, xp, k, 0, 0.0)],
        }
    if name == "cos":
        # cos(kx) = Re e^{ikx}; -k sin(kx) = Re(ik e^{ikx})
        return {
            "f": [(1, one, 0.0, 1j * k, 0.0)],
            "df": [(1j * k, one, 0.0, 1j * k, 0.0)],
        }
    raise KeyError(name)


@dataclass(frozen=True)
class Objective:
    """An objective f with its derivative.

    Parameters
    ----------
    name : str
        A built-in name, or a label for a user objective.
    k : float, optional
        The built-in's parameter (``quadratic``, ``exp_quadratic``, ``cos``).
    f, df, d2f : callable, optional
        For a user objective: ``f(x)``, ``f'(x)`` and ``f''(x)``, plain Python
        functions of one float that numba can compile. ``df`` and ``d2f`` may
        be omitted: estimators that need f' (pathwise) or f'' (score_delta)
        are then refused; the score family and the measure-valued estimators
        need only ``f``.
    """

    name: str
    k: float = math.nan
    f: Callable[[float], float] | None = field(default=None, compare=False)
    df: Callable[[float], float] | None = field(default=None, compare=False)
    d2f: Callable[[float], float] | None = field(default=None, compare=False)

    @property
    def code(self) -> int:
        return BUILTINS.get(self.name, USER) if self.f is None else USER

    @property
    def is_builtin(self) -> bool:
        return self.code != USER

    def provides(self, what: str) -> bool:
        """Whether this objective can evaluate ``what``: "f", "df" or "d2f"."""
        return self.is_builtin or {"f": self.f, "df": self.df, "d2f": self.d2f}[what] is not None

    def evaluate(self, what: str, x) -> np.ndarray:
        """f, f' or f'' (``what`` = "f", "df", "d2f") at the points ``x``, on the host (NaN where not given)."""
        x = np.asarray(x, dtype=np.float64)
        if self.is_builtin:
            fn = {"f": value, "df": derivative, "d2f": second_derivative}[what].py_func
            code, k = self.code, self.k
            return np.vectorize(lambda v: fn(code, v, k), otypes=[np.float64])(x)
        user = {"f": self.f, "df": self.df, "d2f": self.d2f}[what]
        if user is None:
            return np.full(x.shape, np.nan)
        user = getattr(user, "py_func", user)
        return np.vectorize(lambda v: float(user(float(v))), otypes=[np.float64])(x)

    @property
    def has_k(self) -> bool:
        """Whether f has a parameter k (a built-in ``quadratic``, ``exp_quadratic`` or ``cos``)."""
        return self.is_builtin and self.name in _HAS_K

    def at(self, k: float) -> Objective:
        """This objective with parameter ``k`` (itself where f has no k)."""
        return replace(self, k=float(k)) if self.has_k else self

    @property
    def formula(self) -> str:
        """f as text; a k that is NaN (swept: see ``Config.k``) stays the letter k."""
        if not self.is_builtin:
            return f"user function {self.name!r}"
        text = FORMULAS[self.name]
        return text.replace("k", repr(self.k)) if self.has_k and not math.isnan(self.k) else text

    def gaussian_forms(self) -> dict[str, list[Term]] | None:
        """f and f' as Gaussian-polynomial terms; None for user objectives."""
        return _gaussian_forms(self.name, self.k) if self.is_builtin else None

    def to_config(self) -> str | dict:
        """The TOML/JSON form of this objective (user objectives by label only)."""
        return {"name": self.name, "k": self.k} if self.has_k else self.name


def make_objective(spec) -> Objective:
    """An :class:`Objective` from a config value: a name, a table, or an Objective.

    Raises ``ValueError`` with a readable message for anything else.
    """
    if isinstance(spec, Objective):
        if spec.f is None and spec.name not in BUILTINS:
            raise ValueError(f"unknown objective {spec.name!r}; built-ins are {', '.join(BUILTINS)}")
        if spec.f is not None and not callable(spec.f):
            raise ValueError("objective f must be callable")
        for what in ("df", "d2f"):
            if getattr(spec, what) is not None and not callable(getattr(spec, what)):
                raise ValueError(f"objective {what} must be callable")
        if spec.has_k and not math.isfinite(spec.k):
            raise ValueError(f"objective parameter k must be finite, got {spec.k} (a list of k values sweeps k)")
        return spec
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ValueError(f'objective must be a name or a table like {{ name = "cos", k = 2.0 }}, got {spec!r}')
    spec = dict(spec)
    name = spec.pop("name", None)
    if name not in BUILTINS:
        raise ValueError(f"unknown objective {name!r}; built-ins are {', '.join(BUILTINS)}")
    if name not in _HAS_K:
        if spec:
            raise ValueError(f"objective {name!r} takes no parameters, got {', '.join(map(str, spec))}")
        return Objective(name)
    k = spec.pop("k", 1.0)
    if spec:
        raise ValueError(f"unknown key(s) for objective {name!r}: {', '.join(map(str, spec))} (only 'k')")
    if isinstance(k, bool) or not isinstance(k, (int, float, np.integer, np.floating)):
        raise ValueError(f"objective parameter k must be a number, got {k!r}")
    k = float(k)
    if not math.isfinite(k):
        raise ValueError(f"objective parameter k must be finite, got {k}")
    if name == "exp_quadratic" and k <= 0:
        raise ValueError(f"exp_quadratic needs k > 0 (exp(-k x^2) must decay), got k={k}")
    return Objective(name, k)

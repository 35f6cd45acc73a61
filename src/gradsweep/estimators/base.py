"""What an estimator is: the record that kernels, truth, config and dataset read.

An estimator has one :class:`Output` per parameter (``wrt``). An output names

* ``sums`` — the per-sample quantities a replicate sums, each a small scalar
  function ``q(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r)`` that the CPU and CUDA
  kernels both call. ``code``/``k`` select the objective (k is the cell's ``p[K]``:
  a sweep over k is a sweep over cells) (``value``,
  ``derivative``, ``second_derivative`` of :mod:`gradsweep.objectives`), ``p``
  is the cell's row of constants (indices below), and the rest are the
  sample's variates (:data:`VARIATES`); ``r`` is the sum of ``rest`` over the
  sample's other coordinates (0 in one dimension). Two outputs that name the
  same function share its sum: it is computed once.
* ``rest`` — in ``dim`` dimensions (f(x) = sum_d g(x_d), the gradient taken
  with respect to coordinate 1's mean and scale), ``rest(code, k, p, z)`` of
  each other coordinate's normal z is summed into ``r``: the part of f(x) (or
  of f(x) minus a control variate) the other coordinates carry. None where
  the estimate does not depend on them (the pathwise and measure-valued
  estimators: their other coordinates cancel exactly).
* ``finish`` — ``finish(s_0, ..., s_{q-1}, n, p)``: how a replicate's sums
  of N samples become its estimate (``s / n`` for a plain average; a
  non-linear mix for leave-one-out).
* ``variates`` — which variates its sums read (only those are drawn).

and the estimator its exact mean and variance (:mod:`gradsweep.truth`
supplies the expectations), its cost (evaluations of f or f' per sample), the
smallest N it is defined for, and a description.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._jit import scalar

#: A cell's constants, computed on the host once per cell: indices into its row ``p``.
#: K is the objective's parameter k: a cell constant, so one group of cells can span a k axis.
#: DIM is the cell's dimension (a float holding a whole number). The others are one coordinate's: f0 = g(theta) etc.
THETA, SIGMA, INV_SIGMA, F0, DF0, D2F0, MEAN_F, BSTAR_THETA, BSTAR_SIGMA, K, DIM = range(11)
CONSTANTS = ("theta", "sigma", "inv_sigma", "f0", "df0", "d2f0", "mean_f", "bstar_theta", "bstar_sigma", "k", "dim")

#: The per-sample variates, in the order the quantity functions take them.
#: eps ~ N(0, 1), the sample's normal; w, w2 ~ Rayleigh(1), independent of each other and of eps;
#: m ~ double-sided Maxwell (pdf m^2 phi(m)) and um = u * m with u ~ U(0, 1) independent of m
#: (so um ~ N(0, 1)); e2 ~ N(0, 1) independent of m. How they are drawn: gradsweep.philox.
#: fx, dfx: f(x) and f'(x) at x = theta + sigma eps (in dim dimensions, of coordinate 1: f(x) = fx + the others' r).
VARIATES = ("eps", "fx", "dfx", "w", "w2", "m", "um", "e2")
#: The variates drawn into arrays (fx and dfx are computed from eps per cell).
DRAWN = ("eps", "w", "w2", "m", "um", "e2")

WRT = ("theta", "sigma")


@dataclass(frozen=True)
class Output:
    """One estimator's estimate of one derivative: the sums per sample and how a replicate finishes them."""

    sums: tuple[Callable, ...]
    finish: Callable
    variates: frozenset[str]
    formula: str
    rest: Callable | None = None


@dataclass(frozen=True)
class Estimator:
    """A gradient estimator as one unit (see the module docstring)."""

    name: str
    description: str
    outputs: dict[str, Output]
    #: ``exact(moments, wrt, n, dim) -> (mean, var)`` of the N-sample estimate, arrays over (N, theta, sigma).
    exact: Callable
    cost: int
    #: what it evaluates: a subset of ("f", "df", "d2f")
    needs: tuple[str, ...]
    when: str
    min_n: int = 1
    #: which cell constants (indices above) it reads
    constants: tuple[int, ...] = field(default=())


@scalar
def average(s, n, p):
    """The plain N-sample average of one sum."""
    return s * (1.0 / n)  # a multiply: the kernels hoist 1 / n out of their loops


def other_coordinates(m, rest, dim: int):
    """The mean and variance of r, the sum of ``rest`` (an eps-form of one coordinate) over the ``dim - 1``
    other coordinates: independent copies, so (dim - 1) E[rest] and (dim - 1) Var[rest]."""
    if dim == 1:
        return 0.0, 0.0
    mean = m.normal(rest)
    return (dim - 1) * mean, (dim - 1) * m.variance(rest, mean)


def with_rest(m, term, score, mean, dim: int, rest, n):
    """Var of the N-sample average of ``(a + r) s`` where ``term`` = a s is one coordinate's part with exact
    mean ``mean``, ``score`` = s and r the other coordinates' sum of ``rest`` (independent of a and s):
    Var((a + E r) s) + Var(r) E[s^2], over N."""
    mu, var = other_coordinates(m, rest, dim)
    if dim > 1:
        term = term + m.poly([mu]) * score
    spread = m.variance(term, mean)
    return (spread + var * m.normal(score, score) if dim > 1 else spread) / as_n(n)


def as_n(n) -> np.ndarray:
    """N as float64 with axes for (N, theta, sigma)."""
    return np.asarray(n, dtype=np.float64).reshape(-1, 1, 1)

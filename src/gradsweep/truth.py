"""Exact gradients and exact estimator variances.

With ``x = theta + sigma * eps``, every quantity needed is an expectation
``E[Q(eps) g(x)]`` with ``Q`` a polynomial and ``g`` one of f, f**2, f', f'**2:

* true gradients: ``dL/dtheta = E[f'(x)]``, ``dL/dsigma = E[eps f'(x)]``;
* per-sample second moments: score ``E[eps^2 f^2] / sigma^2`` and
  ``E[(eps^2 - 1)^2 f^2] / sigma^2``; pathwise ``E[f'^2]`` and ``E[eps^2 f'^2]``;
* the variance of an N-sample estimate is (second moment - gradient^2) / N.

For the built-ins each ``g`` is a sum of terms ``coef * poly(x) * exp(-A x^2 + B x)``
(see :mod:`gradsweep.objectives`), and

    E[R(eps) exp(-a eps^2 + b eps)] = exp(b^2 / (2 lam)) / sqrt(lam) * E[R(Z)],
    Z ~ N(b / lam, 1 / lam),   lam = 1 + 2 a,

by completing the square; the moments of Z follow from
``E[Z^j] = mu E[Z^(j-1)] + (j-1) v E[Z^(j-2)]``, valid for complex ``mu`` too.
That gives closed forms for every built-in. :func:`quadrature` computes the
same quantities by Gauss-Hermite quadrature for any ``f`` (a cross-check, and
an estimate for user objectives, which otherwise have no exact values).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import Polynomial as P
from numpy.polynomial.hermite_e import hermegauss

from .estimators import TERMS, WRT
from .objectives import Objective

_EPS = P([0.0, 1.0])
#: Q(eps) for each quantity: (which g, Q, divide by sigma^power).
_GRAD = {"theta": ("df", P([1.0]), 0), "sigma": ("df", _EPS, 0)}
_SECOND = {
    ("score", "theta"): ("f2", _EPS**2, 2),
    ("score", "sigma"): ("f2", (_EPS**2 - 1) ** 2, 2),
    ("pathwise", "theta"): ("df2", P([1.0]), 0),
    ("pathwise", "sigma"): ("df2", _EPS**2, 0),
}


def _normal_moment_expectation(coefs, mu, v):
    """``E[R(Z)]``, ``Z ~ N(mu, v)``, for the coefficients of R (numbers or arrays of cells)."""
    total = 0j
    m_prev, m = 0j, 1.0 + 0j  # E[Z^-1] placeholder, E[Z^0]
    for j, c in enumerate(coefs):
        if j > 0:
            m_prev, m = m, mu * m + (j - 1) * v * m_prev
        total = total + c * m
    return total


def _gaussian_expectation(coefs, a, b, d):
    lam = 1.0 + 2.0 * np.asarray(a, dtype=np.float64)
    if np.any(lam <= 0):
        raise ValueError("the expectation diverges (1 + 2a <= 0)")
    scale = np.exp(d + b * b / (2.0 * lam)) / np.sqrt(lam)
    return scale * _normal_moment_expectation(coefs, b / lam, 1.0 / lam)


def gaussian_expectation(R: P, a: float, b: complex, d: complex = 0.0) -> complex:
    """``E[R(eps) exp(-a eps^2 + b eps + d)]`` for ``eps ~ N(0, 1)`` and ``a > -1/2``."""
    return complex(_gaussian_expectation(R.coef, a, complex(b), complex(d)))


def _shifted(poly_x: P, theta, sigma) -> list:
    """Coefficients in eps of ``poly_x(theta + sigma * eps)``, for arrays of theta and sigma."""
    c = poly_x.coef
    return [sum(c[m] * math.comb(m, j) * theta ** (m - j) for m in range(j, c.size)) * sigma**j for j in range(c.size)]


def _times(q: np.ndarray, r: list) -> list:
    """Coefficients of the product of the polynomial ``q`` (numbers) and ``r`` (per-cell arrays)."""
    return [sum(q[i] * r[k - i] for i in range(q.size) if 0 <= k - i < len(r)) for k in range(q.size + len(r) - 1)]


def _expect(forms, which: str, Q: P, theta, sigma):
    """``E[Q(eps) g(theta + sigma eps)]`` for g = ``which``, on numbers or broadcast arrays of cells."""
    total = 0j
    for coef, poly_x, A, B in forms[which]:
        a = A * sigma * sigma
        b = sigma * (B - 2.0 * A * theta)
        d = B * theta - A * theta * theta
        total = total + coef * _gaussian_expectation(_times(Q.coef, _shifted(poly_x, theta, sigma)), a, b, d)
    return np.real(total)


def _grid_apply(fn, theta, sigma) -> np.ndarray:
    th = np.asarray(theta, dtype=np.float64)
    sg = np.asarray(sigma, dtype=np.float64)
    out = np.empty((th.size, sg.size))
    for i, t in enumerate(th):
        for j, s in enumerate(sg):
            out[i, j] = fn(float(t), float(s))
    return out


def _grid_broadcast(fn, theta, sigma) -> np.ndarray:
    th = np.asarray(theta, dtype=np.float64)[:, None]
    sg = np.asarray(sigma, dtype=np.float64)[None, :]
    return np.broadcast_to(fn(th, sg), (th.size, sg.size)).astype(np.float64)


def exact(objective: Objective, theta, sigma) -> dict[str, np.ndarray] | None:
    """Exact gradients and per-sample variances over a (theta, sigma) grid.

    Returns ``{"true_grad": (theta, sigma, wrt), "per_sample_var": (theta, sigma, term)}``
    with terms in :data:`gradsweep.estimators.TERMS` order, or None when the
    objective has no closed form (user objectives). The whole grid is computed
    at once, as arrays.
    """
    forms = objective.gaussian_forms()
    if forms is None:
        return None
    return _assemble(lambda which, Q, t, s: _expect(forms, which, Q, t, s), theta, sigma, _grid_broadcast)


def quadrature(objective: Objective, theta, sigma, nodes: int = 160) -> dict[str, np.ndarray]:
    """The quantities of :func:`exact` by ``nodes``-point Gauss-Hermite quadrature.

    Exact for polynomial f of degree below ``nodes - 2``; for other smooth f the
    error falls quickly with ``nodes``. It is only as good as f is smooth and
    slowly varying on the scale of sigma: check it by doubling ``nodes``.
    """
    if objective.is_builtin:
        from . import objectives as objs

        code, k = objective.code, objective.k

        def f(x):
            return objs.value.py_func(code, x, k)

        def df(x):
            return objs.derivative.py_func(code, x, k)

    else:
        f = objective.f
        df = objective.df if objective.df is not None else (lambda x: math.nan)
    z, w = hermegauss(nodes)
    w = w / math.sqrt(2.0 * math.pi)
    g_of = {
        "f": lambda x: np.array([f(v) for v in x]),
        "f2": lambda x: np.array([f(v) for v in x]) ** 2,
        "df": lambda x: np.array([df(v) for v in x]),
        "df2": lambda x: np.array([df(v) for v in x]) ** 2,
    }

    def expect(which, Q, t, s):
        return float(np.sum(w * Q(z) * g_of[which](t + s * z)))

    return _assemble(expect, theta, sigma, _grid_apply)


def _assemble(expect, theta, sigma, over_grid) -> dict[str, np.ndarray]:
    grad = np.stack([over_grid(lambda t, s, w=w: expect(*_GRAD[w][:2], t, s), theta, sigma) for w in WRT], axis=-1)
    second = []
    for est, wrt in TERMS:
        which, Q, power = _SECOND[(est, wrt)]
        second.append(over_grid(lambda t, s, which=which, Q=Q, power=power: expect(which, Q, t, s) / s**power, theta, sigma))
    second = np.stack(second, axis=-1)
    grad_of_term = np.stack([grad[..., WRT.index(w)] for _, w in TERMS], axis=-1)
    return {"true_grad": grad, "per_sample_var": second - grad_of_term**2}


def score_means(objective: Objective, theta: float, sigma: float) -> tuple[float, float]:
    """E of the score terms, ``E[f eps] / sigma`` and ``E[f (eps^2 - 1)] / sigma``.

    Stein's lemma makes these equal the true gradients; used as a consistency check.
    """
    forms = objective.gaussian_forms()
    return (
        float(_expect(forms, "f", _EPS, theta, sigma)) / sigma,
        float(_expect(forms, "f", _EPS**2 - 1, theta, sigma)) / sigma,
    )

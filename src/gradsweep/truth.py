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


def _gaussian_factor(a, b, d):
    """``(scale, mu, v)`` with ``exp(-a eps^2 + b eps + d) phi(eps) = scale * density of N(mu, v)`` at eps."""
    lam = 1.0 + 2.0 * np.asarray(a, dtype=np.float64)
    if np.any(lam <= 0):
        raise ValueError("the expectation diverges (1 + 2a <= 0)")
    return np.exp(d + b * b / (2.0 * lam)) / np.sqrt(lam), b / lam, 1.0 / lam


def _moments(mu, v, count: int) -> np.ndarray:
    """``E[Z^j]`` for ``j < count``, ``Z ~ N(mu, v)``, stacked on a new first axis (numbers or arrays of cells)."""
    mu, v = np.broadcast_arrays(mu, v)
    m = [np.ones_like(mu), mu]
    for j in range(2, count):
        m.append(mu * m[j - 1] + (j - 1) * v * m[j - 2])
    return np.stack(m[:count])


def gaussian_expectation(R: P, a: float, b: complex, d: complex = 0.0) -> complex:
    """``E[R(eps) exp(-a eps^2 + b eps + d)]`` for ``eps ~ N(0, 1)`` and ``a > -1/2``."""
    scale, mu, v = _gaussian_factor(a, complex(b), complex(d))
    return complex(scale * R.coef @ _moments(mu, v, R.coef.size))


def _powers(x, count: int) -> np.ndarray:
    """``x**j`` for ``j < count``, stacked on a new first axis."""
    x = np.asarray(x)
    return x ** np.arange(count).reshape((count,) + (1,) * x.ndim)


def _padded(coefs) -> np.ndarray:
    """Coefficient vectors as the rows of one array, zero-padded to the longest."""
    out = np.zeros((len(coefs), max(c.size for c in coefs)))
    for row, c in zip(out, coefs, strict=True):
        row[: c.size] = c
    return out


def _shifted(polys: np.ndarray, theta, sigma) -> np.ndarray:
    """Coefficients in eps of ``poly(theta + sigma * eps)`` for each row of ``polys``: (rows, power, *cells).

    The eps**j coefficient is ``sigma**j * sum_p comb(j + p, j) c[j + p] theta**p``.
    """
    n = polys.shape[1]
    j, p = np.ogrid[:n, :n]
    comb = np.array([[math.comb(a + b, a) for b in range(n)] for a in range(n)], dtype=np.float64)
    c = np.concatenate([polys, np.zeros_like(polys)], axis=1)[:, j + p]  # c[j + p], zero past the degree
    return np.einsum("tjp,p...->tj...", comb * c, _powers(theta, n)) * _powers(sigma, n)


def _product(q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Row by row, the coefficients of the product of the polynomials ``q`` (rows, i) and ``s`` (rows, j, *cells)."""
    rows, width, n = q.shape[0], q.shape[1], s.shape[1]
    out = np.zeros((rows, width + n - 1) + s.shape[2:])
    for i in range(width):
        out[:, i : i + n] += q[:, i].reshape((rows, 1) + (1,) * (s.ndim - 2)) * s
    return out


def _expect(forms, requests, theta, sigma) -> np.ndarray:
    """``E[Q(eps) g(theta + sigma eps)]`` for each ``(g, Q)`` of ``requests``, stacked on a first axis.

    g names one of ``forms`` ("f", "f2", "df", "df2"); theta and sigma are
    numbers or broadcast arrays of cells. Every Gaussian term of every request
    is one row of a single array computation (a sweep pays for this once, so
    it is kept to a few dozen array operations): with S the row's shifted
    polynomial and m the moments of its Z, ``E[(Q S)(Z)] = sum_k (Q S)_k m_k``.
    """
    rows = [(r, Q.coef, *term) for r, (which, Q) in enumerate(requests) for term in forms[which]]
    request, q, coef, polys, A, B = zip(*rows, strict=True)
    theta = np.asarray(theta, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    column = (len(rows),) + (1,) * np.ndim(theta * sigma)  # the row axis first, then the cells'
    A = np.reshape(np.array(A, dtype=np.float64), column)
    B = np.reshape(np.array(B) + 0.0, column)  # float64, or complex128 where a term needs it (cos)
    coef = np.reshape(np.array(coef) + 0.0, column)
    scale, mu, v = _gaussian_factor(A * sigma * sigma, sigma * (B - 2.0 * A * theta), B * theta - A * theta * theta)
    product = _product(_padded(q), _shifted(_padded([p.coef for p in polys]), theta, sigma))
    moments = _moments(mu, v, product.shape[1])
    values = np.real(coef * scale * np.einsum("tk...,kt...->t...", product, moments))
    out = np.zeros((len(requests),) + values.shape[1:])
    np.add.at(out, np.array(request), values)
    return out


def _grid_apply(fn, theta, sigma) -> np.ndarray:
    """``fn(t, s)`` (a sequence of k numbers) at every grid cell: (theta, sigma, k)."""
    th = np.asarray(theta, dtype=np.float64)
    sg = np.asarray(sigma, dtype=np.float64)
    return np.array([[fn(float(t), float(s)) for s in sg] for t in th], dtype=np.float64).reshape(th.size, sg.size, -1)


def _grid_broadcast(fn, theta, sigma) -> np.ndarray:
    """``fn(theta, sigma)`` on broadcast arrays of cells, k results stacked first, as (theta, sigma, k)."""
    th = np.asarray(theta, dtype=np.float64)[:, None]
    sg = np.asarray(sigma, dtype=np.float64)[None, :]
    values = np.moveaxis(np.asarray(fn(th, sg)), 0, -1)
    return np.broadcast_to(values, (th.size, sg.size, values.shape[-1])).astype(np.float64)


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
    return _assemble(lambda requests, t, s: _expect(forms, requests, t, s), theta, sigma, _grid_broadcast)


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

    def expect(requests, t, s):
        g = {which: g_of[which](t + s * z) for which in dict.fromkeys(which for which, _ in requests)}
        return [float(np.sum(w * Q(z) * g[which])) for which, Q in requests]

    return _assemble(expect, theta, sigma, _grid_apply)


#: Every quantity of :func:`_assemble`: (key, which g, Q, divide by sigma^power).
_QUANTITIES = [(("grad", w), *_GRAD[w]) for w in WRT] + [(term, *_SECOND[term]) for term in TERMS]


def _assemble(expect, theta, sigma, over_grid) -> dict[str, np.ndarray]:
    """The results of :func:`exact` from ``expect(requests, t, s)``: E[Q(eps) g(t + s eps)] for each (g, Q)."""
    requests = [(which, Q) for _, which, Q, _ in _QUANTITIES]
    e = over_grid(lambda t, s: expect(requests, t, s), theta, sigma)  # (theta, sigma, quantity)
    sg = np.asarray(sigma, dtype=np.float64)[None, :]
    value = {key: e[..., i] / sg**power for i, (key, _, _, power) in enumerate(_QUANTITIES)}
    grad = np.stack([value[("grad", w)] for w in WRT], axis=-1)
    second = np.stack([value[term] for term in TERMS], axis=-1)
    grad_of_term = np.stack([grad[..., WRT.index(w)] for _, w in TERMS], axis=-1)
    return {"true_grad": grad, "per_sample_var": second - grad_of_term**2}


def score_means(objective: Objective, theta: float, sigma: float) -> tuple[float, float]:
    """E of the score terms, ``E[f eps] / sigma`` and ``E[f (eps^2 - 1)] / sigma``.

    Stein's lemma makes these equal the true gradients; used as a consistency check.
    """
    forms = objective.gaussian_forms()
    e = _expect(forms, [("f", _EPS), ("f", _EPS**2 - 1)], theta, sigma)
    return float(e[0]) / sigma, float(e[1]) / sigma

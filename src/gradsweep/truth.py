"""Exact gradients, exact means and exact variances of every estimator.

Every quantity an estimator's exact mean or variance needs is an expectation of
a product of factors like ``f(theta + c sigma eps)``, ``f'(theta + c sigma eps)``
and polynomials in ``eps`` (the score, a Taylor expansion), under one of three
laws of ``eps``: the standard normal, the Rayleigh law (pdf ``w exp(-w^2/2)``,
w > 0) and the double-sided Maxwell law (pdf ``m^2 phi(m)``).

For the built-ins, f and f' are sums of terms ``coef * poly(x) * exp(-A x^2 + B x)``
(:mod:`gradsweep.objectives`; B may be imaginary, which covers cos). At
``x = theta + c sigma eps`` each is such a term in eps (an :class:`EpsForm`), and
products of them stay in that form. Completing the square,

    E_normal[R(eps) exp(-a eps^2 + b eps + d)] = exp(d + b^2 / (2 lam)) / sqrt(lam) * E[R(Z)],
    Z ~ N(b / lam, 1 / lam),   lam = 1 + 2 a,

with the moments of Z from ``E[Z^j] = mu E[Z^(j-1)] + (j-1) v E[Z^(j-2)]``
(complex mu too). The double-sided Maxwell law is the normal one with weight
``eps^2``. The Rayleigh density is ``sqrt(2 pi) eps phi(eps)`` on eps > 0, so its
expectations are truncated moments ``T_j = E[Z^j 1{Z > 0}]``:
``T_0 = Phi(mu / sqrt(v))``, ``T_1 = mu T_0 + v phi_v(0)``, then the same recursion;
the scale factor is folded into ``T_0`` through the scaled complementary error
function, ``exp(z^2/2) Phi(z) = erfcx(-z / sqrt 2) / 2``, so nothing overflows.

The one expectation that is not of this kind, ``E[f(theta + sigma M) f(theta + u sigma M)]``
averaged over ``u ~ U(0, 1)`` (the coupled measure-valued d/dsigma), is a
Gauss-Legendre integral over u of closed forms (:data:`UNIFORM_NODES` nodes;
the integrand is analytic in u).

User objectives have no closed forms: their exact values are NaN, and the
constants their baselines need (E[f], E[f s^2]) come from Gauss-Hermite
quadrature (:func:`cell_constants`).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial.hermite_e import hermegauss
from numpy.polynomial.legendre import leggauss
from scipy.special import erfcx

from .estimators import ESTIMATORS, base
from .objectives import Objective

#: Gauss-Legendre nodes over u in (0, 1) for the coupled measure-valued d/dsigma cross term.
UNIFORM_NODES = 96
#: Gauss-Hermite nodes for user objectives' baseline constants.
HERMITE_NODES = 160
_SQRT_2PI = math.sqrt(2.0 * math.pi)


class EpsForm:
    """``sum_terms Re? poly(eps) exp(-a eps^2 + b eps + d)``, each coefficient an array over the cells.

    A term is ``(poly, a, b, d)``: ``poly`` has shape (degree + 1, *cells) (complex), ``a`` is real,
    ``b`` and ``d`` complex, all broadcast over the cells.
    """

    def __init__(self, terms):
        self.terms = list(terms)

    @staticmethod
    def constant(c) -> EpsForm:
        c = np.asarray(c, dtype=np.complex128)
        return EpsForm([(c[None], 0.0, 0.0, 0.0)])

    def __mul__(self, other: EpsForm) -> EpsForm:
        out = []
        for p1, a1, b1, d1 in self.terms:
            for p2, a2, b2, d2 in other.terms:
                out.append((_poly_product(p1, p2), a1 + a2, b1 + b2, d1 + d2))
        return EpsForm(out)

    def __add__(self, other: EpsForm) -> EpsForm:
        return EpsForm(self.terms + other.terms)

    def __sub__(self, other) -> EpsForm:
        if not isinstance(other, EpsForm):
            other = EpsForm.constant(other)
        return self + EpsForm([(-p, a, b, d) for p, a, b, d in other.terms])

    def centred(self, c) -> EpsForm:
        """``self - c`` with ``c`` and every purely polynomial term added into one polynomial, so large
        coefficients that cancel (2 theta - E[2 x], theta = 1e80) do so exactly, not leaving their rounding."""
        pure = [t for t in self.terms if all(np.all(np.asarray(v) == 0) for v in t[1:])]
        rest = [t for t in self.terms if not any(t is u for u in pure)]
        c = np.asarray(c, dtype=np.complex128)
        shape = np.broadcast_shapes(c.shape, *(p.shape[1:] for p, *_ in pure))
        poly = np.zeros((max([1] + [p.shape[0] for p, *_ in pure]), *shape), dtype=np.complex128)
        for p, *_ in pure:
            poly[: p.shape[0]] += p
        poly[0] -= c
        return EpsForm([(poly, 0.0, 0.0, 0.0), *rest])


def _poly_product(p1, p2):
    n1, n2 = p1.shape[0], p2.shape[0]
    shape = np.broadcast_shapes(p1.shape[1:], p2.shape[1:])
    out = np.zeros((n1 + n2 - 1, *shape), dtype=np.complex128)
    for i in range(n1):
        out[i : i + n2] += p1[i] * p2
    return out


def _shifted_poly(coefs, theta, sigma):
    """Coefficients in eps of ``poly(theta + sigma eps)`` (``coefs`` in x), shape (degree + 1, *cells)."""
    n = len(coefs)
    out = np.zeros((n, *np.broadcast_shapes(np.shape(theta), np.shape(sigma))), dtype=np.complex128)
    for p, c in enumerate(coefs):  # c (theta + sigma eps)^p, binomially
        for j in range(p + 1):
            out[j] += c * math.comb(p, j) * theta ** (p - j) * sigma**j
    return out


def _conjugate_pairs(terms):
    """The objective's terms ``Re[coef poly exp(-A x^2 + B x)]`` as plain complex terms: Re z = (z + conj z) / 2.

    Products of real parts are not real parts of products; of the pairs they are.
    """
    out = []
    for coef, poly, A, B, c in terms:
        if complex(coef).imag == 0 and complex(B).imag == 0:
            out.append((complex(coef).real, poly, A, complex(B).real, c))
        else:
            out += [(complex(coef) / 2, poly, A, complex(B), c), (complex(coef).conjugate() / 2, poly, A, complex(B).conjugate(), c)]
    return out


def _factor(a, b, d):
    """``(scale, mu, v, lam)``: ``exp(-a e^2 + b e + d) phi(e) = scale * density of N(mu, v)`` at e."""
    lam = 1.0 + 2.0 * np.asarray(a, dtype=np.float64)
    if np.any(lam <= 0):
        raise ValueError("the expectation diverges (1 + 2a <= 0)")
    return np.exp(d + b * b / (2.0 * lam)) / np.sqrt(lam), b / lam, 1.0 / lam, lam


def _normal_moments(mu, v, count):
    m = [np.ones_like(mu), mu]
    for j in range(2, count):
        m.append(mu * m[j - 1] + (j - 1) * v * m[j - 2])
    return m[:count]


class Moments:
    """Expectations over a (theta, sigma) grid for one built-in objective (see the module docstring).

    ``theta`` and ``sigma`` are 1-D; every result has shape (theta, sigma).
    """

    def __init__(self, objective: Objective, theta, sigma):
        forms = objective.gaussian_forms()
        if forms is None:
            raise ValueError("exact moments need a built-in objective")
        self.objective = objective
        self._forms = forms
        self.theta = np.asarray(theta, dtype=np.float64).reshape(-1, 1)
        self.sigma = np.asarray(sigma, dtype=np.float64).reshape(1, -1)
        self.shape = (self.theta.size, self.sigma.size)
        self._cache: dict = {}

    # --- factors ------------------------------------------------------------------------------
    def _at(self, which: str, c: float) -> EpsForm:
        key = (which, float(c))
        if key not in self._cache:
            th, sg = self.theta, c * self.sigma
            terms = []
            for coef, poly, A, B, centre in _conjugate_pairs(self._forms[which]):
                # -A (th + sg e)^2 + B (th + sg e) = -A sg^2 e^2 + sg (B - 2 A th) e + (B th - A th^2)
                p = coef * _shifted_poly(poly.coef, th - centre, sg)
                terms.append((p, A * sg * sg, sg * (B - 2.0 * A * th) + 0j, B * th - A * th * th + 0j))
            self._cache[key] = EpsForm(terms)
        return self._cache[key]

    def f(self, c: float = 1.0) -> EpsForm:
        """f(theta + c sigma eps)."""
        return self._at("f", c)

    def df(self, c: float = 1.0) -> EpsForm:
        """f'(theta + c sigma eps)."""
        return self._at("df", c)

    def poly(self, coefs) -> EpsForm:
        """The polynomial sum_j coefs[j] eps^j (coefficients numbers or arrays over the cells)."""
        p = np.zeros((len(coefs), *self.shape), dtype=np.complex128)
        for j, c in enumerate(coefs):
            p[j] = c
        return EpsForm([(p, 0.0, 0.0, 0.0)])

    def score(self, wrt: str) -> EpsForm:
        """d/dparam log p: eps / sigma or (eps^2 - 1) / sigma."""
        inv = 1.0 / self.sigma
        return self.poly([0.0, inv]) if wrt == "theta" else self.poly([-inv, 0.0, inv])

    def constant(self, name: str) -> np.ndarray:
        """f(theta), f'(theta) or f''(theta) ("f0", "df0", "d2f0") over the grid."""
        what = {"f0": "f", "df0": "df", "d2f0": "d2f"}[name]
        return np.broadcast_to(self.objective.evaluate(what, self.theta), self.shape)

    def taylor2(self) -> EpsForm:
        """h(theta + sigma eps), h the second-order Taylor expansion of f at theta."""
        s = self.sigma
        return self.poly([self.constant("f0"), self.constant("df0") * s, 0.5 * self.constant("d2f0") * s * s])

    # --- expectations -------------------------------------------------------------------------
    def normal(self, *factors: EpsForm) -> np.ndarray:
        """E[product of the factors], eps ~ N(0, 1)."""
        total = np.zeros(self.shape, dtype=np.complex128)
        for p, a, b, d in _product(factors).terms:
            scale, mu, v, _ = _factor(a, b, d)
            m = _normal_moments(mu + 0j, v, p.shape[0])
            total = total + scale * sum(p[j] * m[j] for j in range(p.shape[0]))
        return np.real(total)

    def variance(self, term: EpsForm, mean) -> np.ndarray:
        """Var[term] = E[(term - mean)^2], eps ~ N(0, 1), ``mean`` its exact mean: the mean is taken off
        inside the expectation (:meth:`EpsForm.centred`), so a variance far below term^2 keeps its digits
        where E[term^2] - mean^2 would cancel them (pathwise at sigma = 1e-8, theta = 2)."""
        centred = term.centred(mean)
        return self.normal(centred, centred)

    def maxwell(self, *factors: EpsForm) -> np.ndarray:
        """E[product], eps ~ double-sided Maxwell: the normal expectation with weight eps^2."""
        return self.normal(*factors, self.poly([0.0, 0.0, 1.0]))

    def rayleigh(self, *factors: EpsForm) -> np.ndarray:
        """E[product], eps ~ Rayleigh(1): sqrt(2 pi) E_normal[eps 1{eps > 0} product]."""
        total = np.zeros(self.shape, dtype=np.complex128)
        for p, a, b, d in _product(factors).terms:
            _, mu, v, lam = _factor(a, b, d)
            b = np.asarray(b, dtype=np.complex128)
            z = b / np.sqrt(lam)
            # T~_j = scale * E[Z^j 1{Z > 0}], Z ~ N(mu, v)
            t = [np.exp(d) / (2.0 * np.sqrt(lam)) * erfcx(-z / math.sqrt(2.0))]
            t.append(mu * t[0] + np.exp(d) / (lam * _SQRT_2PI))
            for j in range(2, p.shape[0] + 1):
                t.append(mu * t[j - 1] + (j - 1) * v * t[j - 2])
            total = total + _SQRT_2PI * sum(p[j] * t[j + 1] for j in range(p.shape[0]))
        return np.real(total)

    def maxwell_uniform_cross(self) -> np.ndarray:
        """E[f(theta + sigma M) f(theta + U sigma M)], M double-sided Maxwell, U ~ U(0, 1) independent."""
        u, w = leggauss(UNIFORM_NODES)
        u, w = (u + 1.0) / 2.0, w / 2.0
        f = self.f()
        return sum(wi * self.maxwell(f, self.f(ui)) for ui, wi in zip(u, w, strict=True))

    # --- the quantities estimators share ------------------------------------------------------
    def grad(self, wrt: str) -> np.ndarray:
        """The true gradient: E[f'(x)] (theta) or E[eps f'(x)] (sigma)."""
        key = ("grad", wrt)
        if key not in self._cache:
            weight = self.poly([1.0]) if wrt == "theta" else self.poly([0.0, 1.0])
            self._cache[key] = self.normal(self.df(), weight)
        return self._cache[key]

    def mean_f(self) -> np.ndarray:
        """E[f(x)], the mean baseline."""
        if "mean_f" not in self._cache:
            self._cache["mean_f"] = self.normal(self.f())
        return self._cache["mean_f"]

    def optimal_baseline(self, wrt: str) -> np.ndarray:
        """b* = E[f s^2] / E[s^2], the variance-minimising constant baseline."""
        s = self.score(wrt)
        return self.normal(self.f(), s, s) / self.normal(s, s)


def _product(factors) -> EpsForm:
    out = factors[0]
    for f in factors[1:]:
        out = out * f
    return out


def exact(objective: Objective, N, theta, sigma, estimators, wrt, dim: int = 1) -> dict[str, np.ndarray]:
    """Exact values over the grid: ``true_grad`` (theta, sigma, wrt), ``exact_mean`` and ``exact_var``
    (N, theta, sigma, estimator, wrt), in ``dim`` dimensions (f = sum of the objective over the coordinates,
    the gradient with respect to the first's mean and scale). NaN throughout for user objectives (no closed forms)."""
    shape = (np.size(N), np.size(theta), np.size(sigma), len(estimators), len(wrt))
    if not objective.is_builtin:
        nan = np.full(shape, np.nan)
        return {"true_grad": np.full((*shape[1:3], len(wrt)), np.nan), "exact_mean": nan, "exact_var": nan.copy()}
    m = Moments(objective, theta, sigma)
    mean, var = np.empty(shape), np.empty(shape)
    for i, name in enumerate(estimators):
        for j, w in enumerate(wrt):
            mu, v = ESTIMATORS[name].exact(m, w, N, int(dim))
            mean[..., i, j] = np.broadcast_to(mu, shape[:3])
            var[..., i, j] = np.maximum(np.broadcast_to(v, shape[:3]), 0.0)  # a zero variance can round below 0
    grad = np.stack([m.grad(w) for w in wrt], axis=-1)
    return {"true_grad": grad, "exact_mean": mean, "exact_var": var}


def cell_constants(objective: Objective, theta, sigma, estimators) -> np.ndarray:
    """The constants rows (theta, sigma, len(CONSTANTS)) the estimators' kernels read (see estimators.base).

    Baselines of built-ins are exact; of user objectives, by Gauss-Hermite quadrature.
    Constants no requested estimator reads are left NaN.
    """
    th = np.asarray(theta, dtype=np.float64).reshape(-1, 1)
    sg = np.asarray(sigma, dtype=np.float64).reshape(1, -1)
    shape = (th.size, sg.size)
    out = np.full((*shape, len(base.CONSTANTS)), np.nan)
    out[..., base.THETA] = th
    out[..., base.SIGMA] = sg
    out[..., base.INV_SIGMA] = 1.0 / sg
    out[..., base.K] = objective.k if objective.has_k else np.nan
    out[..., base.DIM] = 1.0
    needed = {c for name in estimators for c in ESTIMATORS[name].constants}
    for index, what in ((base.F0, "f"), (base.DF0, "df"), (base.D2F0, "d2f")):
        if index in needed:
            out[..., index] = objective.evaluate(what, th)
    baselines = needed & {base.MEAN_F, base.BSTAR_THETA, base.BSTAR_SIGMA}
    if baselines:
        if objective.is_builtin:
            m = Moments(objective, theta, sigma)
            mean_f, b_theta, b_sigma = m.mean_f(), m.optimal_baseline("theta"), m.optimal_baseline("sigma")
        else:
            mean_f, b_theta, b_sigma = _quadrature_baselines(objective, th, sg)
        out[..., base.MEAN_F] = mean_f
        out[..., base.BSTAR_THETA] = b_theta
        out[..., base.BSTAR_SIGMA] = b_sigma
    return out


def _quadrature_baselines(objective: Objective, th, sg):
    """E[f], E[f s^2]/E[s^2] for theta and sigma by Gauss-Hermite quadrature (user objectives)."""
    z, w = hermegauss(HERMITE_NODES)
    w = w / _SQRT_2PI
    fx = objective.evaluate("f", th[..., None] + sg[..., None] * z)  # (theta, sigma, node)
    mean_f = fx @ w
    # s^2 = eps^2 / sigma^2 or (eps^2 - 1)^2 / sigma^2; E[s^2] sigma^2 = 1 and 2
    b_theta = fx @ (w * z * z)
    b_sigma = fx @ (w * (z * z - 1.0) ** 2) / 2.0
    return mean_f, b_theta, b_sigma

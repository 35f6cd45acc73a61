"""``mvd``: the measure-valued estimator, coupled (both evaluations share their randomness).

d/dtheta: (f(theta + sigma W) - f(theta - sigma W)) / (sigma sqrt(2 pi)), W ~ Rayleigh(1);
d/dsigma: (f(theta + sigma M) - f(theta + sigma U M)) / sigma, M ~ double-sided Maxwell,
U ~ U(0, 1) (so U M ~ N(0, 1)).

Exact variances need expectations under the Rayleigh and double-sided Maxwell
laws, and for d/dsigma the cross term E[f(theta + sigma M) f(theta + u sigma M)]
integrated over u (:class:`gradsweep.truth.Moments`).
"""

import math

from .._jit import scalar
from ..objectives import value
from .base import INV_SIGMA, SIGMA, THETA, Estimator, Output, as_n, average

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@scalar(inline="always")
def mvd_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    d = p[SIGMA] * w
    return (value(code, p[THETA] + d, k) - value(code, p[THETA] - d, k)) * p[INV_SIGMA] * _INV_SQRT_2PI


@scalar(inline="always")
def mvd_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (value(code, p[THETA] + p[SIGMA] * m, k) - value(code, p[THETA] + p[SIGMA] * um, k)) * p[INV_SIGMA]


def exact(m, wrt, n, dim):
    # the other coordinates of dim dimensions do not enter (the two evaluations share them)
    g = m.grad(wrt)
    if wrt == "theta":
        plus, minus = m.f(1.0), m.f(-1.0)
        second = (m.rayleigh(plus, plus) + m.rayleigh(minus, minus) - 2.0 * m.rayleigh(plus, minus)) / (2.0 * math.pi)
    else:
        f = m.f()
        second = m.maxwell(f, f) + m.normal(f, f) - 2.0 * m.maxwell_uniform_cross()
    return g, (second / m.sigma**2 - g * g) / as_n(n)


ESTIMATOR = Estimator(
    name="mvd",
    description="measure-valued estimator, coupled: a weighted difference of f at two points "
    "(d/dtheta: theta +- sigma W, W ~ Rayleigh; d/dsigma: theta + sigma M and theta + sigma U M, M ~ double-sided Maxwell, U ~ U(0,1))",
    outputs={
        "theta": Output((mvd_theta,), average, frozenset({"w"}), "(f(theta + sigma W) - f(theta - sigma W)) / (sigma sqrt(2 pi))"),
        "sigma": Output((mvd_sigma,), average, frozenset({"eps", "m", "um"}), "(f(theta + sigma M) - f(theta + sigma U M)) / sigma"),
    },
    exact=exact,
    cost=2,
    needs=("f",),
    when="f not differentiable, or rough: needs only f, and its variance stays bounded where the score's grows",
)

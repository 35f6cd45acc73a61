"""``score_delta``: the score estimator with a delta-method control variate.

h is the second-order Taylor expansion of f at theta, held fixed:
h(x) = f(theta) + f'(theta)(x - theta) + f''(theta)(x - theta)^2 / 2, whose
expectation is known, so (f(x) - h(x)) s + dE[h]/dparam is unbiased with
dE[h]/dtheta = f'(theta) and dE[h]/dsigma = sigma f''(theta). Exact (zero
variance) for a quadratic f.
"""

from .._jit import scalar
from ..objectives import value
from .base import D2F0, DF0, F0, INV_SIGMA, SIGMA, THETA, Estimator, Output, with_rest


@scalar(inline="always")
def residual(fx, p, d):
    """f(x) - h(x) at x = theta + d, ``d`` = sigma eps."""
    return fx - (p[F0] + d * (p[DF0] + 0.5 * d * p[D2F0]))


@scalar(inline="always")
def delta_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (residual(fx, p, p[SIGMA] * eps) + r) * eps * p[INV_SIGMA]


@scalar(inline="always")
def delta_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (residual(fx, p, p[SIGMA] * eps) + r) * (eps * eps - 1.0) * p[INV_SIGMA]


@scalar
def plus_df0(s, n, p):
    return s * (1.0 / n) + p[DF0]


@scalar
def plus_sigma_d2f0(s, n, p):
    return s * (1.0 / n) + p[SIGMA] * p[D2F0]


@scalar(inline="always")
def other_residual(code, k, p, z):
    """Another coordinate's g - h (h is separable: each coordinate's own Taylor expansion at theta)."""
    d = p[SIGMA] * z
    return residual(value(code, p[THETA] + d, k), p, d)


def exact(m, wrt, n, dim):
    g = m.grad(wrt)
    s = m.score(wrt)
    r = m.f() - m.taylor2()
    shift = m.constant("df0") if wrt == "theta" else m.sigma * m.constant("d2f0")
    return g, with_rest(m, r * s, s, g - shift, dim, r, n)


ESTIMATOR = Estimator(
    name="score_delta",
    description="score-function estimator with the delta-method control variate h (2nd-order Taylor expansion of f at theta): "
    "(f(x) - h(x)) * d/dparam log p(x) + dE[h]/dparam",
    outputs={
        "theta": Output((delta_theta,), plus_df0, frozenset({"eps", "fx"}), "(f(x) - h(x)) eps / sigma + f'(theta)", other_residual),
        "sigma": Output(
            (delta_sigma,),
            plus_sigma_d2f0,
            frozenset({"eps", "fx"}),
            "(f(x) - h(x)) (eps^2 - 1) / sigma + sigma f''(theta)",
            other_residual,
        ),
    },
    exact=exact,
    cost=1,
    needs=("f", "df", "d2f"),
    when="f close to quadratic on the scale of sigma (exact for a quadratic); needs f' and f'' at theta",
    constants=(F0, DF0, D2F0),
)

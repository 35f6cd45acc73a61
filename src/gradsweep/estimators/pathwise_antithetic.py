"""``pathwise_antithetic``: the pathwise estimator averaged over the antithetic pair (eps, -eps).

d/dtheta: (f'(theta + sigma eps) + f'(theta - sigma eps)) / 2;
d/dsigma: (f'(theta + sigma eps) - f'(theta - sigma eps)) eps / 2.
"""

from .._jit import scalar
from ..objectives import derivative
from .base import SIGMA, THETA, Estimator, Output, as_n, average


@scalar(inline="always")
def antithetic_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    d = p[SIGMA] * eps
    return 0.5 * (dfx + derivative(code, p[THETA] - d, k))


@scalar(inline="always")
def antithetic_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    d = p[SIGMA] * eps
    return 0.5 * (dfx - derivative(code, p[THETA] - d, k)) * eps


def exact(m, wrt, n, dim):
    # the other coordinates of dim dimensions do not enter (df/dx_1 at x and at the antithetic point)
    g = m.grad(wrt)
    plus, minus = m.df(1.0), m.df(-1.0)
    sign = 1.0 if wrt == "theta" else -1.0
    weight = m.poly([1.0]) if wrt == "theta" else m.poly([0.0, 1.0])
    term = (plus + minus * m.poly([sign])) * weight * m.poly([0.5])
    return g, m.variance(term, g) / as_n(n)


ESTIMATOR = Estimator(
    name="pathwise_antithetic",
    description="pathwise estimator averaged over the antithetic pair (eps, -eps)",
    outputs={
        "theta": Output((antithetic_theta,), average, frozenset({"eps", "dfx"}), "(f'(theta + sigma eps) + f'(theta - sigma eps)) / 2"),
        "sigma": Output((antithetic_sigma,), average, frozenset({"eps", "dfx"}), "(f'(theta + sigma eps) - f'(theta - sigma eps)) eps / 2"),
    },
    exact=exact,
    cost=2,
    needs=("df",),
    when="f' nearly odd about theta (d/dtheta) or even (d/dsigma): the pair cancels; otherwise rarely worth its second evaluation",
)

"""``pathwise``: the pathwise (reparameterisation) estimator, f'(x) dx/dparam.

d/dtheta: f'(x);  d/dsigma: f'(x) eps.
"""

from .._jit import scalar
from .base import Estimator, Output, as_n, average


@scalar(inline="always")
def pathwise_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return dfx


@scalar(inline="always")
def pathwise_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return dfx * eps


def exact(m, wrt, n, dim):
    # the other coordinates of dim dimensions do not enter (df/dx_1 = g'(x_1))
    g = m.grad(wrt)
    weight = m.poly([1.0]) if wrt == "theta" else m.poly([0.0, 1.0])
    return g, m.variance(m.df() * weight, g) / as_n(n)


ESTIMATOR = Estimator(
    name="pathwise",
    description="pathwise (reparameterisation) estimator: f'(x) * dx/dparam with x = theta + sigma * eps",
    outputs={
        "theta": Output((pathwise_theta,), average, frozenset({"eps", "dfx"}), "f'(x)"),
        "sigma": Output((pathwise_sigma,), average, frozenset({"eps", "dfx"}), "f'(x) eps"),
    },
    exact=exact,
    cost=1,
    needs=("df",),
    when="f differentiable and smooth on the scale of sigma; usually the lowest variance per evaluation",
)

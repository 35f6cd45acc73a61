"""``score``: the score-function (likelihood-ratio, REINFORCE) estimator, f(x) times the score.

d/dtheta: f(x) eps / sigma;  d/dsigma: f(x) (eps^2 - 1) / sigma.
"""

from .._jit import scalar
from ..objectives import value
from .base import INV_SIGMA, SIGMA, THETA, Estimator, Output, average, with_rest


@scalar(inline="always")
def f_score_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx + r) * eps * p[INV_SIGMA]


@scalar(inline="always")
def f_score_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx + r) * (eps * eps - 1.0) * p[INV_SIGMA]


@scalar(inline="always")
def other_f(code, k, p, z):
    """f's term of another coordinate, g(theta + sigma z)."""
    return value(code, p[THETA] + p[SIGMA] * z, k)


def exact(m, wrt, n, dim):
    g = m.grad(wrt)
    s = m.score(wrt)
    return g, with_rest(m, m.f() * s, s, g, dim, m.f(), n)


ESTIMATOR = Estimator(
    name="score",
    description="score-function (likelihood-ratio, REINFORCE) estimator: f(x) * d/dparam log p(x)",
    outputs={
        "theta": Output((f_score_theta,), average, frozenset({"eps", "fx"}), "f(x) eps / sigma", other_f),
        "sigma": Output((f_score_sigma,), average, frozenset({"eps", "fx"}), "f(x) (eps^2 - 1) / sigma", other_f),
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="needs only f (black-box, non-differentiable f); variance grows with f's size and offset",
)

"""``score``: the score-function (likelihood-ratio, REINFORCE) estimator, f(x) times the score.

d/dtheta: f(x) eps / sigma;  d/dsigma: f(x) (eps^2 - 1) / sigma.
"""

from .._jit import scalar
from .base import INV_SIGMA, Estimator, Output, as_n, average


@scalar(inline="always")
def f_score_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2):
    return fx * eps * p[INV_SIGMA]


@scalar(inline="always")
def f_score_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2):
    return fx * (eps * eps - 1.0) * p[INV_SIGMA]


def exact(m, wrt, n):
    g = m.grad(wrt)
    s = m.score(wrt)
    return g, m.variance(m.f() * s, g) / as_n(n)


ESTIMATOR = Estimator(
    name="score",
    description="score-function (likelihood-ratio, REINFORCE) estimator: f(x) * d/dparam log p(x)",
    outputs={
        "theta": Output((f_score_theta,), average, frozenset({"eps", "fx"}), "f(x) eps / sigma"),
        "sigma": Output((f_score_sigma,), average, frozenset({"eps", "fx"}), "f(x) (eps^2 - 1) / sigma"),
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="needs only f (black-box, non-differentiable f); variance grows with f's size and offset",
)

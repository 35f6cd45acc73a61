"""``score_mean_baseline``: the score estimator with the exact mean b = E[f(x)] subtracted.

(f(x) - b) s; any constant baseline keeps it unbiased.
"""

from .._jit import scalar
from ..objectives import value
from .base import INV_SIGMA, MEAN_F, SIGMA, THETA, Estimator, Output, average, with_rest


@scalar(inline="always")
def mean_baseline_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[MEAN_F] + r) * eps * p[INV_SIGMA]


@scalar(inline="always")
def mean_baseline_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[MEAN_F] + r) * (eps * eps - 1.0) * p[INV_SIGMA]


@scalar(inline="always")
def other_centred(code, k, p, z):
    """Another coordinate's term of f minus its mean, g(theta + sigma z) - E[g]: the baseline E[f] is
    one E[g] per coordinate, taken off each so an offset of f cancels coordinate by coordinate."""
    return value(code, p[THETA] + p[SIGMA] * z, k) - p[MEAN_F]


def exact(m, wrt, n, dim):
    g = m.grad(wrt)
    s = m.score(wrt)
    centred = m.f() - m.mean_f()  # f(x) - b as an eps-form
    return g, with_rest(m, centred * s, s, g, dim, centred, n)


ESTIMATOR = Estimator(
    name="score_mean_baseline",
    description="score-function estimator with the exact mean baseline b = E[f(x)]: (f(x) - b) * d/dparam log p(x)",
    outputs={
        "theta": Output((mean_baseline_theta,), average, frozenset({"eps", "fx"}), "(f(x) - E[f]) eps / sigma", other_centred),
        "sigma": Output((mean_baseline_sigma,), average, frozenset({"eps", "fx"}), "(f(x) - E[f]) (eps^2 - 1) / sigma", other_centred),
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="removes f's offset; the usual cheap fix for the score estimator",
    constants=(MEAN_F,),
)

"""``score_optimal_baseline``: the score estimator with the variance-minimising constant baseline.

(f(x) - b*) s with b* = E[f s^2] / E[s^2], exact and per parameter.
"""

from .._jit import scalar
from .base import BSTAR_SIGMA, BSTAR_THETA, INV_SIGMA, MEAN_F, Estimator, Output, average, with_rest
from .score_mean_baseline import other_centred


@scalar(inline="always")
def optimal_baseline_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[BSTAR_THETA] + r) * eps * p[INV_SIGMA]


@scalar(inline="always")
def optimal_baseline_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[BSTAR_SIGMA] + r) * (eps * eps - 1.0) * p[INV_SIGMA]


def exact(m, wrt, n, dim):
    # In dim dimensions b* = E[g s^2] / E[s^2] + (dim - 1) E[g] (the other coordinates are independent of
    # s): one coordinate's b* and E[g] off each other coordinate (other_centred).
    g = m.grad(wrt)
    s = m.score(wrt)
    centred = m.f() - m.optimal_baseline(wrt)
    return g, with_rest(m, centred * s, s, g, dim, m.f() - m.mean_f(), n)


ESTIMATOR = Estimator(
    name="score_optimal_baseline",
    description="score-function estimator with the variance-minimising constant baseline b* = E[f s^2] / E[s^2] (exact, per parameter)",
    outputs={
        "theta": Output((optimal_baseline_theta,), average, frozenset({"eps", "fx"}), "(f(x) - b*) eps / sigma", other_centred),
        "sigma": Output((optimal_baseline_sigma,), average, frozenset({"eps", "fx"}), "(f(x) - b*) (eps^2 - 1) / sigma", other_centred),
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="the best any constant baseline can do: a floor for the score family",
    constants=(BSTAR_THETA, BSTAR_SIGMA, MEAN_F),
)

"""``score_mean_baseline``: the score estimator with the exact mean b = E[f(x)] subtracted.

(f(x) - b) s; any constant baseline keeps it unbiased.
"""

from .._jit import scalar
from .base import INV_SIGMA, MEAN_F, Estimator, Output, as_n, average


@scalar(inline="always")
def mean_baseline_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2):
    return (fx - p[MEAN_F]) * eps * p[INV_SIGMA]


@scalar(inline="always")
def mean_baseline_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2):
    return (fx - p[MEAN_F]) * (eps * eps - 1.0) * p[INV_SIGMA]


def exact(m, wrt, n):
    g = m.grad(wrt)
    s = m.score(wrt)
    centred = m.f() - m.mean_f()  # f(x) - b as an eps-form
    return g, m.variance(centred * s, g) / as_n(n)


ESTIMATOR = Estimator(
    name="score_mean_baseline",
    description="score-function estimator with the exact mean baseline b = E[f(x)]: (f(x) - b) * d/dparam log p(x)",
    outputs={
        "theta": Output((mean_baseline_theta,), average, frozenset({"eps", "fx"}), "(f(x) - E[f]) eps / sigma"),
        "sigma": Output((mean_baseline_sigma,), average, frozenset({"eps", "fx"}), "(f(x) - E[f]) (eps^2 - 1) / sigma"),
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="removes f's offset; the usual cheap fix for the score estimator",
    constants=(MEAN_F,),
)

"""``score_batch_baseline``: (1/N) sum_i (f_i - mean_j f_j) s_i, what people write naively; N >= 2.

The same three sums as :mod:`score_loo` (computed once when both are asked
for), finished with 1/N instead of 1/(N - 1): biased by the factor (N - 1)/N.
"""

from .._jit import scalar
from .base import F0, Estimator, Output, as_n
from .score_loo import centred_sum, other_shifted, sums, variance


@scalar
def batch_mean(sfs, sf, ss, n, p):
    return centred_sum(sfs, sf, ss, n) * (1.0 / n)


def exact(m, wrt, n, dim):
    shrink = (as_n(n) - 1.0) / as_n(n)
    return shrink * m.grad(wrt), shrink * shrink * variance(m, wrt, n, dim)


ESTIMATOR = Estimator(
    name="score_batch_baseline",
    description="score-function estimator with the batch mean as baseline: (1/N) sum_i (f_i - mean_j f_j) s_i, biased by (N-1)/N",
    outputs={
        w: Output(sums(w), batch_mean, frozenset({"eps", "fx"}), f"(1/N) sum_i (f_i - mean f) s_{w},i", other_shifted)
        for w in ("theta", "sigma")
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="its lower variance is only the (N-1)/N shrinkage, bought with a bias: score_loo has the same cost and none",
    min_n=2,
    constants=(F0,),
)

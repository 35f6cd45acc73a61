"""``score_loo``: the score estimator with the leave-one-out baseline (RLOO), unbiased, N >= 2.

(1 / (N - 1)) sum_i (f_i - mean_j f_j) s_i. A replicate sums three quantities
per parameter, sum f~ s, sum f~ and sum s, with f~ = f - f(theta): the estimate
is invariant to that per-cell shift, and the shift keeps an objective with a
large offset from cancelling away its digits.

Exact variance: the estimate is a U-statistic of order 2 with kernel
h(i, j) = (f_i - f_j)(s_i - s_j) / 2, so (Hoeffding)
Var = 4 (N - 2) / (N (N - 1)) zeta_1 + 2 / (N (N - 1)) zeta_2 with
zeta_1 = Var((f - E f) s) / 4 and zeta_2 = Var(h).
"""

from .._jit import scalar
from ..objectives import value
from .base import F0, INV_SIGMA, SIGMA, THETA, Estimator, Output, as_n, other_coordinates


@scalar(inline="always")
def shifted_f(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return fx - p[F0] + r


@scalar(inline="always")
def shifted_f_score_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[F0] + r) * eps * p[INV_SIGMA]


@scalar(inline="always")
def shifted_f_score_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (fx - p[F0] + r) * (eps * eps - 1.0) * p[INV_SIGMA]


@scalar(inline="always")
def score_theta(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return eps * p[INV_SIGMA]


@scalar(inline="always")
def score_sigma(code, k, p, eps, fx, dfx, w, w2, m, um, e2, r):
    return (eps * eps - 1.0) * p[INV_SIGMA]


@scalar(inline="always")
def other_shifted(code, k, p, z):
    """Another coordinate's term of f, shifted by g(theta) like the first's (the estimate ignores the shift)."""
    return value(code, p[THETA] + p[SIGMA] * z, k) - p[F0]


@scalar
def centred_sum(sfs, sf, ss, n):
    """sum_i (f_i - mean f) s_i from the three sums."""
    return sfs - sf * ss * (1.0 / n)


@scalar
def leave_one_out(sfs, sf, ss, n, p):
    return centred_sum(sfs, sf, ss, n) * (1.0 / (n - 1.0))


def sums(wrt):
    return (shifted_f_score_theta if wrt == "theta" else shifted_f_score_sigma, shifted_f, score_theta if wrt == "theta" else score_sigma)


def variance(m, wrt, n, dim):
    """Hoeffding's variance of the leave-one-out U-statistic of N samples.

    In ``dim`` dimensions f = g(x_1) + r with r independent of x_1; the estimate ignores r's mean, and
    its variance v adds v E[s^2] to E[f^2 s^2] and v to E[f^2]."""
    g = m.grad(wrt)
    s = m.score(wrt)
    f = m.f()
    mu = m.mean_f()
    _, v = other_coordinates(m, f, dim)
    es2 = m.normal(s, s)
    ef2s2 = m.normal(f, f, s, s) + v * es2
    efs2 = m.normal(f, s, s)
    ef2 = m.normal(f, f) + v
    zeta1 = (ef2s2 - 2.0 * mu * efs2 + mu * mu * es2 - g * g) / 4.0
    zeta2 = (ef2s2 + ef2 * es2 - 2.0 * mu * efs2 + 2.0 * g * g) / 2.0 - g * g
    n = as_n(n)
    return 4.0 * (n - 2.0) / (n * (n - 1.0)) * zeta1 + 2.0 / (n * (n - 1.0)) * zeta2


def exact(m, wrt, n, dim):
    return m.grad(wrt), variance(m, wrt, n, dim)


ESTIMATOR = Estimator(
    name="score_loo",
    description="score-function estimator with the leave-one-out baseline (RLOO): (1/(N-1)) sum_i (f_i - mean_j f_j) s_i",
    outputs={
        w: Output(sums(w), leave_one_out, frozenset({"eps", "fx"}), f"(1/(N-1)) sum_i (f_i - mean f) s_{w},i", other_shifted)
        for w in ("theta", "sigma")
    },
    exact=exact,
    cost=1,
    needs=("f",),
    when="a baseline from the batch itself, no model of E[f] needed; near the optimal baseline once N >= 4",
    min_n=2,
    constants=(F0,),
)

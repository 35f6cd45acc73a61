"""The per-sample terms of each gradient estimator, written once.

For ``L(theta, sigma) = E[f(x)]`` with ``x = theta + sigma * eps`` and
``eps ~ N(0, 1)``:

==========  ========================  ==============================
estimator   d/dtheta                  d/dsigma
==========  ========================  ==============================
score       f(x) * eps / sigma        f(x) * (eps**2 - 1) / sigma
pathwise    f'(x)                     f'(x) * eps
==========  ========================  ==============================

An N-sample estimate is the mean of N such terms. :func:`sample_terms` is the
single definition that every backend (CPU kernel, CUDA kernel) calls; the
order of its four results is :data:`TERMS`.
"""

from __future__ import annotations

from ._jit import scalar

ESTIMATORS = ("score", "pathwise")
WRT = ("theta", "sigma")
#: (estimator, wrt) of each of the four per-sample terms, in kernel order.
TERMS = tuple((e, w) for e in ESTIMATORS for w in WRT)
N_TERMS = len(TERMS)

DESCRIPTIONS = {
    "score": "score-function (likelihood-ratio, REINFORCE) estimator: f(x) * d/dparam log p(x)",
    "pathwise": "pathwise (reparameterisation) estimator: f'(x) * dx/dparam with x = theta + sigma * eps",
}


def term_index(estimator: str, wrt: str) -> int:
    """Position of the (estimator, wrt) term in the kernels' output."""
    return TERMS.index((estimator, wrt))


@scalar
def sample_terms(fx, dfx, eps, inv_sigma):
    """The four per-sample terms (score-theta, score-sigma, pathwise-theta, pathwise-sigma)."""
    s = fx * inv_sigma
    return s * eps, s * (eps * eps - 1.0), dfx, dfx * eps

"""The gradient estimators, one module each; this registry is the only place that lists them.

With ``x = theta + sigma * eps``, ``eps ~ N(0, 1)`` and the score ``s = eps / sigma``
(d/dtheta) or ``(eps^2 - 1) / sigma`` (d/dsigma), every estimator averages
per-sample quantities over the N samples of a replicate and finishes them into
the replicate's estimate; :mod:`.base` says what a unit holds. Kernels, truth,
config and dataset read :data:`ESTIMATORS` and never name an estimator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from . import (
    mvd,
    mvd_uncoupled,
    pathwise,
    pathwise_antithetic,
    score,
    score_batch_baseline,
    score_delta,
    score_loo,
    score_mean_baseline,
    score_optimal_baseline,
)
from .base import CONSTANTS, DRAWN, VARIATES, WRT, Estimator, Output

_UNITS = (
    score,
    score_mean_baseline,
    score_optimal_baseline,
    score_loo,
    score_batch_baseline,
    score_delta,
    pathwise,
    pathwise_antithetic,
    mvd,
    mvd_uncoupled,
)
#: Every estimator by name, in the order "all" lists them.
ESTIMATORS: dict[str, Estimator] = {u.ESTIMATOR.name: u.ESTIMATOR for u in _UNITS}
NAMES = tuple(ESTIMATORS)
DESCRIPTIONS = {name: e.description for name, e in ESTIMATORS.items()}


def outputs(estimators, wrt) -> list[tuple[str, str]]:
    """The (estimator, wrt) outputs of a sweep, in the dataset's order (estimator-major)."""
    return [(e, w) for e in estimators for w in wrt]


@dataclass(frozen=True)
class Layout:
    """What the kernels compute for a choice of estimators and wrt, read from the units.

    ``sums``: the distinct per-sample quantity functions, in kernel order (a function two
    outputs share is summed once); ``output_sums[o]``: the positions in ``sums`` of output
    o's sums, in its finish's argument order; ``finishes[o]``; ``variates``: the union.
    """

    outputs: tuple[tuple[str, str], ...]
    sums: tuple[Callable, ...]
    output_sums: tuple[tuple[int, ...], ...]
    finishes: tuple[Callable, ...]
    variates: frozenset[str]


@functools.cache
def layout(estimators: tuple[str, ...], wrt: tuple[str, ...]) -> Layout:
    """The :class:`Layout` of the outputs of ``estimators`` x ``wrt`` (estimator-major)."""
    sums: list[Callable] = []
    output_sums, finishes, variates = [], [], set()
    pairs = tuple(outputs(estimators, wrt))
    for e, w in pairs:
        out = ESTIMATORS[e].outputs[w]
        for q in out.sums:
            if q not in sums:
                sums.append(q)
        output_sums.append(tuple(sums.index(q) for q in out.sums))
        finishes.append(out.finish)
        variates |= out.variates
    return Layout(pairs, tuple(sums), tuple(output_sums), tuple(finishes), frozenset(variates))


__all__ = [
    "CONSTANTS",
    "DESCRIPTIONS",
    "DRAWN",
    "ESTIMATORS",
    "NAMES",
    "VARIATES",
    "WRT",
    "Estimator",
    "Layout",
    "Output",
    "layout",
    "outputs",
]

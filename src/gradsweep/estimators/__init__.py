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


#: The two outputs each compared pair of estimators adds per wrt: the replicate estimates' sum and difference.
COMBINATIONS = ("sum", "difference")


@dataclass(frozen=True)
class Layout:
    """What the kernels compute for a choice of estimators, wrt and compared pairs, read from the units.

    ``sums``: the distinct per-sample quantity functions, in kernel order (a function two
    outputs share is summed once); ``output_sums[o]``: the positions in ``sums`` of output
    o's sums, in its finish's argument order; ``finishes[o]``; ``variates``: the union.
    ``pairs``: per compared pair of estimators (:data:`COMBINATIONS`) and wrt, the two
    outputs (a, b) whose replicate estimates are added and subtracted into outputs of their
    own after the estimators' (a pair's joint fourth moments come from those states: see
    :mod:`gradsweep.analysis`); outputs ``len(outputs) + 2 i`` and ``+ 2 i + 1`` for pair i.
    ``rests``: for sweeps with more than one dimension, the distinct functions summed over a
    sample's other coordinates (:class:`Output`'s ``rest``), and ``sum_rests[t]`` the one whose
    sum sum t reads as ``r`` (-1: none, r = 0).
    """

    outputs: tuple[tuple[str, str], ...]
    sums: tuple[Callable, ...]
    output_sums: tuple[tuple[int, ...], ...]
    finishes: tuple[Callable, ...]
    variates: frozenset[str]
    pairs: tuple[tuple[int, int], ...] = ()
    rests: tuple[Callable, ...] = ()
    sum_rests: tuple[int, ...] = ()

    @property
    def n_outputs(self) -> int:
        """Outputs the kernels write per cell: the estimators' and two per compared pair."""
        return len(self.outputs) + 2 * len(self.pairs)

    def estimate(self, o: int, total: Callable[[int], str], n: str = "n", p: str = "p") -> str:
        """Source of output ``o``'s estimate of a replicate, given ``total(t)``, the source of its sum t:
        ``fin{o}(...)`` for an estimator's output, ``(a) + (b)`` or ``(a) - (b)`` for a pair's."""
        if o < len(self.outputs):
            return f"fin{o}({', '.join(total(t) for t in self.output_sums[o])}, {n}, {p})"
        a, sign, b = self.combined(o)
        return f"{self.estimate(a, total, n, p)} {sign} {self.estimate(b, total, n, p)}"

    def combined(self, o: int) -> tuple[int, str, int]:
        """A pair's output ``o`` as (a, "+" or "-", b): the estimators' outputs it adds or subtracts."""
        a, b = self.pairs[(o - len(self.outputs)) // 2]
        return a, "-" if (o - len(self.outputs)) % 2 else "+", b


def pair_outputs(estimators, wrt, compare) -> tuple[tuple[int, int], ...]:
    """The (a, b) output indices of each compared pair (``compare``: estimator name pairs), per wrt, in
    the order their sum and difference outputs follow the estimators': pair-major, then wrt."""
    index = {o: i for i, o in enumerate(outputs(estimators, wrt))}
    return tuple((index[a, w], index[b, w]) for a, b in compare for w in wrt)


@functools.cache
def layout(
    estimators: tuple[str, ...], wrt: tuple[str, ...], compare: tuple[tuple[str, str], ...] = (), coordinates: bool = False
) -> Layout:
    """The :class:`Layout` of the outputs of ``estimators`` x ``wrt`` (estimator-major) and the ``compare`` pairs;
    with ``coordinates``, the sums over a sample's other coordinates that a sweep over ``dim`` needs."""
    sums: list[Callable] = []
    output_sums, finishes, variates, rest_of = [], [], set(), {}
    names = tuple(outputs(estimators, wrt))
    for e, w in names:
        out = ESTIMATORS[e].outputs[w]
        for q in out.sums:
            if q not in sums:
                sums.append(q)
            if rest_of.setdefault(q, out.rest) is not out.rest:
                raise ValueError(f"{e}/{w}: a sum shared with another output must sum the same rest over the other coordinates")
        output_sums.append(tuple(sums.index(q) for q in out.sums))
        finishes.append(out.finish)
        variates |= out.variates
    compared = pair_outputs(estimators, wrt, compare)
    rests = tuple(dict.fromkeys(rest_of[q] for q in sums if rest_of[q] is not None)) if coordinates else ()
    sum_rests = tuple(rests.index(rest_of[q]) if rest_of[q] in rests else -1 for q in sums)
    return Layout(names, tuple(sums), tuple(output_sums), tuple(finishes), frozenset(variates), compared, rests, sum_rests)


__all__ = [
    "COMBINATIONS",
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
    "pair_outputs",
]

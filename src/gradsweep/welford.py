"""Mergeable streaming moments: make, merge, finish.

A state is (n, mean, M2, M3, M4), where ``Mp = sum (x_i - mean)**p``. Two
states merge exactly (Chan et al. 1979 for M2; Pebay 2008 for M3 and M4), so
any partition of the data merged in a fixed order gives a fixed result. The
deviations are always taken from the running mean, never from zero, so an
offset of 1e8 on data of spread 1 keeps the variance to full precision.

One merge, :func:`merge`, serves everything: adding one value (a state with
n = 1), folding blocks inside a kernel, combining dask results and extending
a file with more replicates. Where a push per value would cost more than
drawing the value (the replicate estimates of small N), a kernel sums the
powers of the values' deviations from a shift near their mean, in lanes that
vectorise, and turns the sums into one state (:func:`from_power_sums`).

Array layout: a state array has shape ``(..., 5)`` with the last axis
``[n, mean, M2, M3, M4]`` (n stored as float64, exact up to 2**53).
"""

from __future__ import annotations

import numpy as np

from ._jit import scalar, serial

N, MEAN, M2, M3, M4 = range(5)
FIELDS = ("count", "mean", "m2", "m3", "m4")


@scalar
def merge(na, ma, m2a, m3a, m4a, nb, mb, m2b, m3b, m4b):
    """Merge state b into state a; returns the merged (n, mean, M2, M3, M4)."""
    if nb == 0.0:
        return na, ma, m2a, m3a, m4a
    if na == 0.0:
        return nb, mb, m2b, m3b, m4b
    n = na + nb
    d = mb - ma
    dn = d / n
    dn2 = dn * dn
    nanb = na * nb
    mean = ma + nb * dn
    m2 = m2a + m2b + d * dn * nanb
    m3 = m3a + m3b + d * dn2 * nanb * (na - nb) + 3.0 * dn * (na * m2b - nb * m2a)
    m4 = (
        m4a
        + m4b
        + d * dn2 * dn * nanb * (na * na - nanb + nb * nb)
        + 6.0 * dn2 * (na * na * m2b + nb * nb * m2a)
        + 4.0 * dn * (na * m3b - nb * m3a)
    )
    return n, mean, m2, m3, m4


@scalar
def push(state, i, x):
    """Add one value ``x`` to row ``i`` of a state array (in place)."""
    n, m, a2, a3, a4 = merge(state[i, 0], state[i, 1], state[i, 2], state[i, 3], state[i, 4], 1.0, x, 0.0, 0.0, 0.0)
    state[i, 0] = n
    state[i, 1] = m
    state[i, 2] = a2
    state[i, 3] = a3
    state[i, 4] = a4


@scalar
def mean_of(x, at, lo, hi):
    """The mean of ``x[at + lo : at + hi]`` (``at`` a uint64; lo < hi)."""
    total = 0.0
    for q in range(hi - lo):
        total += x[at + np.uint64(lo + q)]
    return total / (hi - lo)


@scalar(inline="always")
def _powers(d):
    d2 = d * d
    return d, d2, d2 * d, d2 * d2


@scalar
def add_powers(powers, at, lanes, x, x_at, lo, hi, shift):
    """Add the powers 1-4 of ``x[x_at + r] - shift`` into lane r of ``powers[at + p * lanes + r]``
    (p = 0..3) for r in lo .. hi - 1. Unsigned indices, lanes apart: a loop LLVM vectorises."""
    l1 = np.uint64(lanes)
    l2 = l1 + l1
    l3 = l2 + l1
    for q in range(hi - lo):
        r = np.uint64(lo + q)
        p1, p2, p3, p4 = _powers(x[x_at + r] - shift)
        powers[at + r] += p1
        powers[at + l1 + r] += p2
        powers[at + l2 + r] += p3
        powers[at + l3 + r] += p4


@scalar
def add_pair_powers(powers, at, lanes, x, x_at, y_at, lo, hi, shift):
    """As :func:`add_powers` for two runs of values at once, ``x[x_at + r]`` and ``x[y_at + r]``: lane r
    gets the sum of their powers, so each lane is read and written once per two values."""
    l1 = np.uint64(lanes)
    l2 = l1 + l1
    l3 = l2 + l1
    for q in range(hi - lo):
        r = np.uint64(lo + q)
        a1, a2, a3, a4 = _powers(x[x_at + r] - shift)
        b1, b2, b3, b4 = _powers(x[y_at + r] - shift)
        powers[at + r] += a1 + b1
        powers[at + l1 + r] += a2 + b2
        powers[at + l2 + r] += a3 + b3
        powers[at + l3 + r] += a4 + b4


@scalar(inline="always")
def from_power_sums(n, shift, s1, s2, s3, s4):
    """The state (n, mean, M2, M3, M4) of n values whose deviations d from ``shift`` have the
    power sums ``s1 = sum d``, ..., ``s4 = sum d^4``.

    With the shift near the mean (its deviation c = s1 / n a fraction of the spread) the
    conversion to central moments cancels little, so no precision is lost to a large mean.
    """
    c = s1 / n
    m2 = s2 - s1 * c
    m3 = s3 - 3.0 * c * s2 + 2.0 * n * c * c * c
    m4 = s4 - 4.0 * c * s3 + 6.0 * c * c * s2 - 3.0 * n * c * c * c * c
    return n, shift + c, max(m2, 0.0), m3, max(m4, 0.0)


@serial
def _merge_rows(a, b):
    for i in range(a.shape[0]):
        n, m, a2, a3, a4 = merge(a[i, 0], a[i, 1], a[i, 2], a[i, 3], a[i, 4], b[i, 0], b[i, 1], b[i, 2], b[i, 3], b[i, 4])
        a[i, 0] = n
        a[i, 1] = m
        a[i, 2] = a2
        a[i, 3] = a3
        a[i, 4] = a4


def empty(shape: tuple[int, ...]) -> np.ndarray:
    """A state array of leading shape ``shape`` holding no data."""
    return np.zeros((*shape, 5), dtype=np.float64)


def from_values(values, axis: int = 0) -> np.ndarray:
    """The exact state of ``values`` along ``axis`` (two-pass; for tests and reference)."""
    x = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    dev = x - mean[..., None]
    return np.stack([np.full(mean.shape, float(n)), mean, (dev**2).sum(-1), (dev**3).sum(-1), (dev**4).sum(-1)], axis=-1)


def merged(a, b) -> np.ndarray:
    """A new state array: ``a`` merged with ``b`` (same shapes), a first."""
    a = np.array(a, dtype=np.float64, copy=True)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.shape[-1] != 5:
        raise ValueError(f"cannot merge states of shapes {a.shape} and {b.shape}")
    flat = a.reshape(-1, 5)
    _merge_rows(flat, np.ascontiguousarray(b.reshape(-1, 5)))
    return flat.reshape(a.shape)


def finish(state) -> dict[str, np.ndarray]:
    """Statistics of a state array: count, mean, var, and their standard errors.

    * ``var`` is the unbiased variance ``M2 / (n - 1)``;
    * ``mean_se = sqrt(var / n)``;
    * ``var_se`` is the standard error of ``var``, from the fourth central moment:
      ``Var(s^2) ~ (m4 - (n - 3) / (n - 1) * s^4) / n`` with ``m4 = M4 / n``
      (exact for the variance of s^2 up to O(1/n^2) terms; clipped at zero).

    Cells with fewer than two values get NaN for ``var`` and both errors.
    """
    s = np.asarray(state, dtype=np.float64)
    n = s[..., N]
    with np.errstate(divide="ignore", invalid="ignore"):
        var = np.where(n >= 2, s[..., M2] / (n - 1.0), np.nan)
        m4 = s[..., M4] / n
        var_of_var = (m4 - (n - 3.0) / (n - 1.0) * var**2) / n
        var_se = np.where(n >= 2, np.sqrt(np.clip(var_of_var, 0.0, None)), np.nan)
        mean_se = np.where(n >= 2, np.sqrt(var / n), np.nan)
    return {"count": n, "mean": np.where(n > 0, s[..., MEAN], np.nan), "var": var, "mean_se": mean_se, "var_se": var_se}


@serial
def fold(state, rows, parts):
    """Merge ``parts[u]`` into ``state[rows[u]]`` for u = 0, 1, ... in that order.

    ``state`` is (cells, terms, 5), ``parts`` (units, terms, 5); the fixed loop
    order is what makes the result independent of how the parts were computed.
    """
    for u in range(rows.size):
        c = rows[u]
        for t in range(state.shape[1]):
            a = state[c, t]
            b = parts[u, t]
            n, m, a2, a3, a4 = merge(a[0], a[1], a[2], a[3], a[4], b[0], b[1], b[2], b[3], b[4])
            a[0] = n
            a[1] = m
            a[2] = a2
            a[3] = a3
            a[4] = a4


def merge_runs(parts, run, size: int) -> np.ndarray:
    """States (size, ...): row u is the ``parts`` whose ``run`` is u, merged in their order (:func:`fold`)."""
    out = empty((size, *parts.shape[1:-1]))
    fold(out.reshape(size, -1, 5), np.ascontiguousarray(run), np.ascontiguousarray(parts).reshape(len(parts), -1, 5))
    return out

"""The CPU backend: numba ``prange`` kernels over a plan's chunk items.

Two kernels per batch of units:

1. :func:`chunk_sums` — in parallel over chunk items: draw the item's normals
   a block at a time (a vectorised fill that stays in L1 cache), and for every
   cell of the item's group add the four per-sample terms
   (:func:`gradsweep.estimators.sample_terms`) into LANES fixed lanes per term
   (:func:`add_terms`, a vectorised elementwise loop; no sum is reassociated),
   then add the lanes in lane order;
2. :func:`unit_states` — in parallel over units: add each replicate's chunk
   sums in chunk order, divide by N, and push the replicate's estimate into
   the unit's Welford state in replicate order.

No step depends on which thread runs which item, so results are bit-identical
for any thread count.

The kernels for built-in objectives close over the objective's code (an int),
which numba folds at compile time and which keeps them cacheable on disk. A
user objective gets the same sources (the kernel and :func:`add_terms`) with
``value`` and ``derivative`` rebound to the user's functions, compiled without
the cache (numba's cache key does not see rebound globals, so caching it would
be unsafe).
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import prange

from . import objectives
from ._jit import kernel, rebind, scalar
from .estimators import N_TERMS, sample_terms
from .objectives import USER, Objective, derivative, value
from .philox import fill_normal_pairs, seed_key
from .plan import Plan, chunk_items
from .welford import push

#: Normal pairs drawn per block: two arrays of BLOCK doubles stay in L1 cache.
BLOCK = 256
#: Partial sums per (cell, term): the k-th sample of a block pass goes to lane k % LANES.
#: Adding a row of LANES terms into LANES lanes is an elementwise loop, which LLVM
#: vectorises without reassociating anything (a running scalar sum it would not touch).
LANES = 32


@scalar(inline="always")
def add_terms(z, n, lanes, base, theta, sigma, inv_sigma, code, k):
    """Add the terms of samples ``z[:n]`` of one cell into ``lanes[base : base + 4 * LANES]``.

    Term t of sample j goes to ``lanes[base + t * LANES + j % LANES]``. Whole rows
    of LANES samples run with a constant trip count, which is what vectorises.
    """

    def add_row(row, count):
        for j in range(count):
            e = z[row + j]
            x = theta + sigma * e
            t0, t1, t2, t3 = sample_terms(value(code, x, k), derivative(code, x, k), e, inv_sigma)
            lanes[base + j] += t0
            lanes[base + LANES + j] += t1
            lanes[base + 2 * LANES + j] += t2
            lanes[base + 3 * LANES + j] += t3

    rows = n // LANES
    for r in range(rows):
        add_row(r * LANES, LANES)
    add_row(rows * LANES, n - rows * LANES)


def _chunk_sums_source(code):
    def chunk_sums(k0, k1, k, item_cell0, item_stream, item_rep, item_start, item_stop, cell_theta, cell_sigma, out):
        width = out.shape[1]
        for i in prange(item_cell0.size):
            rep = np.uint64(item_rep[i])
            stream = np.uint64(item_stream[i])
            cell0 = item_cell0[i]
            stop = item_stop[i]
            first_pair = item_start[i] // 2  # chunks start on even samples
            end_pair = (stop + 1) // 2
            z_even = np.empty(BLOCK)
            z_odd = np.empty(BLOCK)
            lanes = np.zeros(width * 4 * LANES)  # flat, so LLVM sees constant distances between terms
            for p0 in range(first_pair, end_pair, BLOCK):
                count = min(BLOCK, end_pair - p0)
                fill_normal_pairs(k0, k1, p0, count, rep, stream, z_even, z_odd)
                # odd N: the last pair's second normal is not a sample
                count_odd = count - 1 if (p0 + count == end_pair and stop % 2 == 1) else count
                for g in range(width):
                    theta = cell_theta[cell0 + g]
                    sigma = cell_sigma[cell0 + g]
                    inv_sigma = 1.0 / sigma
                    base = g * 4 * LANES
                    add_terms(z_even, count, lanes, base, theta, sigma, inv_sigma, code, k)
                    add_terms(z_odd, count_odd, lanes, base, theta, sigma, inv_sigma, code, k)
            for g in range(width):
                for t in range(4):
                    total = 0.0
                    for j in range(LANES):
                        total += lanes[(g * 4 + t) * LANES + j]
                    out[i, g, t] = total

    return chunk_sums


@kernel
def unit_states(sums, unit_offset, unit_nrep, unit_n, out):
    """Fold chunk sums (items x cells x terms) into Welford states (units x cells x terms x 5)."""
    for u in prange(unit_nrep.size):
        nrep = unit_nrep[u]
        per_rep = (unit_offset[u + 1] - unit_offset[u]) // nrep
        inv_n = 1.0 / unit_n[u]
        state = np.zeros(out.shape[1:])
        for r in range(nrep):
            first = unit_offset[u] + r * per_rep
            for g in range(sums.shape[1]):
                for t in range(sums.shape[2]):
                    total = 0.0
                    for j in range(first, first + per_rep):
                        total += sums[j, g, t]
                    push(state[g], t, total * inv_n)
        out[u] = state


@functools.cache
def _builtin_chunk_sums(code: int):
    return kernel(_chunk_sums_source(code))


def _jitted(fn):
    return fn if isinstance(fn, numba.core.dispatcher.Dispatcher) else numba.njit(fn)


def _user_chunk_sums(f, df):
    value_fn = scalar(rebind(objectives.user_value, user_f=_jitted(f)), cache=False)
    if df is None:
        derivative_fn = scalar(objectives.no_derivative, cache=False)
    else:
        derivative_fn = scalar(rebind(objectives.user_derivative, user_df=_jitted(df)), cache=False)
    # the kernel's helper that evaluates the objective is rebound too, not only the kernel
    user_add_terms = scalar(rebind(add_terms, value=value_fn, derivative=derivative_fn), cache=False, inline="always")
    return kernel(rebind(_chunk_sums_source(USER), add_terms=user_add_terms), cache=False)


_user_kernels: dict[int, tuple] = {}


def chunk_sums_kernel(objective: Objective):
    """The compiled chunk-sum kernel for ``objective`` (built once per process)."""
    if objective.is_builtin:
        return _builtin_chunk_sums(objective.code)
    key = id(objective.f), id(objective.df)
    if key not in _user_kernels:  # keep the functions alive with the kernel
        _user_kernels[key] = (objective.f, objective.df, _user_chunk_sums(objective.f, objective.df))
    return _user_kernels[key][2]


def compute_units(objective: Objective, seed: int, cell_theta, cell_sigma, plan: Plan) -> np.ndarray:
    """Welford states (units x cells-per-group x terms x 5) of the units of ``plan``."""
    k0, k1 = seed_key(seed)
    k = float(objective.k) if objective.is_builtin else 0.0
    item_unit, item_rep, item_start, item_stop, offset = chunk_items(plan)
    sums = np.empty((item_unit.size, plan.width, N_TERMS))
    chunk_sums_kernel(objective)(
        k0,
        k1,
        k,
        np.ascontiguousarray(plan.cell0[item_unit]),
        np.ascontiguousarray(plan.stream[item_unit]),
        item_rep,
        item_start,
        item_stop,
        np.ascontiguousarray(cell_theta, dtype=np.float64),
        np.ascontiguousarray(cell_sigma, dtype=np.float64),
        sums,
    )
    out = np.empty((plan.size, plan.width, N_TERMS, 5))
    unit_states(sums, offset, plan.nrep, plan.n, out)
    return out

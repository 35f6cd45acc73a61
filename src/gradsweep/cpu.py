"""The CPU backend: numba ``prange`` kernels over a plan's chunk items.

Two kernels per batch of units:

1. :func:`chunk_sums` — in parallel over chunk items, draw each item's normals
   and sum the four per-sample terms (:func:`gradsweep.estimators.sample_terms`);
2. :func:`unit_states` — in parallel over units, add each replicate's chunk sums
   in chunk order, divide by N, and push the replicate's estimate into the
   unit's Welford state in replicate order.

No step depends on which thread runs which item, so results are bit-identical
for any thread count.

The kernels for built-in objectives close over the objective's code (an int),
which numba folds at compile time and which keeps them cacheable on disk. A
user objective gets the same kernel source with ``value`` and ``derivative``
rebound to the user's functions, compiled without the cache (numba's cache key
does not see rebound globals, so caching it would be unsafe).
"""

from __future__ import annotations

import functools
import types

import numba
import numpy as np
from numba import prange

from ._jit import kernel, scalar
from .estimators import N_TERMS, sample_terms
from .objectives import USER, Objective, derivative, value
from .philox import fill_normal_pairs, seed_key
from .plan import Plan, chunk_items
from .welford import push

#: Normal pairs drawn per block: two arrays of BLOCK doubles stay in L1 cache.
BLOCK = 256


def _chunk_sums_source(code):
    def chunk_sums(k0, k1, k, item_theta, item_sigma, item_stream, item_rep, item_start, item_stop, out):
        for i in prange(item_theta.size):
            theta = item_theta[i]
            sigma = item_sigma[i]
            inv_sigma = 1.0 / sigma
            rep = np.uint64(item_rep[i])
            stream = np.uint64(item_stream[i])
            stop = item_stop[i]
            first_pair = item_start[i] // 2  # chunks start on even samples
            end_pair = (stop + 1) // 2
            z_even = np.empty(BLOCK)
            z_odd = np.empty(BLOCK)
            s0 = s1 = s2 = s3 = 0.0
            for p0 in range(first_pair, end_pair, BLOCK):
                count = min(BLOCK, end_pair - p0)
                fill_normal_pairs(k0, k1, p0, count, rep, stream, z_even, z_odd)
                # odd N: the last pair's second normal is not a sample
                count_odd = count - 1 if (p0 + count == end_pair and stop % 2 == 1) else count
                for j in range(count):
                    z = z_even[j]
                    x = theta + sigma * z
                    t0, t1, t2, t3 = sample_terms(value(code, x, k), derivative(code, x, k), z, inv_sigma)
                    s0 += t0
                    s1 += t1
                    s2 += t2
                    s3 += t3
                for j in range(count_odd):
                    z = z_odd[j]
                    x = theta + sigma * z
                    t0, t1, t2, t3 = sample_terms(value(code, x, k), derivative(code, x, k), z, inv_sigma)
                    s0 += t0
                    s1 += t1
                    s2 += t2
                    s3 += t3
            out[i, 0] = s0
            out[i, 1] = s1
            out[i, 2] = s2
            out[i, 3] = s3

    return chunk_sums


@kernel
def unit_states(sums, unit_offset, unit_nrep, unit_n, out):
    """Fold chunk sums into one Welford state per unit and term (``out``: units x terms x 5)."""
    for u in prange(unit_nrep.size):
        nrep = unit_nrep[u]
        per_rep = (unit_offset[u + 1] - unit_offset[u]) // nrep
        inv_n = 1.0 / unit_n[u]
        state = np.zeros((sums.shape[1], 5))
        for r in range(nrep):
            first = unit_offset[u] + r * per_rep
            for t in range(sums.shape[1]):
                total = 0.0
                for j in range(first, first + per_rep):
                    total += sums[j, t]
                push(state, t, total * inv_n)
        out[u] = state


@functools.cache
def _builtin_chunk_sums(code: int):
    return kernel(_chunk_sums_source(code))


def _user_chunk_sums(f, df):
    f_jit = numba.njit(f) if not isinstance(f, numba.core.dispatcher.Dispatcher) else f
    if df is None:

        def df(x):
            return np.nan

    df_jit = numba.njit(df) if not isinstance(df, numba.core.dispatcher.Dispatcher) else df

    @scalar(cache=False)
    def user_value(code, x, k):
        return f_jit(x)

    @scalar(cache=False)
    def user_derivative(code, x, k):
        return df_jit(x)

    src = _chunk_sums_source(USER)
    env = dict(src.__globals__, value=user_value, derivative=user_derivative)
    clone = types.FunctionType(src.__code__, env, src.__name__, src.__defaults__, src.__closure__)
    return kernel(clone, cache=False)


_user_kernels: dict[int, tuple] = {}


def chunk_sums_kernel(objective: Objective):
    """The compiled chunk-sum kernel for ``objective`` (built once per process)."""
    if objective.is_builtin:
        return _builtin_chunk_sums(objective.code)
    key = id(objective.f), id(objective.df)
    if key not in _user_kernels:  # keep the functions alive with the kernel
        _user_kernels[key] = (objective.f, objective.df, _user_chunk_sums(objective.f, objective.df))
    return _user_kernels[key][2]


def compute_units(objective: Objective, seed: int, cell_theta, cell_sigma, cell_stream, plan: Plan) -> np.ndarray:
    """Welford states (units x terms x 5) of the units of ``plan``."""
    k0, k1 = seed_key(seed)
    k = float(objective.k) if objective.is_builtin else 0.0
    item_unit, item_rep, item_start, item_stop, offset = chunk_items(plan)
    item_cell = plan.cell[item_unit]
    sums = np.empty((item_unit.size, N_TERMS))
    chunk_sums_kernel(objective)(
        k0,
        k1,
        k,
        np.ascontiguousarray(cell_theta[item_cell]),
        np.ascontiguousarray(cell_sigma[item_cell]),
        np.ascontiguousarray(cell_stream[item_cell]),
        item_rep,
        item_start,
        item_stop,
        sums,
    )
    out = np.empty((plan.size, N_TERMS, 5))
    unit_states(sums, offset, plan.nrep, plan.n, out)
    return out

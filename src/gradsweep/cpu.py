"""The CPU backend: numba ``prange`` kernels over a plan's chunk items.

Two kernels per batch of units:

1. :func:`chunk_sums` — in parallel over chunk items: draw the item's normals
   a block at a time (a vectorised fill that stays in L1 cache), and for every
   cell of the item's group sum the four per-sample terms
   (:func:`gradsweep.estimators.sample_terms`) in LANES fixed lanes, which lets
   LLVM vectorise the sums without reassociating them;
2. :func:`unit_states` — in parallel over units: add each replicate's chunk
   sums in chunk order, divide by N, and push the replicate's estimate into
   the unit's Welford state in replicate order.

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
#: Independent partial sums per term; sample j of a block goes to lane j % LANES.
#: Lanes held in registers break the add-latency chain and let LLVM vectorise.
LANES = 4


@scalar
def add4(a, b):
    """Elementwise sum of two 4-tuples."""
    return a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]


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
            acc = np.zeros((width, LANES, 4))
            for p0 in range(first_pair, end_pair, BLOCK):
                count = min(BLOCK, end_pair - p0)
                fill_normal_pairs(k0, k1, p0, count, rep, stream, z_even, z_odd)
                # odd N: the last pair's second normal is not a sample
                count_odd = count - 1 if (p0 + count == end_pair and stop % 2 == 1) else count
                for g in range(width):
                    theta = cell_theta[cell0 + g]
                    sigma = cell_sigma[cell0 + g]
                    inv_sigma = 1.0 / sigma

                    def terms(e):
                        x = theta + sigma * e  # noqa: B023 (inlined at once by numba)
                        return sample_terms(value(code, x, k), derivative(code, x, k), e, inv_sigma)  # noqa: B023

                    def lanes(z, n, l0, l1, l2, l3):
                        full = n - n % LANES
                        for j in range(0, full, LANES):
                            l0 = add4(l0, terms(z[j]))
                            l1 = add4(l1, terms(z[j + 1]))
                            l2 = add4(l2, terms(z[j + 2]))
                            l3 = add4(l3, terms(z[j + 3]))
                        if n - full > 0:
                            l0 = add4(l0, terms(z[full]))
                        if n - full > 1:
                            l1 = add4(l1, terms(z[full + 1]))
                        if n - full > 2:
                            l2 = add4(l2, terms(z[full + 2]))
                        return l0, l1, l2, l3

                    a = acc[g]
                    l0 = (a[0, 0], a[0, 1], a[0, 2], a[0, 3])
                    l1 = (a[1, 0], a[1, 1], a[1, 2], a[1, 3])
                    l2 = (a[2, 0], a[2, 1], a[2, 2], a[2, 3])
                    l3 = (a[3, 0], a[3, 1], a[3, 2], a[3, 3])
                    l0, l1, l2, l3 = lanes(z_even, count, l0, l1, l2, l3)
                    l0, l1, l2, l3 = lanes(z_odd, count_odd, l0, l1, l2, l3)
                    for t in range(4):
                        a[0, t] = l0[t]
                        a[1, t] = l1[t]
                        a[2, t] = l2[t]
                        a[3, t] = l3[t]
            for g in range(width):
                for t in range(4):
                    total = 0.0
                    for lane in range(LANES):
                        total += acc[g, lane, t]
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

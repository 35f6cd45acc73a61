"""The CUDA backend: numba.cuda kernels on the same random streams and the same estimator units.

Nothing numerical is written twice. The device functions are the very Python
sources of the CPU helpers (:func:`gradsweep.philox.normal_pair` and
``extra_draw_from``, each estimator's quantity and finish functions,
:func:`gradsweep.welford.merge`, the objectives), recompiled for the GPU with
their global names rebound to device versions (:func:`device`,
``_jit.rebind_tree``). For the requested estimators two device functions are
generated (:func:`_generated_source`): ``add_sample`` adds one sample's Q
quantities into a thread's running sums (with the measure-valued estimators'
extra draw where one reads it), and ``estimate`` finishes a replicate's sums
into one output's estimate; the kernels below are generic in Q and OUTPUTS. Only the two bit-casts of
:mod:`gradsweep.elementary` differ per target: libdevice on a GPU, numpy views
under numba's simulator (``NUMBA_ENABLE_CUDASIM=1``).

Two steps per batch, as on the CPU:

1. the chunk sums, for each chunk item (and each cell of its group):

   * :func:`_chunk_sums` — one cell per group: a block per chunk; thread ``t``
     draws pairs ``t, t + THREADS, ...`` and sums their quantities in a local array;
   * :func:`_chunk_sums_per_thread` — one cell per group, chunks of at most
     ``SMALL * THREADS`` samples (small N): a thread per chunk, its samples in
     order, where a block would keep few of its threads busy;
   * :func:`_chunk_sums_shared` — common random numbers, a group of many
     cells: the block draws THREADS pairs at a time into shared memory, once,
     and its threads, arranged as (cell, lane), add those normals' terms for
     every cell of a tile. Redrawing per cell would cost a Philox block and a
     Box-Muller per two cell-samples; here it is one per ``2 * cells``
     (``make gpu-static`` counts both loops).

   A block adds its threads' sums in a fixed tree. Each kernel works out its
   chunk's replicate and samples from the batch's per-unit arrays
   (:func:`_item`), so the host prepares and copies O(units) per batch.
2. :func:`_unit_states` — a block per (unit, cell), one output after another:
   each thread adds the chunk sums of a run of consecutive replicates, finishes
   them into the output's estimates and merges those into a Welford state in
   replicate order; the threads' states are merged in a fixed tree.

Small N (paired units, see :mod:`gradsweep.philox`) takes one step instead:
:func:`_pair_states`, a block per (pair item, cell) whose threads each take
replicate pairs ``t, t + THREADS, ...`` of the item, sum both replicates'
samples in registers, finish and push the estimates into per-thread Welford
states, merged in a fixed tree; the items' states are merged per unit in item
order (:func:`gradsweep.welford.merge_runs`, on the host).

Every addition and merge happens in an order fixed by the plan (and THREADS),
never by the scheduling of threads, so repeated runs are bit-identical. They
differ from the CPU backend only in those orders inside a chunk and inside a
unit (and in where the compiler fuses a multiply-add): 1e-10 relative or
better, which the tests check.
"""

from __future__ import annotations

import contextlib
import os
import types
import warnings
from typing import NamedTuple

import numpy as np

from . import elementary, objectives, philox, welford
from ._jit import generated_module, rebind, rebind_tree
from .config import ConfigError
from .estimators import Layout, base, layout
from .estimators.base import K
from .objectives import USER, Objective
from .plan import Plan, pair_items, unit_items

#: Threads per block of every kernel (a power of two: the trees inside a block halve it).
#: Read when a kernel is compiled; the simulator tests use fewer (each simulated thread is a Python thread).
THREADS = 128
#: Batches for the GPU are larger than the CPU's, to fill the device (see plan.Plan.batches).
BATCH_SAMPLES = 1 << 31
BATCH_ITEMS = 1 << 20
#: Chunk items of at most SMALL * THREADS samples (one-cell groups) get a thread each, not a block.
SMALL = 8
#: Blocks of the shared (common random numbers) kernel that must fit on an SM at once; see launch_bounds.
SHARED_MIN_BLOCKS = 5
#: Blocks along a grid's y axis at most (CUDA's limit); blocks loop over the tiles or cells beyond.
MAX_GRID_Y = 65535
INSTALL_HINT = "the cuda backend needs numba-cuda: pip install '.[cuda]' in a gradsweep checkout"


def _cuda():
    try:
        from numba import cuda
    except ImportError:  # pragma: no cover - numba-cuda is in the test extra
        raise ConfigError(INSTALL_HINT) from None
    return cuda


def simulator() -> bool:
    """True when numba.cuda is numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    return os.environ.get("NUMBA_ENABLE_CUDASIM", "0") == "1"


def unavailable() -> str | None:
    """Why the cuda backend cannot run here, in one line; None when it can."""
    try:
        cuda = _cuda()
    except ConfigError as e:
        return str(e)
    if simulator():
        return None
    try:
        cuda.current_context()
    except Exception as e:  # the driver's own reason (no driver, no device, ...)
        return "no usable CUDA GPU: " + " ".join(str(e).split())
    return None


def device_name() -> str:
    """What the kernels run on, for the dataset's attributes."""
    if simulator():
        return "numba CUDA simulator"
    dev = _cuda().get_current_device()
    name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
    return f"{name} (compute capability {dev.compute_capability[0]}.{dev.compute_capability[1]})"


# --- device versions of the shared helpers ------------------------------------------------------


def device(fn, **names):
    """Compile the Python source of ``fn`` (a CPU dispatcher or a function) as a CUDA device function.

    The ``names`` replace the module globals the source refers to,
    so a helper calls the device versions of the helpers it uses.
    """
    return _cuda().jit(device=True)(rebind(fn, **names))


def _bitcasts():
    if simulator():

        def float_bits(x):
            return np.float64(x).view(np.uint64)

        def bits_float(b):
            return np.uint64(b).view(np.float64)

        return float_bits, bits_float
    cuda = _cuda()
    libdevice = cuda.libdevice

    @cuda.jit(device=True)
    def float_bits(x):
        return np.uint64(libdevice.double_as_longlong(x))

    @cuda.jit(device=True)
    def bits_float(b):
        return libdevice.longlong_as_double(np.int64(b))

    return float_bits, bits_float


class _Device:
    """The device versions of the shared helpers (one set per process for launches, see helpers())."""

    def __init__(self):
        float_bits, bits_float = _bitcasts()
        log_unit_from = device(elementary.log_unit_from, float_bits=float_bits, bits_float=bits_float)
        floor_float = np.floor if simulator() else _cuda().libdevice.floor
        sincos_turn_from = device(elementary.sincos_turn_from, float_bits=float_bits, bits_float=bits_float, floor_float=floor_float)
        uniform = device(philox.uniform, bits_float=bits_float)
        philox4x32_10 = device(philox.philox4x32_10, _round=device(philox._round))
        box_muller = device(
            philox._box_muller,
            philox4x32_10=philox4x32_10,
            uniform=uniform,
            log_unit_from=log_unit_from,
            sincos_turn_from=sincos_turn_from,
        )
        # normal_pair(k0, k1, pair, rep, stream, coefficients): the kernels pass elementary.COEFFICIENTS in
        self.normal_pair = device(philox.normal_pair_from, _box_muller=box_muller)
        self.philox4x32_10 = philox4x32_10
        # coordinate c of a sample's normal pair, in dim dimensions (philox.coordinate_pair_from)
        self.coordinate_pair = device(philox.coordinate_pair_from, _box_muller=box_muller)
        # the measure-valued estimators' extra draw (philox.extra_draw_from) and its transforms
        self.extra_draw = device(philox.extra_draw_from, philox4x32_10=philox4x32_10, uniform=uniform, bits_float=bits_float)
        self.rayleigh = device(philox.rayleigh_from, log_unit_from=log_unit_from)
        self.maxwell = device(philox.maxwell_from, rayleigh_from=self.rayleigh)
        self.sincos = sincos_turn_from
        self.merge = device(welford.merge)
        self.value = device(objectives.value)
        self.derivative = device(objectives.derivative)
        self.second_derivative = device(objectives.second_derivative)


_device_helpers: _Device | None = None


def helpers() -> _Device:
    global _device_helpers
    if _device_helpers is None:
        _device_helpers = _Device()
    return _device_helpers


# --- kernels --------------------------------------------------------------------------------------
# The kernel sources below refer to these globals; _compile binds them per kernel. Q (sums per
# cell) and OUTPUTS (outputs per cell) become compile-time constants, as do the layout's generated
# device functions add_sample (one sample's quantities into the running sums) and estimate
# (a replicate's sums finished into one output's estimate): see _generated_source.
cuda = normal_pair = add_sample = estimate = merge = None
pair_sums = lane_sums = item = store = tree_merge = estimate_local = None
Q = OUTPUTS = 1

# A batch's chunk items are numbered as plan.chunk_items numbers them, and each kernel works
# out its item's replicate and samples from per-unit arrays (the "units" arguments below:
# plan.unit_items, rep0 and n), so what the host prepares and copies per batch grows with its
# units, not its items.


def _item(i, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n):
    """Unit, replicate and samples ``start .. stop - 1`` of chunk item ``i`` (as plan.chunk_items has them)."""
    lo = 0
    hi = unit_offset.size - 2
    while lo < hi:  # the last unit whose first item is at most i
        mid = (lo + hi + 1) // 2
        if unit_offset[mid] <= i:
            lo = mid
        else:
            hi = mid - 1
    within = i - unit_offset[lo]
    per_rep = unit_per_rep[lo]
    start = within % per_rep * unit_size[lo]
    return lo, unit_rep0[lo] + within // per_rep, start, min(start + unit_size[lo], unit_n[lo])


def _pair_sums(k0, k1, coefficients, rep, stream, p, first_pair, step, stop, acc):
    """``acc[:Q]`` = the sums of the cell with constants ``p`` over the pairs ``first_pair, first_pair + step, ...`` below ``stop``."""
    for q in range(Q):
        acc[q] = 0.0
    k = p[K]  # the cell's k, read once, not per sample
    for pr in range(first_pair, (stop + 1) // 2, step):
        e0, e1 = normal_pair(k0, k1, np.uint64(pr), np.uint64(rep), np.uint64(stream), coefficients)
        add_sample(acc, k0, k1, 2 * pr, rep, stream, coefficients, e0, p, k)
        if 2 * pr + 1 < stop:  # odd N: the last pair's second normal is not a sample
            add_sample(acc, k0, k1, 2 * pr + 1, rep, stream, coefficients, e1, p, k)


def _lane_sums(partial, t, lane, lanes, acc):
    """Thread t's Q sums added over the ``lanes`` threads of its segment (a power of two) in a fixed tree.

    Every thread of the block calls it; the segment's sums end in ``partial[:, t]`` of its lane 0.
    """
    for q in range(Q):
        partial[q, t] = acc[q]
    cuda.syncthreads()
    half = lanes // 2
    while half > 0:
        if lane < half:
            for q in range(Q):
                partial[q, t] += partial[q, t + half]
        cuda.syncthreads()
        half //= 2


# fmt: off
def _chunk_sums(
    k0, k1, first, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n, unit_cell0, unit_stream,
    cell_const, coefficients, out,
):
    # fmt: on
    """One block per chunk item ``first + blockIdx.x`` of a one-cell group: its Q sums, in a fixed tree.

    Thread ``t`` draws pairs ``t, t + THREADS, ...`` of the chunk and adds their quantities in registers.
    ``coefficients`` are :data:`gradsweep.elementary.COEFFICIENTS`, given as an argument: each use
    in the loop then costs one load from the constant bank, where a literal costs two moves and
    more registers (``make gpu-static`` counted 304 -> 280 instructions per Philox block).
    """
    i = first + cuda.blockIdx.x
    t = cuda.threadIdx.x
    partial = cuda.shared.array((Q, THREADS), np.float64)
    acc = cuda.local.array(Q, np.float64)
    u, rep, start, stop = item(i, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n)
    pair_sums(k0, k1, coefficients, rep, unit_stream[u], cell_const[unit_cell0[u]], start // 2 + t, THREADS, stop, acc)
    lane_sums(partial, t, t, THREADS, acc)
    for q in range(t, Q, THREADS):
        out[i, 0, q] = partial[q, 0]


# fmt: off
def _chunk_sums_per_thread(
    k0, k1, first, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n, unit_cell0, unit_stream,
    cell_const, coefficients, end, out,
):
    # fmt: on
    """One thread per chunk item ``first + cuda.grid(1)`` (up to ``end``) of a one-cell group, its samples in order.

    For items of at most SMALL * THREADS samples, where a block of THREADS threads would mostly
    idle (a replicate of 10 samples keeps 5 of 128 busy) and then spend a tree on its sums.
    """
    i = first + cuda.grid(1)
    if i >= end:
        return
    acc = cuda.local.array(Q, np.float64)
    u, rep, start, stop = item(i, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n)
    pair_sums(k0, k1, coefficients, rep, unit_stream[u], cell_const[unit_cell0[u]], start // 2, 1, stop, acc)
    for q in range(Q):
        out[i, 0, q] = acc[q]


# fmt: off
def _chunk_sums_shared(
    k0, k1, first, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n, unit_cell0, unit_stream,
    cell_const, coefficients, cells, out,
):
    # fmt: on
    """One block per (chunk item, tile of ``cells`` cells of its group): the normals drawn once per tile.

    Thread ``t`` is lane ``t % lanes`` of the tile's cell ``t // lanes`` (``lanes = THREADS // cells``).
    Each pass, every thread draws one pair into shared memory; then each thread adds, for its cell,
    the quantities of the pass's samples ``lane, lane + lanes, ...``. A cell's lanes are added in a
    fixed tree at the end. (The measure-valued estimators' extra draw is made per cell, in add_sample.)
    """
    i = first + cuda.blockIdx.x
    t = cuda.threadIdx.x
    z = cuda.shared.array((THREADS, 2), np.float64)  # the pass's samples, in order
    partial = cuda.shared.array((Q, THREADS), np.float64)
    acc = cuda.local.array(Q, np.float64)
    width = out.shape[1]
    lanes = THREADS // cells
    c = t // lanes
    lane = t % lanes
    u, rep, start, stop = item(i, unit_offset, unit_rep0, unit_per_rep, unit_size, unit_n)
    stream = np.uint64(unit_stream[u])
    cell0 = unit_cell0[u]
    end_pair = (stop + 1) // 2
    for tile in range(cuda.blockIdx.y, -(-width // cells), cuda.gridDim.y):
        g = tile * cells + c
        active = g < width  # the last tile may be part-empty; its spare threads still draw
        p = cell_const[cell0 + g] if active else cell_const[cell0]
        k = p[K]
        for q in range(Q):
            acc[q] = 0.0
        for s0 in range(start, stop, 2 * THREADS):  # chunks start on even samples
            pr = s0 // 2 + t
            if pr < end_pair:
                z[t, 0], z[t, 1] = normal_pair(k0, k1, np.uint64(pr), np.uint64(rep), stream, coefficients)
            cuda.syncthreads()
            n = min(2 * THREADS, stop - s0)  # odd N: a last pair's second normal is left out
            j = lane if active else n
            while j < n:  # a range() with a step known only at run time would divide for its trip count
                add_sample(acc, k0, k1, s0 + j, rep, stream, coefficients, z[j >> 1, j & 1], p, k)
                j += lanes
            cuda.syncthreads()  # z is redrawn next pass
        lane_sums(partial, t, lane, lanes, acc)
        if active and lane == 0:
            for q in range(Q):
                out[i, g, q] = partial[q, t]
        cuda.syncthreads()  # partial is reused for the next tile


def tile_cells(width: int, threads: int) -> int:
    """Cells per block of :func:`_chunk_sums_shared` for a group of ``width`` cells: a power of two, at most ``threads``."""
    return min(1 << (width - 1).bit_length(), threads)


def _store(state, r, n, m, m2, m3, m4):
    """Write a Welford state into ``state[:, r]``."""
    state[0, r] = n
    state[1, r] = m
    state[2, r] = m2
    state[3, r] = m3
    state[4, r] = m4


def _unit_states(sums, unit_offset, unit_nrep, unit_n, unit_cell0, cell_const, out):
    """One block per (unit, cell): chunk sums -> replicate estimates of each output -> Welford states.

    For each output in turn, thread ``r`` pushes its own run of consecutive replicates, in
    order, into a state; the threads' states are then merged in a fixed tree. A unit may hold
    millions of replicates of a small N: one thread pushing them all would hold up the batch.
    """
    u = cuda.blockIdx.x
    r = cuda.threadIdx.x
    state = cuda.shared.array((5, THREADS), np.float64)
    nrep = unit_nrep[u]
    per_rep = (unit_offset[u + 1] - unit_offset[u]) // nrep
    n_samples = np.float64(unit_n[u])
    run = -(-nrep // THREADS)
    for g in range(cuda.blockIdx.y, sums.shape[1], cuda.gridDim.y):
        p = cell_const[unit_cell0[u] + g]
        for o in range(OUTPUTS):
            n = 0.0
            m = 0.0
            m2 = 0.0
            m3 = 0.0
            m4 = 0.0
            for rep in range(r * run, min(r * run + run, nrep)):
                first = unit_offset[u] + rep * per_rep
                x = estimate(o, sums, first, per_rep, g, n_samples, p)
                n, m, m2, m3, m4 = merge(n, m, m2, m3, m4, 1.0, x, 0.0, 0.0, 0.0)
            store(state, r, n, m, m2, m3, m4)
            tree_merge(state, r)
            if r == 0:
                for f in range(5):
                    out[u, g, o, f] = state[f, 0]
            cuda.syncthreads()  # state is reused for the next output


def _tree_merge(state, r):
    """Merge the THREADS states ``state[:, r]`` of a block in a fixed tree; the result ends in ``state[:, 0]``.

    Every thread of the block calls it, after storing its own state.
    """
    cuda.syncthreads()
    half = THREADS // 2
    while half > 0:
        if r < half:
            b = r + half
            n, m, m2, m3, m4 = merge(
                state[0, r], state[1, r], state[2, r], state[3, r], state[4, r],
                state[0, b], state[1, b], state[2, b], state[3, b], state[4, b],
            )  # fmt: skip
            store(state, r, n, m, m2, m3, m4)
        cuda.syncthreads()
        half //= 2


def _pair_states(k0, k1, item_unit, item_lo, item_hi, unit_n, unit_cell0, unit_stream, cell_const, coefficients, out):
    """One block per (pair item, cell) of paired units (small N): replicates lo .. hi - 1 -> Welford states.

    Thread ``t`` takes replicate pairs ``lo // 2 + t, + THREADS, ...``: sample j of the pair's two
    replicates is pair j of its replicate word (see :mod:`gradsweep.philox`). It pushes each
    replicate's estimates, in replicate order, into its own states (one per output); the threads'
    states are merged in a fixed tree, one output after another.
    """
    i = cuda.blockIdx.x
    t = cuda.threadIdx.x
    state = cuda.shared.array((5, THREADS), np.float64)
    acc_even = cuda.local.array(Q, np.float64)
    acc_odd = cuda.local.array(Q, np.float64)
    own = cuda.local.array((OUTPUTS, 5), np.float64)
    u = item_unit[i]
    lo = item_lo[i]
    hi = item_hi[i]
    n = unit_n[u]
    nf = np.float64(n)
    stream = unit_stream[u]
    for g in range(cuda.blockIdx.y, out.shape[1], cuda.gridDim.y):
        p = cell_const[unit_cell0[u] + g]
        k = p[K]
        for o in range(OUTPUTS):
            for f in range(5):
                own[o, f] = 0.0
        for w in range(lo // 2 + t, (hi + 1) // 2, THREADS):
            for q in range(Q):
                acc_even[q] = 0.0
                acc_odd[q] = 0.0
            for j in range(n):
                e0, e1 = normal_pair(k0, k1, np.uint64(j), np.uint64(w), np.uint64(stream), coefficients)
                add_sample(acc_even, k0, k1, 2 * j, w, stream, coefficients, e0, p, k)
                add_sample(acc_odd, k0, k1, 2 * j + 1, w, stream, coefficients, e1, p, k)
            for h in range(2):
                if lo <= 2 * w + h < hi:
                    for o in range(OUTPUTS):
                        x = estimate_local(o, acc_even if h == 0 else acc_odd, nf, p)
                        own[o, 0], own[o, 1], own[o, 2], own[o, 3], own[o, 4] = merge(
                            own[o, 0], own[o, 1], own[o, 2], own[o, 3], own[o, 4], 1.0, x, 0.0, 0.0, 0.0
                        )
        for o in range(OUTPUTS):
            store(state, t, own[o, 0], own[o, 1], own[o, 2], own[o, 3], own[o, 4])
            tree_merge(state, t)
            if t == 0:
                for f in range(5):
                    out[i, g, o, f] = state[f, 0]
            cuda.syncthreads()  # state is reused for the next output


def _total(sums, first, per_rep, g, t):
    """Sum t of a replicate: its chunks' sums, in chunk order."""
    total = 0.0
    for j in range(first, first + per_rep):
        total += sums[j, g, t]
    return total


def launch_bounds(kernel, threads: int) -> tuple[int, int] | None:
    """The launch bounds ``kernel`` (a kernel's source) is compiled with: None, or (threads, blocks per SM).

    The shared kernel is held to SHARED_MIN_BLOCKS blocks per SM, so ptxas keeps it under
    102 registers. ``make gpu-static`` for x^2: 104 -> 90 registers, occupancy 25% -> 31%, and
    one instruction fewer per cell-sample. The one-cell kernels get no bounds; tighter ones would
    trade 5-7% more instructions for occupancy, a trade only a GPU timing can judge.
    """
    return (threads, SHARED_MIN_BLOCKS) if kernel is _chunk_sums_shared else None


def _compile(src, threads: int | None = None, **names):
    """``src`` compiled as a kernel, its globals ``names`` replaced (``threads``: its block size, for launch_bounds)."""
    bounds = None if threads is None or simulator() else launch_bounds(src, threads)  # the simulator takes none
    options = {} if bounds is None else {"launch_bounds": bounds}
    return _cuda().jit(**options)(rebind(src, **names))


class Kernels(NamedTuple):
    chunk_sums: object  # one-cell groups, chunks of more than SMALL * THREADS samples
    chunk_sums_per_thread: object  # one-cell groups, chunks of at most SMALL * THREADS samples
    chunk_sums_shared: object  # groups of several cells (common random numbers)
    unit_states: object
    pair_states: object  # paired units (small N): replicate pairs to Welford states


_SOURCE = """\
import math

import numpy as np


def add_sample(acc, k0, k1, sample, rep, stream, coefficients, e, p, k):
{draw}
{evaluate}
{adds}


def estimate(o, sums, first, per_rep, g, n, p):
{finishes}
    return math.nan


def estimate_local(o, acc, n, p):
{local_finishes}
    return math.nan
"""

_DRAW = """\
    u1, u2, sign, u = extra_draw(k0, k1, np.uint64(sample), np.uint64(rep), np.uint64(stream), coefficients)
    w, m, um = maxwell(u1, sign, u, e, coefficients)
    w2 = rayleigh(u2, coefficients)
    e2 = w2 * sincos(u, coefficients)[1]"""


def _generated_source(lay: Layout) -> str:
    """The layout's device functions: ``add_sample`` (the extra draw where an estimator reads it,
    then each sum's quantity) and ``estimate`` (output o's finish of a replicate's totals)."""
    extra = bool(lay.variates - {"eps", "fx", "dfx"})
    draw = _DRAW if extra else "    w = w2 = m = um = e2 = 0.0"
    at_x = f"CODE, p[{base.THETA}] + p[{base.SIGMA}] * e, k"
    evaluate = [
        f"    {v} = {f'{helper}({at_x})' if v in lay.variates else '0.0'}" for v, helper in (("fx", "value"), ("dfx", "derivative"))
    ]
    # in dim dimensions, each rest function summed over the sample's other coordinates, in coordinate order (as on the CPU)
    rests = [f"    r{i} = 0.0" for i in range(len(lay.rests))]
    if lay.rests:
        rests += [
            f"    for c in range(1, int(p[{base.DIM}])):",
            "        z0, z1 = coordinate_pair(",
            "            k0, k1, np.uint64(sample >> 1), np.uint64(rep), np.uint64(stream), np.uint64(c), coefficients",
            "        )",
            "        z = z1 if sample & 1 else z0",
            *(f"        r{i} += rho{i}(CODE, k, p, z)" for i in range(len(lay.rests))),
        ]
    rest_arg = [f"r{i}" if i >= 0 else "0.0" for i in lay.sum_rests]
    adds = "\n".join(
        [*rests, *(f"    acc[{t}] += q{t}(CODE, k, p, e, fx, dfx, w, w2, m, um, e2, {r})" for t, r in enumerate(rest_arg))]
    )
    total = lambda t: f"total(sums, first, per_rep, g, {t})"  # noqa: E731
    finishes = [f"    if o == {o}:\n        return {lay.estimate(o, total)}" for o in range(lay.n_outputs)]
    local = [f"    if o == {o}:\n        return {lay.estimate(o, lambda t: f'acc[{t}]')}" for o in range(lay.n_outputs)]
    return _SOURCE.format(
        draw=draw, evaluate="\n".join(evaluate), adds=adds, finishes="\n".join(finishes), local_finishes="\n".join(local)
    )


def _build(objective: Objective, lay: Layout, h: _Device, threads: int) -> Kernels:
    if objective.is_builtin:
        helpers = {"value": h.value, "derivative": h.derivative, "second_derivative": h.second_derivative}
    else:
        helpers = objectives.user_helpers(objective, device, device)
    cu = _cuda()
    as_device = cu.jit(device=True)
    namespace = {f"q{t}": as_device(rebind_tree(q, as_device, **helpers)) for t, q in enumerate(lay.sums)}
    namespace |= {f"rho{i}": as_device(rebind_tree(q, as_device, **helpers)) for i, q in enumerate(lay.rests)}
    namespace |= {"coordinate_pair": h.coordinate_pair}
    namespace |= {f"fin{o}": as_device(rebind_tree(f, as_device)) for o, f in enumerate(lay.finishes)}
    namespace |= {"CODE": objective.code if objective.is_builtin else USER, "extra_draw": h.extra_draw}
    namespace |= {"rayleigh": h.rayleigh, "maxwell": h.maxwell}
    namespace |= {"sincos": h.sincos, "total": device(_total), "value": helpers["value"], "derivative": helpers["derivative"]}
    module = generated_module("cuda", _generated_source(lay), namespace=namespace)
    add_sample_fn = cu.jit(device=True)(module.add_sample)
    estimate_fn = cu.jit(device=True)(module.estimate)
    estimate_local_fn = cu.jit(device=True)(module.estimate_local)
    merging = dict(cuda=cu, THREADS=threads, merge=h.merge, store=device(_store))
    merging["tree_merge"] = device(_tree_merge, **merging)
    sizes = dict(Q=len(lay.sums), OUTPUTS=lay.n_outputs)
    names = dict(
        cuda=cu,
        THREADS=threads,
        normal_pair=h.normal_pair,
        add_sample=add_sample_fn,
        pair_sums=device(_pair_sums, normal_pair=h.normal_pair, add_sample=add_sample_fn, **sizes),
        lane_sums=device(_lane_sums, cuda=cu, **sizes),
        item=device(_item),
        **sizes,
    )
    return Kernels(
        _compile(_chunk_sums, **names),
        _compile(_chunk_sums_per_thread, **names),
        _compile(_chunk_sums_shared, threads, **names),
        _compile(_unit_states, estimate=estimate_fn, **merging, **sizes),
        _compile(_pair_states, normal_pair=h.normal_pair, add_sample=add_sample_fn, estimate_local=estimate_local_fn, **merging, **sizes),
    )


_kernels: dict = {}


def kernels(objective: Objective, lay: Layout) -> Kernels:
    """The kernels for ``objective`` and the layout's outputs, built once per process."""
    ident = objective.code if objective.is_builtin else (id(objective.f), id(objective.df), id(objective.d2f))
    key = (ident, lay.outputs, lay.pairs, lay.rests, THREADS)
    if key not in _kernels:
        # the entry keeps the user's functions alive while their id is the key
        _kernels[key] = (_build(objective, lay, helpers(), THREADS), objective)
    return _kernels[key][0]


@contextlib.contextmanager
def _compile_for(cc):
    """Let device functions compile for ``cc`` without a GPU.

    numba-cuda asks the current device for its compute capability when it
    compiles a device function called from a kernel; compile_ptx alone does not.
    """
    from numba.cuda import dispatcher

    real = dispatcher.get_current_device
    dispatcher.get_current_device = lambda: types.SimpleNamespace(compute_capability=cc)
    try:
        yield
    finally:
        dispatcher.get_current_device = real


def signatures() -> Kernels:
    """The argument types :func:`compute_units` launches each kernel with."""
    from numba import types as nt

    i64, f64 = nt.int64[::1], nt.float64[:, ::1]
    coefficients = nt.UniTuple(nt.float64, len(elementary.COEFFICIENTS))
    inputs = (nt.uint64, nt.uint64, nt.int64, *(i64,) * 7, f64, coefficients)
    sums = nt.float64[:, :, ::1]
    out = nt.float64[:, :, :, ::1]
    states = (sums, i64, i64, i64, i64, f64, out)
    paired = (nt.uint64, nt.uint64, *(i64,) * 6, f64, coefficients, out)
    return Kernels((*inputs, sums), (*inputs, nt.int64, sums), (*inputs, nt.int64, sums), states, paired)


def ptx(
    objective: Objective,
    cc: tuple[int, int] = (9, 0),
    estimators=("score", "pathwise"),
    wrt=("theta", "sigma"),
    compare=(),
    coordinates: bool = False,
) -> dict[str, str]:
    """PTX of each kernel for ``objective``, the outputs and compute capability ``cc``, by kernel name (no GPU needed).

    Compiling to PTX runs numba's typing and lowering and NVVM, so any error
    a real launch would meet at compile time shows here.
    """
    compile_ptx = _cuda().compile_ptx
    with _compile_for(cc):  # fresh device functions, so nothing compiled for cc reaches a real launch
        built = _build(objective, layout(tuple(estimators), tuple(wrt), tuple(compare), coordinates), _Device(), THREADS)
        sources = (_chunk_sums, _chunk_sums_per_thread, _chunk_sums_shared, _unit_states, _pair_states)
        return {
            src.__name__: compile_ptx(k.py_func, sig, cc=cc, launch_bounds=launch_bounds(src, THREADS))[0]
            for src, k, sig in zip(sources, built, signatures(), strict=True)
        }


def runs(flags: np.ndarray) -> list[tuple[int, int, bool]]:
    """Maximal runs ``(first, stop, flag)`` of equal consecutive ``flags``."""
    edges = np.flatnonzero(np.diff(flags)) + 1
    bounds = [0, *edges.tolist(), flags.size]
    return [(a, b, bool(flags[a])) for a, b in zip(bounds[:-1], bounds[1:], strict=True) if b > a]


def compute_units(objective: Objective, seed: int, outputs, cell_const, plan: Plan) -> np.ndarray:
    """Welford states (units x cells-per-group x outputs x 5) of the units of ``plan``, on the GPU.

    ``outputs`` is (estimators, wrt, compared pairs, dim > 1) (:func:`gradsweep.estimators.layout`); ``cell_const``
    the (cells, len(CONSTANTS)) constants. Paired units (small N) go to ``pair_states``, the others to the
    chunk kernels and ``unit_states``.
    """
    lay = layout(*outputs)
    built = kernels(objective, lay)
    n_outputs = lay.n_outputs
    key = philox.seed_key(seed)
    constants = _cuda().to_device(np.ascontiguousarray(cell_const, dtype=np.float64))
    out = np.empty((plan.size, plan.width, n_outputs, 5))
    is_paired = plan.paired
    with warnings.catch_warnings():
        # a small sweep launches a small grid on purpose; numba warns of any grid under 128 blocks
        # (its message starts with a terminal escape code, hence the leading .*)
        warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU under-utilization")
        if is_paired.any():
            out[is_paired] = _paired_units(built, key, constants, plan.take(is_paired), n_outputs)
        if not is_paired.all():
            out[~is_paired] = _chunked_units(built, key, constants, plan.take(~is_paired), lay)
    return out


def _as_device(a):
    return _cuda().to_device(np.ascontiguousarray(a, dtype=np.int64))


def _paired_units(built: Kernels, key, constants, plan: Plan, n_outputs: int) -> np.ndarray:
    """States of paired units: a block per (pair item, cell), the items' states merged per unit on the host."""
    item_unit, item_lo, item_hi, _ = pair_items(plan)
    states = _cuda().device_array((item_unit.size, plan.width, n_outputs, 5))
    grid = (item_unit.size, min(plan.width, MAX_GRID_Y))
    units = (_as_device(plan.n), _as_device(plan.cell0), _as_device(plan.stream))
    args = (*key, _as_device(item_unit), _as_device(item_lo), _as_device(item_hi), *units, constants, elementary.COEFFICIENTS)
    built.pair_states[grid, THREADS](*args, states)
    return welford.merge_runs(states.copy_to_host(), item_unit, plan.size)


def _chunked_units(built: Kernels, key, constants, plan: Plan, lay: Layout) -> np.ndarray:
    """States of units drawn in chunks: chunk sums, then a block per (unit, cell) finishes and merges them."""
    cuda = _cuda()
    threads = THREADS
    k0, k1 = key
    width = plan.width
    offset, per_rep, size = unit_items(plan)
    items = int(offset[-1])
    unit_offset, unit_n, unit_cell0 = _as_device(offset), _as_device(plan.n), _as_device(plan.cell0)
    units = (unit_offset, _as_device(plan.rep0), _as_device(per_rep), _as_device(size), unit_n, unit_cell0, _as_device(plan.stream))
    sums = cuda.device_array((items, width, len(lay.sums)))
    if width > 1:
        cells_per_block = tile_cells(width, threads)
        grid = (items, min(-(-width // cells_per_block), MAX_GRID_Y))
        built.chunk_sums_shared[grid, threads](k0, k1, 0, *units, constants, elementary.COEFFICIENTS, cells_per_block, sums)
    else:
        for u0, u1, is_small in runs(np.minimum(plan.n, size) <= SMALL * threads):
            first, end = int(offset[u0]), int(offset[u1])
            inputs = (k0, k1, first, *units, constants, elementary.COEFFICIENTS)
            if is_small:
                built.chunk_sums_per_thread[-(-(end - first) // threads), threads](*inputs, end, sums)
            else:
                built.chunk_sums[end - first, threads](*inputs, sums)
    states = cuda.device_array((plan.size, width, lay.n_outputs, 5))
    unit_grid = (plan.size, min(width, MAX_GRID_Y))
    built.unit_states[unit_grid, threads](sums, unit_offset, _as_device(plan.nrep), unit_n, unit_cell0, constants, states)
    return states.copy_to_host()

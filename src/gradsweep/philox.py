"""Philox4x32-10 counter-based random numbers and Box-Muller normals.

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC11; the Random123 library) maps a 128-bit counter and a 64-bit key to 128
random bits. Every number is a pure function of (key, counter), so any sample
of a sweep can be drawn from its position alone, on any thread, process,
machine or GPU, in any order.

gradsweep's stream layout:

* key   = the 64-bit seed, split into two 32-bit words (low, high);
* counter = (pair index low word, pair index high word, replicate word, stream),
  where ``stream`` identifies the grid cell (or the shared stream when common
  random numbers are used). One Philox block gives a pair of normals; how a
  replicate's samples map onto pairs depends on N:

  - N <= :data:`PAIRED_N` (replicate pairs): replicates ``2w`` and ``2w + 1``
    share replicate word ``w``, and pair ``j`` holds sample ``j`` of each
    (its first normal for ``2w``, its second for ``2w + 1``). Every normal is
    used even at N = 1, and a kernel fills sample ``j`` of many replicates at
    once, which is what makes small N as fast per sample as large N;
  - N > PAIRED_N (within a replicate): replicate word = the replicate, and
    pair ``j`` holds samples ``2j`` and ``2j + 1``.

  Files written before the paired layout (config ``streams = 1``) use the
  second form for every N, so they stay extendable.
* the measure-valued estimators' extra draw of a sample is one more block, with
  bit 31 of word 1 set and the sample's index in words 0-1: ``2j + (replicate
  % 2)`` under replicate pairs, ``j`` within a replicate.
* in ``dim`` dimensions, coordinate ``c`` (0 for the first, whose normals are
  the ones above) of a sample is drawn like the first with ``c`` in bits 8-30
  of word 1 (:data:`COORDINATE_SHIFT`): the same pair, replicate word and
  stream, so cells that share a stream share every coordinate too. Word 1's
  low bits hold ``pair >> 32``, below 2**8 for N <= :data:`MAX_N_COORDINATES`.

``log`` and ``sin``/``cos`` come from :mod:`gradsweep.elementary` (branch-free,
a few ulp; sin/cos of the exact angle ``2 pi u2``). Uniforms take 52 bits from two 32-bit words and are centred on the 2**-52
grid, so they lie in the open interval (0, 1) and ``log(u)`` is always finite.

All integer arithmetic is done in uint64 holding 32-bit values; the constants
are module-level ``np.uint64`` so numba never promotes to float.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import scalar, serial
from .elementary import COEFFICIENTS, bits_float, log_unit_from, sincos_turn_from

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT12 = np.uint64(12)
_ONE_BITS = np.uint64(0x3FF0000000000000)
_ONE_MINUS_HALF_ULP = 1.0 - 2.0**-53
_ONE = np.uint64(1)
_SHIFT63 = np.uint64(63)
#: Replicates of at most PAIRED_N samples are drawn in replicate pairs (see the module docstring).
PAIRED_N = 1024
#: Which draw a Philox block belongs to, in the top bits of counter word 1. Normal pairs put
#: ``pair >> 32`` there (below 2**29 for N < 2**62); the per-sample extra draw of the
#: measure-valued estimators puts ``sample >> 32`` (below 2**30) with bit 31 set.
_DRAW_EXTRA = np.uint64(1 << 31)
#: Where a coordinate's index sits in counter word 1 (coordinate c >= 1 of a sample in ``dim`` dimensions).
COORDINATE_SHIFT = np.uint64(8)
#: The largest N whose pair index leaves bits 8-30 of word 1 to the coordinate, and the most coordinates.
MAX_N_COORDINATES = 2**40
MAX_COORDINATES = 2**23
_LOW11 = np.uint64(0x7FF)
_LOW12 = np.uint64(0xFFF)
_SHIFT11 = np.uint64(11)
_SHIFT29 = np.uint64(29)
_ONE_MINUS_HALF_U23 = 1.0 - 2.0**-24


@scalar(inline="always")
def _round(c0, c1, c2, c3, k0, k1):
    p0 = _M0 * c0
    p1 = _M1 * c2
    hi0 = p0 >> _SHIFT32
    lo0 = p0 & _MASK32
    hi1 = p1 >> _SHIFT32
    lo1 = p1 & _MASK32
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


@scalar(inline="always")
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds; all arguments and results are uint64 holding 32 bits."""
    for _ in range(9):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@scalar
def uniform(lo, hi):
    """A double in (0, 1) from two 32-bit words: 52 bits, centred on the grid.

    ``1 + b 2**-52`` is assembled by bit-cast (vectorisable, unlike an
    integer-to-float conversion without AVX-512), then
    ``u = b 2**-52 + 2**-53`` exactly; so u lies in [2**-53, 1 - 2**-53] and
    Box-Muller's |z| is at most sqrt(106 ln 2) = 8.57.
    """
    b = ((hi << _SHIFT32) | lo) >> _SHIFT12
    return bits_float(_ONE_BITS | b) - _ONE_MINUS_HALF_ULP


@scalar(inline="always")
def _box_muller(k0, k1, c0, c1, rep, stream, coefficients):
    w0, w1, w2, w3 = philox4x32_10(c0, c1, rep, stream, k0, k1)
    r = math.sqrt(-2.0 * log_unit_from(uniform(w0, w1), coefficients))
    s, c = sincos_turn_from(uniform(w2, w3), coefficients)
    return r * c, r * s


@scalar(inline="always")
def normal_pair_from(k0, k1, pair, rep, stream, coefficients):
    """:func:`normal_pair` with :data:`gradsweep.elementary.COEFFICIENTS` given (the CUDA kernels pass them in)."""
    return _box_muller(k0, k1, pair & _MASK32, pair >> _SHIFT32, rep, stream, coefficients)


@scalar(inline="always")
def coordinate_pair_from(k0, k1, pair, rep, stream, coordinate, coefficients):
    """The normal pair of coordinate ``coordinate`` (a uint64, 0 gives :func:`normal_pair_from`'s) of the
    same samples: the coordinate in bits 8-30 of counter word 1 (see the module docstring)."""
    return _box_muller(k0, k1, pair & _MASK32, (pair >> _SHIFT32) | (coordinate << COORDINATE_SHIFT), rep, stream, coefficients)


@scalar(inline="always")
def normal_pair(k0, k1, pair, rep, stream):
    """Two independent standard normals for samples ``2*pair`` and ``2*pair+1``.

    Box-Muller: r = sqrt(-2 log u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2).
    ``pair`` is a uint64; ``rep`` and ``stream`` are uint64 below 2**32.
    """
    return normal_pair_from(k0, k1, pair, rep, stream, COEFFICIENTS)


@scalar(inline="always")
def extra_draw_from(k0, k1, sample, rep, stream, coefficients):
    """Sample ``sample``'s extra draw for the measure-valued estimators: one Philox block.

    Returns ``(u1, u2, sign, u)``: two uniforms of 52 bits (words 0-1 and 2-3, for the
    Rayleigh variates' logs), a sign from the lowest bit of word 0, and a uniform of 23
    bits from the other 11 + 12 low bits of words 0 and 2 (which :func:`uniform` drops),
    centred on its grid. All four are independent.
    """
    w0, w1, w2, w3 = philox4x32_10(sample & _MASK32, (sample >> _SHIFT32) | _DRAW_EXTRA, rep, stream, k0, k1)
    sign = bits_float(_ONE_BITS | ((w0 & _ONE) << _SHIFT63))
    b = ((w0 >> _ONE) & _LOW11) | ((w2 & _LOW12) << _SHIFT11)
    u = bits_float(_ONE_BITS | (b << _SHIFT29)) - _ONE_MINUS_HALF_U23  # (b + 1/2) 2**-23
    return uniform(w0, w1), uniform(w2, w3), sign, u


@scalar(inline="always")
def rayleigh_from(u, coefficients):
    """W = sqrt(-2 log u) ~ Rayleigh(1) for u ~ U(0, 1) (the Box-Muller radius)."""
    return math.sqrt(-2.0 * log_unit_from(u, coefficients))


@scalar(inline="always")
def maxwell_from(u1, sign, u, e, coefficients):
    """``(W, M, U M)`` from the extra draw and the sample's normal ``e``: M = sign sqrt(W^2 + e^2).

    W^2 ~ chi2(2) and e^2 ~ chi2(1) are independent, so |M| is Maxwell (chi with 3 degrees of
    freedom) and with a random sign M is double-sided Maxwell.
    """
    r = rayleigh_from(u1, coefficients)
    m = sign * math.sqrt(r * r + e * e)
    return r, m, u * m


@scalar(inline="always")
def _extra_at(k0, k1, first, step, rep, rep_step, stream, j):
    """The extra draw of the ``j``-th sample of a fill: sample ``first + step j`` of replicate word ``rep + rep_step j``."""
    return extra_draw_from(k0, k1, np.uint64(first + step * j), np.uint64(rep + rep_step * j), stream, COEFFICIENTS)


# The extra-draw fills walk either the samples of one replicate word (step 2, rep_step 0: the even or
# odd samples of a replicate) or one sample of consecutive replicate words (step 0, rep_step 1: the
# replicate pairs of small N, see PAIRED_N).
@scalar
def fill_rayleigh(k0, k1, first, step, count, rep, rep_step, stream, w):
    """W of ``count`` samples (see above) into ``w``."""
    for j in range(count):
        u1, u2, sign, u = _extra_at(k0, k1, first, step, rep, rep_step, stream, j)
        w[j] = rayleigh_from(u1, COEFFICIENTS)


@scalar
def fill_maxwell(k0, k1, first, step, count, rep, rep_step, stream, eps, w, m, um):
    """W, M and U M (:func:`maxwell_from`) of ``count`` samples, whose normals are ``eps``."""
    for j in range(count):
        u1, u2, sign, u = _extra_at(k0, k1, first, step, rep, rep_step, stream, j)
        w[j], m[j], um[j] = maxwell_from(u1, sign, u, eps[j], COEFFICIENTS)


@scalar
def fill_maxwell_second(k0, k1, first, step, count, rep, rep_step, stream, eps, w, m, um, w2, e2):
    """As :func:`fill_maxwell`, and W' ~ Rayleigh(1) with eps' = W' cos(2 pi U) ~ N(0, 1).

    W' and eps' are independent of W, M and eps (eps' reuses U as its angle: U and eps' are
    never read by one estimator, so they need not be independent of each other).
    """
    for j in range(count):
        u1, u2, sign, u = _extra_at(k0, k1, first, step, rep, rep_step, stream, j)
        w[j], m[j], um[j] = maxwell_from(u1, sign, u, eps[j], COEFFICIENTS)
        r2 = rayleigh_from(u2, COEFFICIENTS)
        w2[j] = r2
        e2[j] = r2 * sincos_turn_from(u, COEFFICIENTS)[1]


@scalar
def fill_normal_pairs(k0, k1, first_pair, count, rep, stream, z_even, z_odd):
    """Normals of pairs ``first_pair .. first_pair+count-1`` of one replicate word into ``z_even[j], z_odd[j]``.

    A plain loop with no reduction, so LLVM vectorises it; the sweep kernels
    fill a small block that stays in L1 cache, then sum the estimator terms.
    """
    for j in range(count):
        z_even[j], z_odd[j] = normal_pair(k0, k1, np.uint64(first_pair + j), np.uint64(rep), stream)


@scalar
def fill_normal_reps(k0, k1, pair, first_rep, count, stream, z_even, z_odd):
    """Normals of pair ``pair`` of replicate words ``first_rep .. first_rep+count-1``: sample ``pair`` of
    replicates ``2 word`` (``z_even[j]``) and ``2 word + 1`` (``z_odd[j]``) under :data:`PAIRED_N`."""
    for j in range(count):
        z_even[j], z_odd[j] = normal_pair(k0, k1, np.uint64(pair), np.uint64(first_rep + j), stream)


@scalar
def fill_coordinate_pairs(k0, k1, first_pair, count, rep, stream, coordinate, z_even, z_odd):
    """:func:`fill_normal_pairs` for coordinate ``coordinate`` of the same samples."""
    c = np.uint64(coordinate)
    for j in range(count):
        z_even[j], z_odd[j] = coordinate_pair_from(k0, k1, np.uint64(first_pair + j), np.uint64(rep), stream, c, COEFFICIENTS)


@scalar
def fill_coordinate_reps(k0, k1, pair, first_rep, count, stream, coordinate, z_even, z_odd):
    """:func:`fill_normal_reps` for coordinate ``coordinate`` of the same samples."""
    c = np.uint64(coordinate)
    for j in range(count):
        z_even[j], z_odd[j] = coordinate_pair_from(k0, k1, np.uint64(pair), np.uint64(first_rep + j), stream, c, COEFFICIENTS)


def seed_key(seed: int) -> tuple[np.uint64, np.uint64]:
    """Split a seed in [0, 2**64) into the two 32-bit Philox key words."""
    seed = int(seed)
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be an integer in [0, 2**64), got {seed}")
    return np.uint64(seed & 0xFFFFFFFF), np.uint64(seed >> 32)


@serial
def _fill_blocks(counters, k0, k1, out):
    for i in range(counters.shape[0]):
        w = philox4x32_10(counters[i, 0], counters[i, 1], counters[i, 2], counters[i, 3], k0, k1)
        out[i, 0] = w[0]
        out[i, 1] = w[1]
        out[i, 2] = w[2]
        out[i, 3] = w[3]


@serial
def _fill_normals(k0, k1, rep, stream, start, out):
    first = start // 2
    pairs = (start + out.size + 1) // 2 - first
    z_even = np.empty(pairs)
    z_odd = np.empty(pairs)
    fill_normal_pairs(k0, k1, first, pairs, rep, stream, z_even, z_odd)
    for i in range(out.size):
        s = start + i
        out[i] = z_even[s // 2 - first] if s % 2 == 0 else z_odd[s // 2 - first]


def philox_blocks(counters, key) -> np.ndarray:
    """Philox4x32-10 of each row of ``counters`` (n x 4 words) under ``key`` (2 words).

    The plain-array form used by the known-answer tests.
    """
    c = np.ascontiguousarray(counters, dtype=np.uint64).reshape(-1, 4)
    if np.any(c > 0xFFFFFFFF):
        raise ValueError("counter words must be below 2**32")
    out = np.empty_like(c)
    k0, k1 = (np.uint64(int(w)) for w in key)
    _fill_blocks(c, k0, k1, out)
    return out


def normals(seed: int, count: int, *, rep: int = 0, stream: int = 0, start: int = 0) -> np.ndarray:
    """The standard normals ``start .. start+count-1`` of one (replicate, stream).

    Exactly the numbers the sweep kernels draw for that replicate and stream.
    """
    k0, k1 = seed_key(seed)
    out = np.empty(int(count), dtype=np.float64)
    _fill_normals(k0, k1, np.uint64(rep), np.uint64(stream), np.int64(start), out)
    return out


def paired(n, streams: int = 2):
    """Whether replicates of ``n`` samples are drawn in replicate pairs (``n`` an int or an array)."""
    return (np.asarray(n) <= PAIRED_N) & (streams >= 2)


def replicate_normals(seed: int, n: int, rep: int, stream: int, streams: int = 2, coordinate: int = 0) -> np.ndarray:
    """The ``n`` standard normals the sweep kernels draw for replicate ``rep`` of ``stream``, in sample order
    (of coordinate ``coordinate`` in ``dim`` dimensions: 0 is the first)."""
    k0, k1 = seed_key(seed)
    pairs = (int(n) + 1) // 2 if not paired(n, streams) else int(n)
    z_even, z_odd = np.empty(pairs), np.empty(pairs)
    word = rep if not paired(n, streams) else rep // 2  # paired: pair j of word rep // 2 is sample j of both replicates
    fill_coordinate_pairs(k0, k1, 0, pairs, word, np.uint64(stream), coordinate, z_even, z_odd)
    if not paired(n, streams):
        return np.stack([z_even, z_odd], axis=1).reshape(-1)[: int(n)]
    return z_odd if rep % 2 else z_even

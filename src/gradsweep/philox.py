"""Philox4x32-10 counter-based random numbers and Box-Muller normals.

Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
SC11; the Random123 library) maps a 128-bit counter and a 64-bit key to 128
random bits. Every number is a pure function of (key, counter), so any sample
of a sweep can be drawn from its position alone, on any thread, process,
machine or GPU, in any order.

gradsweep's stream layout:

* key   = the 64-bit seed, split into two 32-bit words (low, high);
* counter = (pair index low word, pair index high word, replicate, stream),
  where ``pair index = sample index // 2`` (one Philox block gives two normals)
  and ``stream`` identifies the grid cell (or the shared stream when common
  random numbers are used).

Uniforms take 53 bits from two 32-bit words and are centred on the 2**-53
grid, so they lie in the open interval (0, 1) and ``log(u)`` is always finite.

All integer arithmetic is done in uint64 holding 32-bit values; the constants
are module-level ``np.uint64`` so numba never promotes to float.
"""

from __future__ import annotations

import math

import numpy as np

from ._jit import scalar, serial

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK32 = np.uint64(0xFFFFFFFF)
_SHIFT32 = np.uint64(32)
_SHIFT11 = np.uint64(11)
_TWO_POW_M53 = 2.0**-53
_HALF_ULP = 2.0**-54
_TWO_PI = 2.0 * math.pi


@scalar
def _round(c0, c1, c2, c3, k0, k1):
    p0 = _M0 * c0
    p1 = _M1 * c2
    hi0 = p0 >> _SHIFT32
    lo0 = p0 & _MASK32
    hi1 = p1 >> _SHIFT32
    lo1 = p1 & _MASK32
    return hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0


@scalar
def philox4x32_10(c0, c1, c2, c3, k0, k1):
    """Ten Philox rounds; all arguments and results are uint64 holding 32 bits."""
    for _ in range(9):
        c0, c1, c2, c3 = _round(c0, c1, c2, c3, k0, k1)
        k0 = (k0 + _W0) & _MASK32
        k1 = (k1 + _W1) & _MASK32
    return _round(c0, c1, c2, c3, k0, k1)


@scalar
def uniform53(lo, hi):
    """A double in (0, 1) from two 32-bit words: 53 bits, centred on the grid."""
    bits = ((hi << _SHIFT32) | lo) >> _SHIFT11
    return np.float64(bits) * _TWO_POW_M53 + _HALF_ULP


@scalar
def normal_pair(k0, k1, pair, rep, stream):
    """Two independent standard normals for samples ``2*pair`` and ``2*pair+1``.

    Box-Muller: r = sqrt(-2 log u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2).
    ``pair`` is a uint64; ``rep`` and ``stream`` are uint64 below 2**32.
    """
    w0, w1, w2, w3 = philox4x32_10(pair & _MASK32, pair >> _SHIFT32, rep, stream, k0, k1)
    u1 = uniform53(w0, w1)
    u2 = uniform53(w2, w3)
    r = math.sqrt(-2.0 * math.log(u1))
    a = _TWO_PI * u2
    return r * math.cos(a), r * math.sin(a)


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
    for i in range(out.size):
        s = start + i
        z0, z1 = normal_pair(k0, k1, np.uint64(s // 2), rep, stream)
        out[i] = z0 if s % 2 == 0 else z1


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

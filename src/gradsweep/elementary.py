"""Branch-free log and sin/cos for Box-Muller, accurate to a few ulp.

numba's LLVM has no vector math library here, so ``math.log``, ``math.sin``
and ``math.cos`` stay scalar libm calls (about 4, 10 and 9 ns each) and set
the speed of the whole engine. These versions are plain arithmetic that LLVM
can inline and vectorise.

* :func:`log_unit` — ``log(x)`` for positive, finite, normal ``x`` (all that
  Box-Muller needs: its uniforms lie in [2**-54, 1)). ``x = m * 2**k`` with
  ``m`` in [sqrt(1/2), sqrt(2)), then ``log(m) = 2 atanh(s)``,
  ``s = (m - 1) / (m + 1)``, ``|s| <= 0.1716``, summed as the atanh series to
  the ``s**23`` term: truncation below 2e-19 relative; ``k log 2`` is added
  in two parts so it is exact to 2**-80.
* :func:`sincos_turn` — ``(sin 2 pi u, cos 2 pi u)``. ``4u`` is split exactly
  into a quadrant ``q`` and a remainder ``f`` in [-1/2, 1/2]; with
  ``phi = f pi / 2`` in [-pi/4, pi/4] the Taylor series to ``phi**17`` (sin)
  and ``phi**18`` (cos) truncate below 1e-19; the quadrant rotates the pair.
  Because the reduction is exact, the result is the sine of the exact angle
  2 pi u, not of its rounded value. ``q`` stays a float: its last two bits
  are read from the bits of ``q + 1.5 * 2**52`` and the signs are flipped
  with a bit mask, where an int conversion and a multiply by +-1 would cost
  a scalar round trip per lane (AVX2 has no vector float-int64
  conversion): the same bits, sin/cos alone 1.8x faster, a normal pair
  1.07x (2-core AMD EPYC, AVX2). It limits u to ``|u| < 2**49``.

Both are compiled with fused multiply-adds (see :mod:`gradsweep._jit`).
The measured error bounds against numpy (long double where available) are
asserted in ``tests/test_elementary.py`` over the whole input range.
"""

from __future__ import annotations

import math
from decimal import Decimal, getcontext

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from ._jit import polynomial


@intrinsic
def float_bits(typingctx, x):
    """The IEEE-754 bits of a float64, as uint64 (a bit-cast, no conversion)."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.uint64(types.float64), codegen


@intrinsic
def bits_float(typingctx, b):
    """The float64 whose IEEE-754 bits are the uint64 ``b``."""
    if b != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.uint64), codegen


def _ln2_split() -> tuple[float, float]:
    getcontext().prec = 50
    ln2 = Decimal(2).ln()
    hi = math.ldexp(math.floor(math.ldexp(float(ln2), 32)), -32)  # ln 2 to 32 bits
    lo = float(ln2 - Decimal(hi))
    return hi, lo


_LN2_HI, _LN2_LO = _ln2_split()  # k * _LN2_HI is exact for |k| < 2**20
_SQRT2 = math.sqrt(2.0)
_EXP_MASK = np.uint64(0x7FF)
_MANT_MASK = np.uint64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.uint64(0x3FF0000000000000)
_SHIFT52 = np.uint64(52)
# atanh series: log(m) = 2 s (1 + z/3 + z^2/5 + ... ), z = s^2
_A = tuple(1.0 / (2 * j + 1) for j in range(1, 12))  # 1/3 .. 1/23
_HALF_PI = math.pi / 2
_ROUND_BITS = 1.5 * 2.0**52  # adding it to an integer-valued |q| < 2**51 is exact and leaves q in the low bits
#: floor as a float (``math.floor`` gives an int in numba, a conversion AVX2 cannot vectorise); the CUDA
#: kernels rebind it to libdevice's, having no ``np.floor``.
floor_float = np.floor
_THREE = np.uint64(3)
_ONE = np.uint64(1)
_SHIFT63 = np.uint64(63)
# Taylor coefficients (-1)^j / (2j+1)! and (-1)^j / (2j)!
_S = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(1, 9))  # phi^3 .. phi^17
_C = tuple((-1) ** j / math.factorial(2 * j) for j in range(1, 10))  # phi^2 .. phi^18
#: The polynomial coefficients of both functions, in one tuple. On the CPU they are compile-time
#: constants (:func:`log_unit`, :func:`sincos_turn`). The CUDA kernels take them as an argument
#: and pass them down (the ``*_from`` forms): ptxas rebuilds a 64-bit literal with two moves on
#: every use in a loop, but reads an argument with one load.
COEFFICIENTS = (*_A, *_S, *_C)
assert (len(_A), len(_S), len(_C)) == (11, 8, 9)  # the indices written in the *_from functions


@polynomial
def log_unit_from(x, c):
    """:func:`log_unit` with the :data:`COEFFICIENTS` ``c`` given."""
    bits = float_bits(x)
    k = np.float64(np.int64((bits >> _SHIFT52) & _EXP_MASK) - 1023)
    m = bits_float((bits & _MANT_MASK) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    k = k + 1.0 if big else k
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = c[5] + z * (c[6] + z * (c[7] + z * (c[8] + z * (c[9] + z * c[10]))))
    p = c[0] + z * (c[1] + z * (c[2] + z * (c[3] + z * (c[4] + z * p))))
    log_m = 2.0 * s + 2.0 * s * z * p
    return k * _LN2_HI + (log_m + k * _LN2_LO)


@polynomial
def log_unit(x):
    """Natural log of a positive, finite, normal float64 (no special cases)."""
    return log_unit_from(x, COEFFICIENTS)


@polynomial
def sincos_turn_from(u, c):
    """:func:`sincos_turn` with the :data:`COEFFICIENTS` ``c`` given."""
    a = 4.0 * u
    q = floor_float(a + 0.5)  # an integer, |q| < 2**51
    phi = (a - q) * _HALF_PI
    z = phi * phi
    # literal indices (sines from 11, cosines from 19), so numba reads the tuple statically
    s = phi + phi * z * (c[11] + z * (c[12] + z * (c[13] + z * (c[14] + z * (c[15] + z * (c[16] + z * (c[17] + z * c[18])))))))
    co = 1.0 + z * (c[19] + z * (c[20] + z * (c[21] + z * (c[22] + z * (c[23] + z * (c[24] + z * (c[25] + z * (c[26] + z * c[27]))))))))
    quadrant = float_bits(q + _ROUND_BITS) & _THREE  # q mod 4: q + 1.5 * 2**52 holds q in its low bits, two's complement
    swap = (quadrant & _ONE) == _ONE
    sin_sign = (quadrant >> _ONE) << _SHIFT63  # quadrants 2, 3: sin < 0
    cos_sign = (((quadrant + _ONE) >> _ONE) & _ONE) << _SHIFT63  # quadrants 1, 2: cos < 0
    sin_out = co if swap else s
    cos_out = s if swap else co
    return bits_float(float_bits(sin_out) ^ sin_sign), bits_float(float_bits(cos_out) ^ cos_sign)


@polynomial
def sincos_turn(u):
    """``(sin(2 pi u), cos(2 pi u))`` for finite ``u`` with ``|u| < 2**49``."""
    return sincos_turn_from(u, COEFFICIENTS)

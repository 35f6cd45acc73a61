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
  2 pi u, not of its rounded value.

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
# Taylor coefficients (-1)^j / (2j+1)! and (-1)^j / (2j)!
_S = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(1, 9))  # phi^3 .. phi^17
_C = tuple((-1) ** j / math.factorial(2 * j) for j in range(1, 10))  # phi^2 .. phi^18
(_A1, _A2, _A3, _A4, _A5, _A6, _A7, _A8, _A9, _A10, _A11) = _A
(_S1, _S2, _S3, _S4, _S5, _S6, _S7, _S8) = _S
(_C1, _C2, _C3, _C4, _C5, _C6, _C7, _C8, _C9) = _C


@polynomial
def log_unit(x):
    """Natural log of a positive, finite, normal float64 (no special cases)."""
    bits = float_bits(x)
    k = np.float64(np.int64((bits >> _SHIFT52) & _EXP_MASK) - 1023)
    m = bits_float((bits & _MANT_MASK) | _ONE_BITS)  # in [1, 2)
    big = m > _SQRT2
    m = 0.5 * m if big else m
    k = k + 1.0 if big else k
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    p = _A1 + z * (_A2 + z * (_A3 + z * (_A4 + z * (_A5 + z * (_A6 + z * (_A7 + z * (_A8 + z * (_A9 + z * (_A10 + z * _A11)))))))))
    log_m = 2.0 * s + 2.0 * s * z * p
    return k * _LN2_HI + (log_m + k * _LN2_LO)


@polynomial
def sincos_turn(u):
    """``(sin(2 pi u), cos(2 pi u))`` for finite ``u`` with ``|u| < 2**50``."""
    a = 4.0 * u
    q = math.floor(a + 0.5)
    phi = (a - q) * _HALF_PI
    z = phi * phi
    s = phi + phi * z * (_S1 + z * (_S2 + z * (_S3 + z * (_S4 + z * (_S5 + z * (_S6 + z * (_S7 + z * _S8)))))))
    c = 1.0 + z * (_C1 + z * (_C2 + z * (_C3 + z * (_C4 + z * (_C5 + z * (_C6 + z * (_C7 + z * (_C8 + z * _C9))))))))
    quadrant = np.int64(q) & 3
    swap = (quadrant & 1) == 1
    sin_sign = 1.0 - 2.0 * np.float64(quadrant >> 1)
    cos_sign = 1.0 - 2.0 * np.float64(((quadrant + 1) >> 1) & 1)
    sin_out = c if swap else s
    cos_out = s if swap else c
    return sin_sign * sin_out, cos_sign * cos_out

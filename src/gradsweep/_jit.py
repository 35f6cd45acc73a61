"""The JIT policy, in one place.

Every numba function in gradsweep is compiled through these helpers, so the
choices below hold everywhere:

* ``error_model="numpy"``: division by zero gives inf/nan instead of raising,
  which removes a branch per division and lets LLVM vectorise loops.
* ``fastmath`` is off: it would let LLVM reassociate the accumulations and
  break bit-for-bit reproducibility. The one exception is :func:`polynomial`,
  for the polynomial kernels of log and sin/cos, which allows only
  ``contract`` (fused multiply-add; no reassociation). That makes Box-Muller
  25% faster; the price is that normals can differ in the last bit between a
  CPU with FMA and one without (x86 before 2013).
* On-disk caching is on by default and can be switched off with the
  environment variable ``GRADSWEEP_NUMBA_CACHE=0``. Many processes compiling
  into one cache at once (a cluster starting up) can corrupt numba's cache
  (numba issues 4807 and 10128); turn caching off there, or give each job its
  own ``NUMBA_CACHE_DIR``.
"""

from __future__ import annotations

import os
import types

import numba

CACHE = os.environ.get("GRADSWEEP_NUMBA_CACHE", "1").strip().lower() not in {"0", "false", "no", "off"}

_COMMON = {"error_model": "numpy", "fastmath": False}


def rebind(fn, **names):
    """A copy of the Python function behind ``fn`` (a dispatcher or a function) with the global ``names`` replaced.

    How one source serves several compilations: a user objective in place of
    the built-ins, or device helpers in place of CPU ones. numba reads globals
    as compile-time constants, so the copy compiles against the new names.
    """
    py = getattr(fn, "py_func", fn)
    return types.FunctionType(py.__code__, {**py.__globals__, **names}, py.__name__, py.__defaults__, py.__closure__)


def scalar(fn=None, *, cache: bool = CACHE, inline: str = "never"):
    """Compile a small scalar helper.

    LLVM inlines small helpers by itself; ``inline="always"`` makes numba
    inline a larger one at the IR level, which a hot loop needs to vectorise
    (a call left in the loop body stops vectorisation).
    """
    deco = numba.njit(cache=cache, inline=inline, **_COMMON)
    return deco if fn is None else deco(fn)


def polynomial(fn=None, *, cache: bool = CACHE):
    """Compile a polynomial evaluation with multiply-adds fused (``contract`` only)."""
    deco = numba.njit(cache=cache, error_model="numpy", fastmath={"contract"})
    return deco if fn is None else deco(fn)


def kernel(fn=None, *, cache: bool = CACHE):
    """Compile a multi-threaded kernel (``prange`` loops run in parallel)."""
    deco = numba.njit(parallel=True, cache=cache, **_COMMON)
    return deco if fn is None else deco(fn)


def serial(fn=None, *, cache: bool = CACHE):
    """Compile a single-threaded array loop."""
    deco = numba.njit(cache=cache, **_COMMON)
    return deco if fn is None else deco(fn)

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

import hashlib
import importlib.util
import os
import sys
import tempfile
import types
from functools import cache
from pathlib import Path

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


def rebind_tree(fn, wrap, **names):
    """:func:`rebind` ``fn``, and likewise every estimator helper it calls, each compiled by ``wrap``.

    An estimator's quantity function may call helpers of its own module (score_delta's
    residual, score_loo's centred sum); those must see the same ``names`` (a user's f) and
    be compiled for the same target (a CUDA device function), so they are rebound too.
    """
    py = getattr(fn, "py_func", fn)
    calls = {}
    for name in py.__code__.co_names:
        helper = py.__globals__.get(name)
        if name not in names and isinstance(helper, numba.core.dispatcher.Dispatcher):
            if helper.py_func.__module__.startswith("gradsweep.estimators"):
                calls[name] = wrap(rebind_tree(helper, wrap, **names))
    return rebind(py, **names, **calls)


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


@cache
def package_digest() -> str:
    """A digest of gradsweep's own sources: generated kernels are named by it, so an edited or
    upgraded gradsweep never loads a kernel (or numba cache entry) built from older helpers."""
    h = hashlib.sha256()
    for path in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(path.relative_to(Path(__file__).parent).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def kernel_dir() -> Path:
    """Where generated kernel modules are written: GRADSWEEP_KERNEL_DIR, else beside numba's cache
    (NUMBA_CACHE_DIR), else the user's cache folder."""
    if os.environ.get("GRADSWEEP_KERNEL_DIR"):
        return Path(os.environ["GRADSWEEP_KERNEL_DIR"])
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / "gradsweep-kernels"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gradsweep" / "kernels"


def generated_module(stem: str, source: str, namespace: dict | None = None) -> types.ModuleType:
    """A module made from generated ``source``.

    With a ``namespace`` (rebound helpers for a user objective, never cached) the source
    runs in memory. Otherwise, with caching on, it is written once to :func:`kernel_dir`
    as ``STEM_DIGEST.py`` (atomically; the digest covers the source and gradsweep's own)
    and imported from there, so numba's on-disk cache can keep its kernels; an unwritable
    folder falls back to memory.
    """
    if namespace is not None or not CACHE:
        module = types.ModuleType(stem)
        scope = {"__name__": stem, **(namespace or {})}
        exec(compile(source, f"<gradsweep generated {stem}>", "exec"), scope)
        module.__dict__.update(scope)
        return module
    digest = hashlib.sha256((package_digest() + source).encode()).hexdigest()[:20]
    name = f"gradsweep_kernel_{stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    folder = kernel_dir()
    path = folder / f"{name}.py"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(source)
            os.replace(tmp, path)  # concurrent writers write the same text
    except OSError:
        return generated_module(stem, source, namespace={})
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module

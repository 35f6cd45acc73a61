"""Stop signals that numba's compiler cannot swallow.

Python runs a signal's handler in whatever Python code is running when the signal comes, and its
exception (KeyboardInterrupt, for Ctrl-C) is raised there. During a kernel's compile that is often a
callback llvmlite calls from C (its object cache), which prints the exception as "ignored" and drops
it: a run stopped while its kernels compiled went on to the end. While :func:`watching`, a stop that
comes during a compile is held instead, and raised by the next :func:`check`, which the sweep calls
between kernel calls.
"""

from __future__ import annotations

import contextlib
import signal
import threading

from numba.core.compiler_lock import global_compiler_lock

_held: list[BaseException] = []


def compiling() -> bool:
    """Whether this thread is inside numba's compiler."""
    return global_compiler_lock.is_locked()


def _holding(previous):
    def handler(signum, frame):
        try:
            previous(signum, frame)
        except BaseException as e:
            if not compiling():
                raise
            _held.append(e)

    return handler


@contextlib.contextmanager
def watching():
    """Hold the stops (Ctrl-C, and SIGTERM where a handler makes it one) that come during a compile,
    for :func:`check`. The handlers in place are kept and called; signals without one are left alone."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    wrapped = {s: h for s, h in previous.items() if callable(h)}
    for s, h in wrapped.items():
        signal.signal(s, _holding(h))
    _held.clear()
    try:
        yield
    finally:
        for s in wrapped:
            signal.signal(s, previous[s])
        _held.clear()


def check() -> None:
    """Raise the first stop held during a compile, if any."""
    if _held:
        stop = _held[0]
        _held.clear()
        raise stop

"""How gradsweep writes a file: checked first, one writer at a time, replaced atomically.

* :func:`check_writable` refuses early (before hours of work) what cannot end well: an existing
  file without ``overwrite``, a directory, a device, FIFO or socket, a missing or read-only folder.
* :func:`replacing` writes beside the target and renames into place, so an interrupted write
  leaves the old file (or none), never a truncated one. A write to a symlink lands in its target,
  and the link stays.
* :func:`writing` holds a lock on the target for a whole command (``run``, ``extend``, ``merge``,
  ``demo``), so two writers of one file cannot both report success while one's work is lost: the
  second is refused, naming the first. It is ``flock`` on ``.NAME.lock`` beside the file, which
  the kernel drops when its holder dies (even by SIGKILL); the file says who holds it. It is
  written here rather than taken from a file-lock library because it must name its holder and
  leave no file behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import os
import socket
import stat
from pathlib import Path


class LockedError(OSError):
    """Another process is writing the file; the message names it."""


def target(path) -> Path:
    """The file a write to ``path`` lands in: a symlink's target, followed."""
    return Path(os.path.realpath(path))


def check_writable(path, overwrite: bool) -> Path:
    """Refuse early (FileExistsError / OSError with one line) rather than after hours of work."""
    path = Path(path)
    real = target(path)
    if real.is_dir():
        raise IsADirectoryError(f"output {str(path)!r} is a directory")
    if real.exists() and not stat.S_ISREG(real.stat().st_mode):
        raise OSError(f"output {str(path)!r} is not a regular file (a device, FIFO or socket); gradsweep writes only regular files")
    if real.exists() and not overwrite:
        raise FileExistsError(f"output {str(path)!r} exists; pass --overwrite to replace it")
    if not real.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    if not os.access(real.parent, os.W_OK):
        raise PermissionError(f"output folder {str(path.parent)!r} is not writable")
    return path


def _temporary(real: Path, pid: int) -> Path:
    return real.with_name(f".{real.name}.{pid}.tmp{real.suffix}")  # the suffix kept: matplotlib reads the format from it


@contextlib.contextmanager
def replacing(path, *, overwrite: bool = True):
    """Yield a temporary path to write; when the block ends without error it replaces ``path``'s target.

    The temporary file is synced to disk before the rename and removed if anything fails.
    """
    real = target(path)
    tmp = _temporary(real, os.getpid())
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        if real.exists() and not overwrite:
            raise FileExistsError(f"output {str(path)!r} appeared while running; pass --overwrite to replace it")
        os.replace(tmp, real)
    finally:
        if tmp.exists():
            tmp.unlink()


def remove_stale_temporaries(path) -> None:
    """Remove temporary files of ``path`` left by writers that died (their process is gone)."""
    real = target(path)
    for tmp in real.parent.glob(f".{real.name}.*.tmp{real.suffix}"):
        pid = tmp.name[len(real.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def lock_path(path) -> Path:
    real = target(path)
    return real.with_name(f".{real.name}.lock")


def _open_locked(lock: Path) -> int | None:
    """A descriptor of ``lock`` with the flock held, or None where another process holds it."""
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise OSError(f"cannot lock {str(lock.parent / lock.name[1:-5])!r} for writing: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        try:  # the last holder may have removed the file between our open and our flock: lock a fresh one
            if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def holder(path) -> str:
    """Who holds the lock of ``path``, as its lock file says."""
    try:
        return lock_path(path).read_text().strip() or "another process"
    except OSError:
        return "another process"


@contextlib.contextmanager
def writing(path, action: str):
    """Hold the lock of ``path`` for the enclosed block (:class:`LockedError` where another process holds it);
    temporary files of writers that died are removed once it is held."""
    lock = lock_path(path)
    fd = _open_locked(lock)
    if fd is None:
        raise LockedError(f"{path} is being written by {holder(path)}; wait for it to finish")
    since = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    os.ftruncate(fd, 0)
    os.write(fd, f"process {os.getpid()} on {socket.gethostname()} ({action}, since {since})\n".encode())
    try:
        remove_stale_temporaries(path)
        yield
    finally:
        os.unlink(lock)  # before the unlock, so no one takes a file that is about to vanish
        os.close(fd)

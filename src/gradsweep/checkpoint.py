"""Checkpoints: never lose more than a few seconds of a long run, nor spend more than 2% of it saving.

Every backend merges units strictly in plan order, so a run's progress is
fully described by how many units are done and the merged state so far. A
checkpoint stores exactly that, with a key naming what it belongs to (the
config, the replicate range, the shard, the kernels and the package version), beside the
output as ``OUT.checkpoint.npz``, written atomically (a temporary file, then
a rename). Resuming skips the done units and continues the same merge, so the
final result is bit-identical to an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from ._version import __version__
from .config import Config, ConfigError
from .files import replacing, target

#: Seconds between checkpoints (GRADSWEEP_CHECKPOINT_SECONDS overrides; 0: after every batch).
INTERVAL = float(os.environ.get("GRADSWEEP_CHECKPOINT_SECONDS", "5"))
#: Saving takes at most this share of the run: after a save of t seconds the next waits >= t / MAX_SHARE
#: (a huge grid's state takes long to write; a small one's, milliseconds).
MAX_SHARE = 0.02


def _digest(key: str, done: int, state: np.ndarray) -> str:
    """SHA-256 of a checkpoint's contents: an edited ``done`` or state is refused, not resumed from."""
    h = hashlib.sha256(f"{key}\n{done}\n{state.shape}\n".encode())
    h.update(np.ascontiguousarray(state, dtype="<f8").tobytes())
    return h.hexdigest()


def checkpoint_path(output) -> Path:
    """Beside the file the output lands in (a symlink's target)."""
    output = target(output)
    return output.with_name(output.name + ".checkpoint.npz")


class Checkpoint:
    """Load, save and remove the checkpoint of one run."""

    def __init__(
        self,
        output,
        config: Config,
        *,
        resume: bool,
        rep_start: int = 0,
        reps: int | None = None,
        shard=None,
        interval: float | None = None,
        kernels: str = "cpu",
    ):
        self.path = checkpoint_path(output)
        self.key = json.dumps(
            {
                "config": config.to_dict(),
                "rep_start": rep_start,
                "reps": config.reps if reps is None else reps,
                "shard": shard,
                "kernels": kernels,  # CPU and GPU sums differ in the last bits: never mix them in one result
                "gradsweep": __version__,
            },
            sort_keys=True,
        )
        self.resume = resume
        self.interval = INTERVAL if interval is None else interval
        self.wait = self.interval  # grows when saves are slow (MAX_SHARE)
        self._last = time.monotonic()

    def check(self) -> None:
        """Refuse early: an existing checkpoint without --resume, or one from another run."""
        if not self.path.exists():
            return
        if not self.resume:
            raise ConfigError(f"found {self.path.name} from an interrupted run; pass --resume to continue it, or delete it to start over")
        self._read()

    def _read(self):
        try:
            with np.load(self.path, allow_pickle=False) as data:
                key, done, state, digest = str(data["key"]), int(data["done"]), data["state"].copy(), str(data["digest"])
        except Exception as e:  # a damaged file: say so instead of a traceback
            raise ConfigError(f"cannot read checkpoint {self.path.name}: {e}; delete it to start over") from None
        if digest != _digest(key, done, state):
            raise ConfigError(f"checkpoint {self.path.name} was changed after it was written; delete it to start over")
        if key != self.key:
            raise ConfigError(f"checkpoint {self.path.name} belongs to a different config or gradsweep version; delete it to start over")
        return done, state

    def load(self):
        """(units done, state) to resume from, or None to start from scratch."""
        self.check()
        return self._read() if self.path.exists() else None

    def start(self, empty_state, units: int):
        """(units done, state) to continue from: the saved ones, or (0, ``empty_state``), of a plan of ``units``."""
        saved = self.load()
        if saved is None:
            return 0, empty_state
        done, state = saved
        if not 0 <= done <= units or state.shape != empty_state.shape:
            raise ConfigError(f"checkpoint {self.path.name} does not fit this run ({done} of {units} units done); delete it to start over")
        return saved

    def finish(self, done_before: int, total: int, state) -> None:
        """Save the completed state (a kill during the final write then loses nothing)."""
        if done_before < total:
            self.maybe_save(total, state, force=True)

    def maybe_save(self, done: int, state: np.ndarray, *, force: bool = False) -> None:
        if not force and time.monotonic() - self._last < self.wait:
            return
        began = time.monotonic()
        with replacing(self.path) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(self.key), done=np.array(done), state=state, digest=np.array(_digest(self.key, done, state)))
        self._last = time.monotonic()
        self.wait = max(self.interval, (self._last - began) / MAX_SHARE)

    def remove(self) -> None:
        if self.path.exists():
            self.path.unlink()

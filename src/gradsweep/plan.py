"""How a sweep is cut into work, by the problem alone, never by the machine.

* A **cell** is one (N, k, theta, sigma) point; cells are numbered in C order over
  (N, k, theta, sigma) (k, the objective's parameter, has one value unless swept).
* A **group** is a run of consecutive cells that share one random stream: a
  single cell normally; with common random numbers, all the (k, theta, sigma)
  cells of one N. Its stream number is the cell number, or the N index.
* A **unit** is one group and a block of consecutive replicates. Its result is
  one Welford state per cell and estimator term; a cell's state is its units'
  states merged in unit order. Units are what threads share, what dask ships
  and what a checkpoint records.
* A replicate's N samples are drawn in **chunks** of fixed size, in
  parallel; each chunk's draws are used for every cell of the group, and the
  chunk sums are added in chunk order.
* Small N (``philox.PAIRED_N``; the unit is **paired**): a unit's replicates are
  drawn in replicate pairs, and cut into **pair items** of about CHUNK samples;
  an item's result is already a Welford state per cell and output, and a unit's
  state is its items' states merged in item order.

Every size here depends only on the config (and the replicate range), so the
same config gives the same additions in the same order on any number of
threads or machines: the results are bit-identical.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .philox import paired

#: Samples summed sequentially in one chunk (even, so chunks hold whole Philox pairs).
CHUNK = 1 << 16
#: At most this many chunks per replicate; beyond, chunks grow with N.
MAX_CHUNKS = 1 << 14
#: A unit holds about this many cell-samples (at least one replicate).
UNIT_SAMPLES = 1 << 24
#: A batch handed to a kernel holds about this many cell-samples / chunk-cell sums.
BATCH_SAMPLES = 1 << 25
BATCH_ITEMS = 1 << 18


def chunk_size(n):
    """Samples per chunk for replicates of ``n`` samples (even); ``n`` an int or an array of them."""
    n = np.asarray(n, dtype=np.int64)
    grown = -(-n // MAX_CHUNKS)
    return np.where(n <= CHUNK * MAX_CHUNKS, CHUNK, grown + (grown & 1))


def chunks(n):
    """Chunks per replicate of ``n`` samples."""
    return -(-np.asarray(n, dtype=np.int64) // chunk_size(n))


@dataclass(frozen=True)
class Plan:
    """The units of a sweep, in the fixed merge order.

    One entry per unit: ``cell0`` (first cell of its group), ``stream``,
    ``rep0`` (first replicate index), ``nrep`` (replicates), ``n`` (samples per
    replicate). Every group has ``width`` cells (``cell0 .. cell0 + width - 1``).
    """

    cell0: np.ndarray
    stream: np.ndarray
    rep0: np.ndarray
    nrep: np.ndarray
    n: np.ndarray
    width: int = 1
    streams: int = 2

    @property
    def size(self) -> int:
        return self.cell0.size

    @property
    def draws(self) -> np.ndarray:
        """Normals drawn by each unit."""
        return self.nrep * self.n

    @property
    def samples(self) -> np.ndarray:
        """Cell-samples (draws times cells) of each unit: the work, and what progress counts."""
        return self.draws * self.width

    @staticmethod
    def total(counts: np.ndarray) -> int:
        """The exact sum of per-unit ``counts`` (a sweep's total can pass 2**63, where an int64 sum wraps)."""
        return int(np.asarray(counts).astype(object).sum())

    def items(self) -> np.ndarray:
        """Chunk items (pair items, for paired units) of each unit."""
        pairs = (self.rep0 + self.nrep + 1) // 2 - self.rep0 // 2
        return np.where(self.paired, -(-pairs // pairs_per_item(self.n)), self.nrep * chunks(self.n))

    @property
    def paired(self) -> np.ndarray:
        """Which units draw their replicates in pairs (small N; see :mod:`gradsweep.philox`)."""
        return paired(self.n, self.streams)

    def take(self, index) -> Plan:
        return Plan(self.cell0[index], self.stream[index], self.rep0[index], self.nrep[index], self.n[index], self.width, self.streams)

    def cells(self) -> np.ndarray:
        """The cell of every (unit, cell-in-group), flattened in that order."""
        return (self.cell0[:, None] + np.arange(self.width)[None, :]).ravel()

    def batches(self, max_samples: int | None = None, max_items: int | None = None) -> list[slice]:
        """Consecutive unit ranges of about ``max_samples`` cell-samples and ``max_items`` sums
        (default BATCH_SAMPLES and BATCH_ITEMS). Batch sizes never change the results."""
        max_samples = BATCH_SAMPLES if max_samples is None else max_samples
        max_items = BATCH_ITEMS if max_items is None else max_items
        samples = self.samples
        sums = self.items() * self.width
        out, start, acc_s, acc_i = [], 0, 0, 0
        for u in range(self.size):
            if u > start and (acc_s + samples[u] > max_samples or acc_i + sums[u] > max_items):
                out.append(slice(start, u))
                start, acc_s, acc_i = u, 0, 0
            acc_s += int(samples[u])
            acc_i += int(sums[u])
        if self.size:
            out.append(slice(start, self.size))
        return out


def make_plan(shape: tuple[int, ...], N, rep_start: int, reps: int, common_random_numbers: bool = False, streams: int = 2) -> Plan:
    """Units for replicates ``rep_start .. rep_start + reps - 1`` of a grid of cells, N its first axis
    (a sweep's (N, k, theta, sigma))."""
    per_n = math.prod(shape[1:])
    width = per_n if common_random_numbers else 1
    cell0, stream, rep0, nrep, ns = [], [], [], [], []
    for g in range(shape[0] * per_n // width):
        first = g * width
        n = int(N[first // per_n])
        block = max(1, UNIT_SAMPLES // (n * width))
        if paired(n, streams):  # whole replicate pairs, where the replicates start on a pair
            block = max(2, block - block % 2)
        for r0 in range(0, reps, block):
            cell0.append(first)
            stream.append(g)
            rep0.append(rep_start + r0)
            nrep.append(min(block, reps - r0))
            ns.append(n)
    as64 = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    return Plan(as64(cell0), as64(stream), as64(rep0), as64(nrep), as64(ns), width, streams)


def unit_items(plan: Plan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How each unit of a (batch of a) plan is cut: ``unit_offset`` (its first chunk item; one
    more entry, the total), ``per_rep`` (chunks per replicate) and ``size`` (samples per chunk)."""
    per_rep = chunks(plan.n)
    offset = np.zeros(plan.size + 1, dtype=np.int64)
    np.cumsum(plan.items(), out=offset[1:])
    return offset, per_rep, chunk_size(plan.n)


def chunk_items(plan: Plan) -> tuple[np.ndarray, ...]:
    """The chunk items of a (batch of a) plan: units in order, then replicates, then chunks.

    Returns ``item_unit, item_rep, item_start, item_stop`` and ``unit_offset``,
    where the items of unit u are ``unit_offset[u] : unit_offset[u+1]``.
    """
    offset, per_rep, size = unit_items(plan)
    item_unit = np.repeat(np.arange(plan.size, dtype=np.int64), np.diff(offset))
    within = np.arange(offset[-1], dtype=np.int64) - offset[item_unit]  # the item's place in its unit
    per_rep, size = per_rep[item_unit], size[item_unit]
    item_rep = plan.rep0[item_unit] + within // per_rep
    item_start = within % per_rep * size
    item_stop = np.minimum(item_start + size, plan.n[item_unit])
    return item_unit, item_rep, item_start, item_stop, offset


def pairs_per_item(n):
    """Replicate pairs per pair item: about CHUNK samples."""
    return np.maximum(1, CHUNK // (2 * np.asarray(n, dtype=np.int64)))


def pair_items(plan: Plan) -> tuple[np.ndarray, ...]:
    """The pair items of a (batch of a) plan of paired units: units in order, then items of
    ``max(1, CHUNK // (2 n))`` replicate pairs, counted from the unit's first pair.

    Returns ``item_unit, item_lo, item_hi`` (the item's replicates ``lo .. hi - 1``: a
    unit that starts or ends inside a pair holds one replicate of it) and ``unit_offset``.
    """
    first = plan.rep0 // 2
    per_item = pairs_per_item(plan.n)
    count = plan.items()
    offset = np.zeros(plan.size + 1, dtype=np.int64)
    np.cumsum(count, out=offset[1:])
    item_unit = np.repeat(np.arange(plan.size, dtype=np.int64), count)
    within = np.arange(offset[-1], dtype=np.int64) - offset[item_unit]
    pair0 = first[item_unit] + within * per_item[item_unit]
    item_lo = np.maximum(plan.rep0[item_unit], 2 * pair0)
    item_hi = np.minimum((plan.rep0 + plan.nrep)[item_unit], 2 * (pair0 + per_item[item_unit]))
    return item_unit, item_lo, item_hi, offset

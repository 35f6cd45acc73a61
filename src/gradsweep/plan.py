"""How a sweep is cut into work, by the problem alone, never by the machine.

* A **cell** is one (N, theta, sigma) point; cells are numbered in C order over
  (N, theta, sigma), and a cell's number is its random **stream**.
* A **unit** is one cell and a block of consecutive replicates. Its result is
  one Welford state per estimator term; cells' states are the units' states
  merged in unit order. Units are what threads share, what dask ships and
  what a checkpoint records.
* A replicate's N samples are summed in **chunks** of fixed size, in parallel,
  and the chunk sums are added in chunk order.

Every size here depends only on N (and the configured replicate range), so
the same config gives the same additions in the same order on any number of
threads or machines: the results are bit-identical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Samples summed sequentially in one chunk (even, so chunks hold whole Philox pairs).
CHUNK = 1 << 16
#: At most this many chunks per replicate; beyond, chunks grow with N.
MAX_CHUNKS = 1 << 14
#: A unit holds about this many samples (at least one replicate).
UNIT_SAMPLES = 1 << 24
#: A batch handed to a kernel holds about this many samples / chunk items.
BATCH_SAMPLES = 1 << 25
BATCH_ITEMS = 1 << 18


def chunk_size(n: int) -> int:
    """Samples per chunk for replicates of ``n`` samples (even)."""
    if n <= CHUNK * MAX_CHUNKS:
        return CHUNK
    size = -(-n // MAX_CHUNKS)
    return size + (size & 1)


def reps_per_unit(n: int) -> int:
    return max(1, UNIT_SAMPLES // n)


@dataclass(frozen=True)
class Plan:
    """The units of a sweep, in the fixed merge order.

    Arrays of one entry per unit: ``cell`` (flat cell number), ``rep0`` (first
    replicate index), ``nrep`` (replicates), ``n`` (samples per replicate).
    """

    cell: np.ndarray
    rep0: np.ndarray
    nrep: np.ndarray
    n: np.ndarray

    @property
    def size(self) -> int:
        return self.cell.size

    @property
    def samples(self) -> np.ndarray:
        """Samples in each unit."""
        return self.nrep * self.n

    def items(self) -> np.ndarray:
        """Chunk items in each unit."""
        chunks = np.array([-(-int(n) // chunk_size(int(n))) for n in self.n], dtype=np.int64)
        return self.nrep * chunks

    def take(self, index) -> Plan:
        return Plan(self.cell[index], self.rep0[index], self.nrep[index], self.n[index])

    def batches(self) -> list[slice]:
        """Consecutive unit ranges of about BATCH_SAMPLES samples / BATCH_ITEMS items."""
        samples = self.samples
        items = self.items()
        out, start, acc_s, acc_i = [], 0, 0, 0
        for u in range(self.size):
            if u > start and (acc_s + samples[u] > BATCH_SAMPLES or acc_i + items[u] > BATCH_ITEMS):
                out.append(slice(start, u))
                start, acc_s, acc_i = u, 0, 0
            acc_s += int(samples[u])
            acc_i += int(items[u])
        if self.size:
            out.append(slice(start, self.size))
        return out


def make_plan(cell_n: np.ndarray, rep_start: int, reps: int) -> Plan:
    """Units for replicates ``rep_start .. rep_start + reps - 1`` of every cell."""
    cells, rep0s, nreps, ns = [], [], [], []
    for c, n in enumerate(np.asarray(cell_n, dtype=np.int64)):
        block = reps_per_unit(int(n))
        for r0 in range(0, reps, block):
            cells.append(c)
            rep0s.append(rep_start + r0)
            nreps.append(min(block, reps - r0))
            ns.append(int(n))
    as64 = lambda v: np.asarray(v, dtype=np.int64)  # noqa: E731
    return Plan(as64(cells), as64(rep0s), as64(nreps), as64(ns))


def chunk_items(plan: Plan) -> tuple[np.ndarray, ...]:
    """The chunk items of a (batch of a) plan, units in order, replicates, then chunks.

    Returns ``item_unit, item_rep, item_start, item_stop`` and ``unit_offset``,
    where the items of unit u are ``unit_offset[u] : unit_offset[u+1]``.
    """
    units, reps, starts, stops = [], [], [], []
    for u in range(plan.size):
        n = int(plan.n[u])
        size = chunk_size(n)
        edges = np.arange(0, n, size, dtype=np.int64)
        k = edges.size
        nrep = int(plan.nrep[u])
        units.append(np.full(k * nrep, u, dtype=np.int64))
        reps.append(np.repeat(np.arange(plan.rep0[u], plan.rep0[u] + nrep, dtype=np.int64), k))
        starts.append(np.tile(edges, nrep))
        stops.append(np.tile(np.minimum(edges + size, n), nrep))
    counts = np.array([a.size for a in units], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    cat = lambda a: np.concatenate(a) if a else np.empty(0, np.int64)  # noqa: E731
    return cat(units), cat(reps), cat(starts), cat(stops), offset

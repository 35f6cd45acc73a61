"""How a plan cuts replicates into work: chunk items (every sample once, in order, in even-starting
chunks) and, for small N, pair items (every replicate once, in order, whole replicate pairs)."""

import numpy as np
import pytest

from gradsweep import plan
from gradsweep.philox import PAIRED_N


@pytest.mark.parametrize("crn", [False, True], ids=["one cell per stream", "common random numbers"])
def test_chunk_items_cover_every_replicate_in_order(monkeypatch, crn):
    monkeypatch.setattr(plan, "CHUNK", 8)
    monkeypatch.setattr(plan, "MAX_CHUNKS", 4)  # replicates above 32 samples get larger chunks
    monkeypatch.setattr(plan, "UNIT_SAMPLES", 200)  # several units per group
    N = np.array([1, 7, 32, 33, 101])
    p = plan.make_plan((N.size, 2, 1), N, 5, 9, crn, streams=1)  # every N in chunks, as before the paired layout
    assert not p.paired.any()
    item_unit, item_rep, item_start, item_stop, offset = plan.chunk_items(p)
    np.testing.assert_array_equal(np.diff(offset), p.items())
    for u in range(p.size):
        items = slice(offset[u], offset[u + 1])
        assert (item_unit[items] == u).all()
        reps, starts, stops = item_rep[items], item_start[items], item_stop[items]
        np.testing.assert_array_equal(np.unique(reps), np.arange(p.rep0[u], p.rep0[u] + p.nrep[u]))
        assert (np.diff(reps) >= 0).all()  # replicates in order, each one's chunks together
        n = p.n[u]
        for r in np.unique(reps):
            a, b = starts[reps == r], stops[reps == r]
            assert a[0] == 0 and b[-1] == n and (a[1:] == b[:-1]).all()  # [0, n) exactly, in order
            assert (a % 2 == 0).all() and (b > a).all() and a.size <= plan.MAX_CHUNKS
            assert (b[:-1] - a[:-1] == plan.chunk_size(n)).all()


def test_an_empty_plan_has_no_items():
    p = plan.make_plan((1, 1, 1), np.array([10]), 0, 0)
    item_unit, *_, offset = plan.chunk_items(p)
    assert item_unit.size == 0 and offset.tolist() == [0]


@pytest.mark.parametrize("rep_start", [0, 5], ids=["from replicate 0", "from an odd replicate"])
def test_pair_items_cover_every_replicate_in_order(monkeypatch, rep_start):
    monkeypatch.setattr(plan, "CHUNK", 16)  # items of 8 // n pairs
    monkeypatch.setattr(plan, "UNIT_SAMPLES", 60)  # several units per group
    N = np.array([1, 3, 8, PAIRED_N, PAIRED_N + 1])
    p = plan.make_plan((N.size, 2, 1), N, rep_start, 23)
    assert p.paired.tolist() == [n <= PAIRED_N for n in p.n]
    p = p.take(p.paired)
    assert (p.rep0 % 2 == rep_start % 2).all()  # units hold whole pairs (the first may start inside one)
    item_unit, lo, hi, offset = plan.pair_items(p)
    np.testing.assert_array_equal(np.diff(offset), p.items())
    per_item = plan.pairs_per_item(p.n)
    for u in range(p.size):
        items = slice(offset[u], offset[u + 1])
        assert (item_unit[items] == u).all()
        a, b = lo[items], hi[items]
        assert a[0] == p.rep0[u] and b[-1] == p.rep0[u] + p.nrep[u] and (a[1:] == b[:-1]).all()
        assert (b > a).all() and (a[1:] % 2 == 0).all()  # only a unit's first item may start inside a pair
        assert ((b + 1) // 2 - a // 2 <= per_item[u]).all()


def test_totals_are_exact_past_int64():
    draws = np.full(3, 4 * 10**18, dtype=np.int64)  # 1.2e19 in all: an int64 sum wraps negative
    assert plan.Plan.total(draws) == 12 * 10**18
    assert plan.Plan.total(np.array([1, 2, 3])) == 6 and plan.Plan.total(np.array([], dtype=np.int64)) == 0

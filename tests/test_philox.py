"""The random stream: bit-exact Philox4x32-10, and normals that are normal."""

import math

import numpy as np
import pytest
import randomgen
from confidence import z_bound
from scipy import stats

from gradsweep.philox import normals, philox_blocks

# Published known-answer vectors of Random123 (kat_vectors: philox4x32 10 rounds).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF, 0xFFFFFFFF), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]


@pytest.mark.parametrize(("counter", "key", "expected"), KAT)
def test_known_answer_vectors(counter, key, expected):
    assert tuple(int(w) for w in philox_blocks([counter], key)[0]) == expected


def _randomgen_block(counter, key):
    value = sum(int(c) << (32 * i) for i, c in enumerate(counter))
    value = (value - 1) % 2**128  # randomgen increments the counter before each block
    bg = randomgen.Philox(
        key=np.array([int(key[0]) | int(key[1]) << 32], dtype=np.uint64),
        counter=np.array([value & (2**64 - 1), value >> 64], dtype=np.uint64),
        number=4,
        width=32,
    )
    return tuple(int(w) for w in bg.random_raw(4))


def test_matches_randomgen_on_random_counters_and_keys(rng):
    counters = rng.integers(0, 2**32, size=(64, 4), dtype=np.uint64)
    keys = rng.integers(0, 2**32, size=(64, 2), dtype=np.uint64)
    for c, k in zip(counters, keys, strict=True):
        assert tuple(int(w) for w in philox_blocks([c], k)[0]) == _randomgen_block(c, k)


def test_counter_words_above_32_bits_are_refused():
    with pytest.raises(ValueError, match="below 2\\*\\*32"):
        philox_blocks([[2**32, 0, 0, 0]], (0, 0))


def test_any_sample_can_be_drawn_from_its_position():
    whole = normals(7, 1001, rep=3, stream=11)
    np.testing.assert_array_equal(normals(7, 400, rep=3, stream=11, start=601), whole[601:])
    np.testing.assert_array_equal(normals(7, 1, rep=3, stream=11, start=1000), whole[1000:])


def test_streams_differ_by_seed_replicate_and_stream():
    base = normals(1, 64)
    for other in (normals(2, 64), normals(1, 64, rep=1), normals(1, 64, stream=1)):
        assert not np.any(base == other)


N_STAT = 2_000_000
ALPHA = 1e-3  # family-wise level of the distribution checks below
CHECKS = 7


@pytest.fixture(scope="module")
def z():
    return normals(12345, N_STAT, rep=5, stream=9)


def test_moments_match_standard_normal(z):
    bound = z_bound(ALPHA, CHECKS)
    n = z.size
    # Standardised sample moments; their sampling sds under N(0,1) are sqrt(k/n).
    assert abs(z.mean()) / math.sqrt(1 / n) < bound
    assert abs(z.var() - 1) / math.sqrt(2 / n) < bound
    assert abs(stats.skew(z)) / math.sqrt(6 / n) < bound
    assert abs(stats.kurtosis(z)) / math.sqrt(24 / n) < bound


def test_kolmogorov_smirnov(z):
    assert stats.kstest(z, "norm").pvalue > ALPHA / CHECKS


@pytest.mark.parametrize("t", [3.0, 4.0])
def test_tail_frequencies(z, t):
    p = 2 * stats.norm.sf(t)
    observed = np.count_nonzero(np.abs(z) > t)
    lo, hi = stats.binom.ppf([ALPHA / (2 * CHECKS), 1 - ALPHA / (2 * CHECKS)], z.size, p)
    assert lo <= observed <= hi


def test_neighbouring_streams_are_uncorrelated():
    a = normals(3, 200_000, stream=0)
    b = normals(3, 200_000, stream=1)
    c = normals(3, 200_000, rep=1)
    bound = z_bound(1e-3, 2) / math.sqrt(a.size)  # sd of a correlation under independence
    assert abs(np.corrcoef(a, b)[0, 1]) < bound
    assert abs(np.corrcoef(a, c)[0, 1]) < bound

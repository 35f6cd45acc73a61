"""The mergeable Welford state: exact merges, robust to large offsets."""

import numpy as np
import pytest

from gradsweep import welford


def _push_all(values):
    state = welford.empty((1,))
    from numba import njit

    @njit
    def run(state, values):
        for v in values:
            welford.push(state, 0, v)

    run(state, np.asarray(values, dtype=np.float64))
    return state[0]


def test_merge_of_any_split_equals_two_pass(rng):
    x = rng.standard_gamma(2.0, size=1000) * 3 - 1  # skewed, so M3 and M4 matter
    exact = welford.from_values(x)
    for cut in (1, 17, 500, 999):
        merged = welford.merged(welford.from_values(x[:cut]), welford.from_values(x[cut:]))
        np.testing.assert_allclose(merged, exact, rtol=1e-12)


def test_sequential_push_equals_two_pass(rng):
    x = rng.standard_normal(5000) ** 3
    np.testing.assert_allclose(_push_all(x), welford.from_values(x), rtol=1e-11)


def test_merge_with_empty_is_identity(rng):
    s = welford.from_values(rng.standard_normal(10))
    np.testing.assert_array_equal(welford.merged(s, welford.empty(())), s)
    np.testing.assert_array_equal(welford.merged(welford.empty(()), s), s)


def test_fold_merges_rows_in_order(rng):
    x = rng.standard_normal((6, 50))
    parts = np.stack([welford.from_values(x[i])[None, :] for i in range(6)])  # (units, 1 term, 5)
    state = welford.empty((2, 1))
    welford.fold(state, np.array([0, 1, 0, 1, 0, 1]), parts)
    np.testing.assert_allclose(state[0, 0], welford.from_values(x[0::2].ravel()), rtol=1e-12)
    np.testing.assert_allclose(state[1, 0], welford.from_values(x[1::2].ravel()), rtol=1e-12)


def test_large_offset_keeps_variance(rng):
    """Mean near 1e8, spread near 1: the variance survives to 1e-6 relative (naive sums lose it all)."""
    d = rng.standard_normal(100_000)
    x = 1e8 + d
    reference = np.var(x - 1e8, ddof=1)  # x - 1e8 is exact (Sterbenz)
    state = _push_all(x)
    assert abs(state[2] / (state[0] - 1) - reference) / reference < 1e-6
    chunks = [welford.from_values(c) for c in np.array_split(x, 37)]
    total = chunks[0]
    for c in chunks[1:]:
        total = welford.merged(total, c)
    assert abs(total[2] / (total[0] - 1) - reference) / reference < 1e-6
    naive = (np.sum(x * x) - np.sum(x) ** 2 / x.size) / (x.size - 1)
    assert abs(naive - reference) / reference > 1e-3  # shows the test can fail


def test_finish_standard_errors_match_normal_theory(rng):
    n = 200_000
    x = rng.standard_normal(n) * 2.0
    out = welford.finish(welford.from_values(x))
    # For normal data sd(s^2) = sigma^2 sqrt(2/(n-1)); the estimate itself is within a few % at this n.
    assert out["var_se"] == pytest.approx(4.0 * np.sqrt(2 / (n - 1)), rel=0.02)
    assert out["mean_se"] == pytest.approx(2.0 / np.sqrt(n), rel=0.01)


def test_finish_needs_two_values():
    out = welford.finish(welford.from_values([3.0]))
    assert out["mean"] == 3.0
    assert np.isnan(out["var"]) and np.isnan(out["var_se"])


@pytest.mark.parametrize("off", [0.0, 3.0, -40.0], ids=["shift at the mean", "3 spreads off", "40 spreads off"])
def test_power_sums_about_a_shift_keep_the_moments_at_a_large_offset(rng, off):
    """The small-N kernels' form: power sums of deviations from a shift near the mean (the first
    block's mean), turned into central moments; data of mean 1e8 and spread 1, skewed so M3 matters."""
    x = 1e8 + rng.gamma(4.0, 0.5, size=5000)
    shift = float(np.mean(x[:256])) + off  # a block's mean, moved
    d = x - shift
    state = np.array(welford.from_power_sums.py_func(float(x.size), shift, d.sum(), (d**2).sum(), (d**3).sum(), (d**4).sum()))
    exact = welford.from_values(x - 1e8)  # x - 1e8 is exact (Sterbenz): moments free of the offset's rounding
    exact[1] += 1e8
    np.testing.assert_allclose(state[:2], exact[:2], rtol=1e-15)
    # M2 loses about (off / spread)^2 of its digits to cancellation, M4 about (off / spread)^4
    np.testing.assert_allclose(state[2], exact[2], rtol=1e-12 * (1 + off**2))
    np.testing.assert_allclose(state[3], exact[3], rtol=1e-11 * (1 + abs(off) ** 3))
    np.testing.assert_allclose(state[4], exact[4], rtol=1e-11 * (1 + off**4))

"""Exact values of every estimator: against the design notes and an independent quadrature (tests/reference.py)."""

import numpy as np
import pytest
from reference import linear_moments, loo_moments, taylor

from gradsweep.estimators import ESTIMATORS, NAMES
from gradsweep.objectives import make_objective
from gradsweep.truth import Moments, exact

OBJECTIVES = ["square", {"name": "quadratic", "k": 0.5}, {"name": "exp_quadratic", "k": 0.7}, {"name": "cos", "k": 2.0}]
CELLS = [(-1.3, 0.3), (0.4, 1.0), (2.0, 1.7)]
LINEAR = [n for n in NAMES if ESTIMATORS[n].min_n == 1]


def test_square_matches_design_notes():
    th, sg = np.meshgrid([-1.3, 0.0, 0.4, 2.0], [0.3, 1.0, 1.7], indexing="ij")
    e = exact(make_objective("square"), [1], th[:, 0], sg[0], ("score", "pathwise"), ("theta", "sigma"))
    np.testing.assert_allclose(e["true_grad"][..., 0], 2 * th, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(e["true_grad"][..., 1], 2 * sg, rtol=1e-13)
    want = {
        ("pathwise", "theta"): 4 * sg**2,
        ("pathwise", "sigma"): 4 * th**2 + 8 * sg**2,
        ("score", "theta"): th**4 / sg**2 + 14 * th**2 + 15 * sg**2,
        ("score", "sigma"): 2 * th**4 / sg**2 + 60 * th**2 + 74 * sg**2,
    }
    for i, est in enumerate(("score", "pathwise")):
        for j, w in enumerate(("theta", "sigma")):
            np.testing.assert_allclose(e["exact_var"][0, ..., i, j], want[(est, w)], rtol=1e-12)
    classic = exact(make_objective("square"), [1], [2.0], [1.0], ("score", "pathwise"), ("theta",))["exact_var"][0, 0, 0, :, 0]
    assert classic.tolist() == pytest.approx([87, 4])


def test_second_derivatives_against_differences_of_the_first():
    for spec in OBJECTIVES:
        obj = make_objective(spec)
        for x in (-0.8, 0.7):
            h = 1e-5
            central = (obj.evaluate("df", x + h) - obj.evaluate("df", x - h)) / (2 * h)
            assert taylor(obj, x)[2] == pytest.approx(central, rel=1e-6, abs=1e-8)
            assert obj.evaluate("d2f", x) == pytest.approx(taylor(obj, x)[2], rel=1e-14)


@pytest.mark.parametrize("spec", OBJECTIVES, ids=str)
def test_linear_estimators_against_independent_quadrature(spec):
    """Exact mean and per-sample variance of every one-sample estimator, both wrt, several cells."""
    obj = make_objective(spec)
    for t, s in CELLS:
        e = exact(obj, [1, 7], [t], [s], LINEAR, ("theta", "sigma"))
        for i, name in enumerate(LINEAR):
            for j, w in enumerate(("theta", "sigma")):
                mean, var = linear_moments(name, w, obj, t, s)
                got_mean, got_var = e["exact_mean"][0, 0, 0, i, j], e["exact_var"][0, 0, 0, i, j]
                scale = abs(mean) + np.sqrt(max(var, 0.0)) + 1e-12
                assert abs(got_mean - mean) < 1e-9 * scale, (name, w, t, s, got_mean, mean)
                assert got_var == pytest.approx(var, rel=1e-8, abs=1e-11), (name, w, t, s, got_var, var)
                # linear estimators: the N-sample variance is the per-sample one / N
                assert e["exact_var"][1, 0, 0, i, j] == pytest.approx(got_var / 7, rel=1e-13, abs=1e-300)


@pytest.mark.parametrize("spec", OBJECTIVES, ids=str)
@pytest.mark.parametrize("n", [2, 3])
def test_leave_one_out_and_batch_against_n_dimensional_quadrature(spec, n):
    """Hoeffding's U-statistic variance against direct integration over all N samples."""
    obj = make_objective(spec)
    t, s = 0.4, 1.0
    e = exact(obj, [n], [t], [s], ("score_loo", "score_batch_baseline"), ("theta", "sigma"))
    for j, w in enumerate(("theta", "sigma")):
        for i, divisor in enumerate((n - 1, n)):
            mean, var = loo_moments(obj, w, t, s, n, divisor)
            assert e["exact_mean"][0, 0, 0, i, j] == pytest.approx(mean, rel=1e-8, abs=1e-10)
            assert e["exact_var"][0, 0, 0, i, j] == pytest.approx(var, rel=1e-7, abs=1e-10)
    # the batch baseline's bias is the factor (N - 1) / N, and it is visible
    np.testing.assert_allclose(e["exact_mean"][0, 0, 0, 1], (n - 1) / n * e["true_grad"][0, 0], rtol=1e-12)


@pytest.mark.parametrize("spec", ["square", {"name": "quadratic", "k": -1.5}])
def test_delta_control_variate_is_exact_on_a_quadratic(spec):
    e = exact(make_objective(spec), [1, 10], [-1.0, 0.5, 3.0], [0.2, 1.0, 4.0], ("score_delta",), ("theta", "sigma"))
    assert np.all(np.abs(e["exact_var"]) < 1e-9)
    np.testing.assert_allclose(e["exact_mean"][0, ..., 0, :], e["true_grad"], rtol=1e-13)


def test_uniform_integral_of_the_coupled_mvd_has_converged():
    """The Gauss-Legendre integral over u (coupled measure-valued d/dsigma) with twice the nodes."""
    import gradsweep.truth as truth

    obj = make_objective({"name": "cos", "k": 5.0})
    a = Moments(obj, [0.3, 1.0], [0.5, 2.0]).maxwell_uniform_cross()
    old = truth.UNIFORM_NODES
    try:
        truth.UNIFORM_NODES = 2 * old
        b = Moments(obj, [0.3, 1.0], [0.5, 2.0]).maxwell_uniform_cross()
    finally:
        truth.UNIFORM_NODES = old
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_user_objectives_have_no_exact_values():
    from gradsweep.objectives import Objective

    e = exact(Objective("cube", f=lambda x: x**3), [2], [0.0], [1.0], ("score",), ("theta",))
    assert all(np.isnan(v).all() for v in e.values())


def _polynomial_variances(f, df, t, s):
    """Per-sample (mean, variance) of the polynomial-objective estimators, in 60-digit arithmetic.

    ``f``, ``df``: functions of an mpmath polynomial in eps (a coefficient list) giving f(x), f'(x) at
    x = t + s eps. Expectations from the normal moments E[eps^j] = (j - 1)!!; nothing from gradsweep.truth.
    """
    import mpmath as mp

    def mul(a, b):
        out = [mp.mpf(0)] * (len(a) + len(b) - 1)
        for i, u in enumerate(a):
            for j, v in enumerate(b):
                out[i + j] += u * v
        return out

    def add(a, b, sign=1):
        n = max(len(a), len(b))
        return [(a[i] if i < len(a) else 0) + sign * (b[i] if i < len(b) else 0) for i in range(n)]

    def expect(p):
        return sum(c * (mp.fac2(j - 1) if j % 2 == 0 else 0) for j, c in enumerate(p))

    def moments(p):
        mean = expect(p)
        centred = add(p, [mean], -1)
        return mean, expect(mul(centred, centred))

    t, s = mp.mpf(t), mp.mpf(s)
    x_plus, x_minus = [t, s], [t, -s]
    score = {"theta": [0, 1 / s], "sigma": [-1 / s, 0, 1 / s]}
    weight = {"theta": [1], "sigma": [0, 1]}
    out = {}
    for w in ("theta", "sigma"):
        fx = f(x_plus)
        baseline = {"score": 0, "score_mean_baseline": expect(fx), "score_optimal_baseline": expect(mul(fx, mul(score[w], score[w])))}
        baseline["score_optimal_baseline"] /= expect(mul(score[w], score[w]))
        for name, b in baseline.items():
            out[name, w] = moments(mul(add(fx, [b], -1), score[w]))
        out["pathwise", w] = moments(mul(df(x_plus), weight[w]))
        sign = 1 if w == "theta" else -1
        out["pathwise_antithetic", w] = moments(mul(add(df(x_plus), df(x_minus), sign), [x / 2 for x in weight[w]]))
    return out


@pytest.mark.parametrize(
    ("spec", "t", "s"),
    [("square", 2.0, 1e-8), ({"name": "quadratic", "k": 123456789.3}, 123456789.8, 1.0), ("square", 1e80, 1.0)],
    ids=["tiny sigma", "large offset", "theta 1e80"],
)
def test_exact_values_keep_their_digits_far_from_unit_scale(spec, t, s):
    """Variances far below the estimate's square (pathwise at sigma = 1e-8) and estimates far from 0 (theta near
    k = 1.2e8, theta = 1e80) against a 60-digit reference: the closed forms must not cancel their digits away."""
    import mpmath as mp

    mp.mp.dps = 60
    obj = make_objective(spec)
    c = mp.mpf(obj.k) if spec != "square" else mp.mpf(0)

    def f(p):  # (x - c)^2 with x the polynomial p
        d = [p[0] - c, *p[1:]]
        return [d[0] * d[0], 2 * d[0] * d[1], d[1] * d[1]]

    def df(p):
        return [2 * (p[0] - c), 2 * p[1]]

    ref = _polynomial_variances(f, df, t, s)
    # at theta = 1e80 the score terms' squares overflow float64 (theta^4); only the pathwise family is representable
    names = ["pathwise", "pathwise_antithetic"] if t > 1e70 else list(dict.fromkeys(n for n, _ in ref))
    e = exact(obj, [1], [t], [s], tuple(names), ("theta", "sigma"))
    for i, name in enumerate(names):
        for j, w in enumerate(("theta", "sigma")):
            mean, var = ref[name, w]
            assert e["exact_mean"][0, 0, 0, i, j] == pytest.approx(float(mean), rel=1e-12, abs=1e-300), (name, w)
            assert e["exact_var"][0, 0, 0, i, j] == pytest.approx(float(var), rel=1e-9, abs=1e-300), (name, w)

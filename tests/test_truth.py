"""Exact gradients and variances: against the design notes, quadrature, Stein and finite differences."""

import numpy as np
import pytest

from gradsweep.estimators import TERMS
from gradsweep.objectives import make_objective
from gradsweep.truth import exact, gaussian_expectation, quadrature, score_means

OBJECTIVES = ["square", {"name": "quadratic", "k": 0.5}, {"name": "exp_quadratic", "k": 0.7}, {"name": "cos", "k": 2.0}]
THETA = [-1.3, 0.0, 0.4, 2.0]
SIGMA = [0.3, 1.0, 1.7]


def test_square_matches_design_notes():
    th, sg = np.meshgrid(THETA, SIGMA, indexing="ij")
    e = exact(make_objective("square"), THETA, SIGMA)
    np.testing.assert_allclose(e["true_grad"][..., 0], 2 * th, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(e["true_grad"][..., 1], 2 * sg, rtol=1e-13)
    want = {
        ("pathwise", "theta"): 4 * sg**2,
        ("pathwise", "sigma"): 4 * th**2 + 8 * sg**2,
        ("score", "theta"): th**4 / sg**2 + 14 * th**2 + 15 * sg**2,
        ("score", "sigma"): 2 * th**4 / sg**2 + 60 * th**2 + 74 * sg**2,
    }
    for i, term in enumerate(TERMS):
        np.testing.assert_allclose(e["per_sample_var"][..., i], want[term], rtol=1e-12)
    classic = exact(make_objective("square"), [2.0], [1.0])["per_sample_var"][0, 0]
    assert classic[TERMS.index(("score", "theta"))] == pytest.approx(87)
    assert classic[TERMS.index(("pathwise", "theta"))] == pytest.approx(4)


@pytest.mark.parametrize("spec", OBJECTIVES, ids=str)
def test_closed_forms_match_gauss_hermite(spec):
    obj = make_objective(spec)
    e, q = exact(obj, THETA, SIGMA), quadrature(obj, THETA, SIGMA, nodes=200)
    np.testing.assert_allclose(e["true_grad"], q["true_grad"], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(e["per_sample_var"], q["per_sample_var"], rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("spec", OBJECTIVES, ids=str)
def test_true_gradient_is_derivative_of_objective(spec):
    """dL/dtheta and dL/dsigma against central differences of L = E[f(x)] (closed form)."""
    obj = make_objective(spec)
    forms = obj.gaussian_forms()
    from numpy.polynomial import Polynomial as P

    from gradsweep.truth import _expect

    def L(t, s):
        return _expect(forms, [("f", P([1.0]))], t, s)[0]

    h = 1e-5
    e = exact(obj, THETA, SIGMA)["true_grad"]
    for i, t in enumerate(THETA):
        for j, s in enumerate(SIGMA):
            assert e[i, j, 0] == pytest.approx((L(t + h, s) - L(t - h, s)) / (2 * h), rel=1e-6, abs=1e-8)
            assert e[i, j, 1] == pytest.approx((L(t, s + h) - L(t, s - h)) / (2 * h), rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("spec", OBJECTIVES, ids=str)
def test_score_terms_are_unbiased_stein(spec):
    obj = make_objective(spec)
    for t in THETA:
        for s in SIGMA:
            grad = exact(obj, [t], [s])["true_grad"][0, 0]
            np.testing.assert_allclose(score_means(obj, t, s), grad, rtol=1e-11, atol=1e-13)


def test_gaussian_expectation_known_values():
    from numpy.polynomial import Polynomial as P

    # E[eps^4] = 3; E[exp(b eps)] = exp(b^2/2); E[exp(-a eps^2)] = 1/sqrt(1+2a)
    assert gaussian_expectation(P([0, 0, 0, 0, 1]), 0.0, 0.0).real == pytest.approx(3.0)
    assert gaussian_expectation(P([1]), 0.0, 0.8).real == pytest.approx(np.exp(0.32))
    assert gaussian_expectation(P([1]), 1.5, 0.0).real == pytest.approx(0.5)
    with pytest.raises(ValueError, match="diverges"):
        gaussian_expectation(P([1]), -0.6, 0.0)

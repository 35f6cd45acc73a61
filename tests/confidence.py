"""Tolerances of the statistical tests, from confidence intervals."""

from scipy import stats


def z_bound(alpha: float, tests: int = 1) -> float:
    """Two-sided normal quantile for family-wise level ``alpha`` over ``tests`` checks (Bonferroni)."""
    return float(stats.norm.ppf(1.0 - alpha / (2.0 * tests)))

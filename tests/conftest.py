import numpy as np
import pytest
from scipy import stats


def z_bound(alpha: float, tests: int = 1) -> float:
    """Two-sided normal quantile for family-wise level ``alpha`` over ``tests`` checks (Bonferroni)."""
    return float(stats.norm.ppf(1.0 - alpha / (2.0 * tests)))


@pytest.fixture(scope="session")
def rng():
    return np.random.default_rng(20261123)

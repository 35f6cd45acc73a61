"""gradsweep: measure the variance of Monte Carlo gradient estimators at scale.

>>> import gradsweep
>>> ds = gradsweep.sweep(objective="square", N=[10, 100], reps=50)  # doctest: +SKIP
"""

from . import accessor, analysis  # accessor registers ``ds.gradsweep``
from ._version import __version__
from .config import Config, ConfigError
from .extend import extend
from .objectives import Objective
from .report import plot
from .shards import merge_shards as merge
from .sweep import sweep

__all__ = ["Config", "ConfigError", "Objective", "accessor", "analysis", "extend", "merge", "plot", "sweep", "__version__"]

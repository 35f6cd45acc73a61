"""gradsweep: measure the variance of Monte Carlo gradient estimators at scale.

>>> import gradsweep
>>> ds = gradsweep.sweep(objective="square", N=[10, 100], reps=50)  # doctest: +SKIP
"""

__version__ = "0.1.0"

from .config import Config, ConfigError  # noqa: E402
from .extend import extend  # noqa: E402
from .objectives import Objective  # noqa: E402
from .report import plot  # noqa: E402
from .shards import merge_shards as merge  # noqa: E402
from .sweep import sweep  # noqa: E402

__all__ = ["Config", "ConfigError", "Objective", "extend", "merge", "plot", "sweep", "__version__"]

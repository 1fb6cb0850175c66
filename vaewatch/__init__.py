"""vaewatch: streaming anomaly detection for sensor time series with a 1D-conv VAE.

This package is the top layer: the `vaewatch` console script and the `make run` demo.
"""

from vwbase import __version__

__all__ = ["__version__"]

"""vaewatch: streaming anomaly detection for sensor time series with a 1D-conv VAE."""

__version__ = "0.1.0"

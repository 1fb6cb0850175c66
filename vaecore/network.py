"""The 1D-convolutional variational autoencoder and its loss, in one readable module.

References
- Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014: the VAE, the
  reparameterisation trick and the ELBO.
- Xu et al., "Unsupervised Anomaly Detection via Variational Auto-Encoder for Seasonal KPIs
  in Web Applications" (Donut), WWW 2018: the M-ELBO (missing and labelled-anomalous points
  are left out of the likelihood, and the prior term is scaled by the observed fraction) and
  MCMC imputation (used by `vaecore.detector` for correction).
- An & Cho, "Variational Autoencoder based Anomaly Detection using Reconstruction
  Probability", 2015: score = negative log-likelihood of the input under the decoder's
  Gaussian, averaged over latent samples.

Shapes: the network works on `(B, C, T)` (batch, channels = sensors, time). The decoder
outputs a Gaussian per point and channel (mean and log-variance), not only a mean, so the
model knows which channels are noisy and the score is a likelihood, not a squared error.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LOG_2PI = math.log(2.0 * math.pi)


@dataclass(frozen=True)
class VAEConfig:
    """Every hyper-parameter of the network. Stored in the artifact's manifest."""

    n_channels: int  # sensors per time step (C)
    window: int = 128  # time steps per model window (T); divisible by 2 ** len(hidden)
    latent_dim: int = 16  # size of the latent z
    hidden: tuple[int, ...] = (32, 64, 64)  # Conv1d widths; each block halves the time axis
    kernel_size: int = 5  # odd: "same" padding keeps the arithmetic of lengths exact
    beta: float = 1.0  # weight of the KL term (beta-VAE); 1.0 is the plain ELBO
    min_logvar: float = -6.0  # soft floor of the decoder log-variance (std >= ~0.05)
    max_logvar: float = 4.0  # soft ceiling of the decoder log-variance
    # "point": a log-variance head per point; "channel": one log-variance per channel
    variance: Literal["point", "channel"] = "point"

    def __post_init__(self) -> None:
        step = 2 ** len(self.hidden)
        if self.n_channels < 1:
            raise ValueError("n_channels must be >= 1")
        if self.window < step or self.window % step:
            raise ValueError(f"window {self.window} must be a positive multiple of {step}")
        if self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd")
        if not self.min_logvar < self.max_logvar:
            raise ValueError("min_logvar must be below max_logvar")
        if self.variance not in ("point", "channel"):
            raise ValueError("variance must be 'point' or 'channel'")


@dataclass(frozen=True)
class VAEOutput:
    z_mean: Tensor  # (B, Z) posterior mean
    z_logvar: Tensor  # (B, Z) posterior log-variance
    x_mean: Tensor  # (B, C, T) decoder mean (normalised units)
    x_logvar: Tensor  # (B, C, T) decoder log-variance


@dataclass(frozen=True)
class LossParts:
    total: Tensor  # scalar: mean over windows of (nll + beta * observed_fraction * kl)
    nll: Tensor  # scalar: mean over windows of the summed NLL of observed points
    kl: Tensor  # scalar: mean over windows of KL(q(z|x) || N(0, I))


def _soft_clamp(x: Tensor, low: float, high: float) -> Tensor:
    """Clamp with gradients everywhere: a hard clamp would freeze saturated points."""
    x = high - F.softplus(high - x)
    return low + F.softplus(x - low)


class ConvVAE(nn.Module):
    """Encoder: Conv1d blocks (stride 2) -> linear -> (mu, logvar). Decoder mirrors it."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        pad = cfg.kernel_size // 2
        widths = (cfg.n_channels, *cfg.hidden)
        self.encoder = nn.Sequential(
            *[
                nn.Sequential(nn.Conv1d(w_in, w_out, cfg.kernel_size, 2, pad), nn.GELU())
                for w_in, w_out in itertools.pairwise(widths)
            ]
        )
        self._reduced = cfg.window // 2 ** len(cfg.hidden)  # time steps after the encoder
        flat = cfg.hidden[-1] * self._reduced
        self.to_posterior = nn.Linear(flat, 2 * cfg.latent_dim)
        self.from_latent = nn.Linear(cfg.latent_dim, flat)
        back = tuple(reversed(cfg.hidden))
        self.decoder = nn.Sequential(
            *[
                nn.Sequential(nn.ConvTranspose1d(w_in, w_out, 4, 2, 1), nn.GELU())
                for w_in, w_out in zip(back, (*back[1:], back[-1]), strict=True)
            ]
        )
        self.mean_head = nn.Conv1d(back[-1], cfg.n_channels, cfg.kernel_size, 1, pad)
        if cfg.variance == "point":
            self.logvar_head: nn.Module = nn.Conv1d(
                back[-1], cfg.n_channels, cfg.kernel_size, 1, pad
            )
        else:  # one learned variance per channel: context cannot "explain away" an anomaly
            self.channel_logvar = nn.Parameter(torch.zeros(1, cfg.n_channels, 1))

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.encoder(x)  # (B, H, T / 2^k)
        mu, logvar = self.to_posterior(h.flatten(1)).chunk(2, dim=1)  # (B, Z) each
        return mu, logvar.clamp(-12.0, 8.0)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        h = self.from_latent(z).view(z.shape[0], self.cfg.hidden[-1], self._reduced)
        h = self.decoder(h)  # (B, H0, T)
        mean = self.mean_head(h)  # (B, C, T)
        raw = (
            self.logvar_head(h)
            if self.cfg.variance == "point"
            else self.channel_logvar.expand_as(mean)
        )
        logvar = _soft_clamp(raw, self.cfg.min_logvar, self.cfg.max_logvar)
        return mean, logvar

    def forward(self, x: Tensor, eps: Tensor | None = None) -> VAEOutput:
        """x: (B, C, T) normalised, missing already set to 0. eps: (B, Z) noise or None.

        With `eps=None` in training mode a fresh sample is drawn; in eval mode the posterior
        mean is decoded (deterministic scoring, L = 0).
        """
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn_like(mu) if self.training else torch.zeros_like(mu)
        z = mu + eps * torch.exp(0.5 * logvar)  # reparameterisation
        x_mean, x_logvar = self.decode(z)
        return VAEOutput(mu, logvar, x_mean, x_logvar)


def gaussian_nll(x: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """Per-point negative log-likelihood of x under N(mean, exp(logvar)); same shape as x."""
    return 0.5 * (LOG_2PI + logvar + (x - mean) ** 2 * torch.exp(-logvar))


def negative_elbo(x: Tensor, mask: Tensor, out: VAEOutput, beta: float) -> LossParts:
    """Donut's M-ELBO, negated: observed points only, prior term scaled by observed fraction.

    x: (B, C, T) normalised targets (any value where `mask` is False); mask: (B, C, T) bool,
    True = observed and counted. Masked points contribute exactly nothing: their NLL is
    selected away with `torch.where` (not multiplied by 0, which would leak NaN/Inf).
    Normalisation: the NLL is summed over the observed points of a window, the KL summed over
    latent dimensions, and both are averaged over the windows of the batch.
    """
    nll_points = gaussian_nll(x, out.x_mean, out.x_logvar)
    nll = torch.where(mask, nll_points, torch.zeros_like(nll_points)).sum(dim=(1, 2))  # (B,)
    kl = -0.5 * (1 + out.z_logvar - out.z_mean**2 - out.z_logvar.exp()).sum(dim=1)  # (B,)
    observed = mask.flatten(1).float().mean(dim=1)  # (B,) fraction of observed points
    total = nll + beta * observed * kl
    return LossParts(total.mean(), nll.mean(), kl.mean())

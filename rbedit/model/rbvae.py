"""The reference-based VAE: encoders Z and E, generator G, learned reference e_r.

Everything inference needs, nothing more; discriminators live in train/.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from rbedit.model.config import ModelConfig
from rbedit.model.networks import GaussianEncoder, Generator


@dataclass
class Posterior:
    """Diagonal Gaussian q(v|x): mean and log-variance, each (B, dim)."""

    mu: torch.Tensor
    logvar: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + noise * torch.exp(0.5 * self.logvar)


class RbVAE(nn.Module):
    """p(x|z,e) = Laplace(G(z,e), λ); q(z|x) = N(Z(x)); q(e|x) = N(E(x)); p(e|y=1) = δ(e − e_r)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.z_encoder = GaussianEncoder(config.channels, config.z_dim)
        self.e_encoder = GaussianEncoder(config.channels, config.e_dim)
        self.generator = Generator(config.channels, config.z_dim, config.e_dim, config.e_inject, config.e_warp)
        # e_r: the constant target factors of the reference set (neutral face, plain digit).
        self.e_ref = nn.Parameter(torch.zeros(config.e_dim))
        if config.e_prior == "fitted":
            # The Gaussian N(mean, L Lᵀ) that `sample` draws e from; set by fitting, not by SGD.
            self.register_buffer("e_prior_mean", torch.zeros(config.e_dim))
            self.register_buffer("e_prior_scale_tril", torch.eye(config.e_dim))

    @property
    def device(self) -> torch.device:
        return self.e_ref.device

    def encode_z(self, x: torch.Tensor) -> Posterior:
        return Posterior(*self.z_encoder(x))

    def encode_e(self, x: torch.Tensor) -> Posterior:
        if self.config.e_grey:  # the same grey in every channel: E's architecture stays the same
            x = x.mean(dim=1, keepdim=True).expand_as(x)
        k = self.config.e_pool
        if k > 1:  # block means, at full size: E's architecture stays the same
            x = F.avg_pool2d(x, k).repeat_interleave(k, dim=2).repeat_interleave(k, dim=3)
        return Posterior(*self.e_encoder(x))

    def decode(self, z: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """(B, z_dim), (B, e_dim) → images (B, 3, S, S) in [-1, 1]."""
        return self.generator(torch.cat([z, e], dim=1))

    def reference_e(self, batch: int) -> torch.Tensor:
        """e_r repeated for a batch: (batch, e_dim)."""
        return self.e_ref.unsqueeze(0).expand(batch, -1)

    def prior_e(self, noise: torch.Tensor) -> torch.Tensor:
        """Draws of e for sampling from standard normal noise (n, e_dim): N(0, I), or the fitted Gaussian."""
        if self.config.e_prior == "standard":
            return noise
        return self.e_prior_mean + noise @ self.e_prior_scale_tril.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct from posterior means (what `rbedit reconstruct` does)."""
        return self.decode(self.encode_z(x).mu, self.encode_e(x).mu)

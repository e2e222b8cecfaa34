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

LAPLACE_SCALE = 0.01  # λ of p(x|z,e) = Laplace(G(z,e), λ) (DESIGN §1)
REFINE_LR = 0.05  # Adam's step on z and e when refining (docs/digits.md, "Refining the latents")


@dataclass
class Posterior:
    """Diagonal Gaussian q(v|x): mean and log-variance, each (B, dim)."""

    mu: torch.Tensor
    logvar: torch.Tensor

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mu.shape, generator=generator, device=self.mu.device, dtype=self.mu.dtype)
        return self.mu + noise * torch.exp(0.5 * self.logvar)


def ink_shape(x: torch.Tensor) -> torch.Tensor:
    """Images (B, 3, S, S) in [-1, 1] on black as grey, each scaled so its brightest pixel is white.

    What is left is the ink's shape: no colour and no brightness (the same in every channel,
    so the encoder's architecture stays the same). A white-ink image is unchanged.
    """
    ink = (x.mean(dim=1, keepdim=True) + 1) / 2  # (B, 1, S, S) in [0, 1]
    peak = ink.amax(dim=(2, 3), keepdim=True).clamp_min(1e-3)
    return (2 * ink / peak - 1).expand_as(x)


class RbVAE(nn.Module):
    """p(x|z,e) = Laplace(G(z,e), λ); q(z|x) = N(Z(x)); q(e|x) = N(E(x)); p(e|y=1) = δ(e − e_r)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        encoder_convs = config.encoder_level_convs
        self.z_encoder = GaussianEncoder(config.channels, config.z_dim, convs=encoder_convs)
        self.e_encoder = GaussianEncoder(config.channels, config.e_dim, convs=encoder_convs)
        self.generator = Generator(
            config.channels, config.z_dim, config.e_dim, config.e_inject, config.e_warp, convs=config.level_convs
        )
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
        if self.config.z_shape:
            x = ink_shape(x)
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

    def refine(self, x: torch.Tensor, steps: int, *, lr: float = REFINE_LR) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents (z, e) of x: the posterior means, then `steps` Adam steps towards the MAP.

        Each step lowers −log p(x|z,e) p(z) p(e) = Σ|G(z,e) − x| / λ + ½‖z‖² + ½‖e‖² (up to a
        constant) for each image on its own; the weights stay fixed. The encoder's means are an
        amortised guess, and a few steps close part of the gap between them and the latents G
        needs (Cremer et al. 2018, "Inference suboptimality in variational autoencoders").
        Runs with gradients whatever the caller's grad mode; not inside torch.inference_mode.
        """
        with torch.no_grad():
            z, e = self.encode_z(x).mu, self.encode_e(x).mu
        if steps == 0:
            return z, e
        latents = [z.clone().requires_grad_(True), e.clone().requires_grad_(True)]
        optimizer = torch.optim.Adam(latents, lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                z, e = latents
                nll = (self.decode(z, e) - x).abs().sum() / LAPLACE_SCALE + 0.5 * (z.square().sum() + e.square().sum())
                # Gradients for the latents only: the weights' .grad stays untouched.
                for latent, grad in zip(latents, torch.autograd.grad(nll, latents)):
                    latent.grad = grad
                optimizer.step()
        return latents[0].detach(), latents[1].detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct from posterior means (what `rbedit reconstruct` does)."""
        return self.decode(self.encode_z(x).mu, self.encode_e(x).mu)

"""The density-ratio estimators of Eq. 7: d_xi(x, z, e) and d_gamma(x, z),
and rbedit's d_nu(x, z) for neutralised pairs (see train/srbvae.py).

Same trunk as the encoders without normalisation; the latents join the image
features before the fully connected head, and dropout (p = 0.25 in the paper,
App. D) on the head's inputs stops the discriminator ignoring the latents.
rbedit extension (`disc_noise`, 0 = off): Gaussian noise on the images each
discriminator reads ("instance noise"), so that generated and encoded images
overlap and d need not separate them outright. On synthetic faces it kept d
a finite log-ratio only with the adversarial weight raised as well (README);
the faces-synth preset turns both on (train/config.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from rbedit.model.networks import LEAKY_SLOPE, ConvTrunk


class LatentDiscriminator(nn.Module):
    """d(x, latents) → logit (B,): log-ratio of encoder pairs (q) over generator pairs (p)."""

    def __init__(
        self, channels: tuple[int, ...], latent_dim: int, *, hidden: int, dropout: float, noise: float = 0.0
    ) -> None:
        super().__init__()
        self.noise = noise  # σ of the instance noise on x, in model units ([-1, 1] images)
        self.trunk = ConvTrunk(channels, normalize=False)
        self.image_fc = nn.Linear(self.trunk.out_features, hidden)
        self.latent_fc = nn.Linear(latent_dim, hidden)
        self.head = nn.Sequential(
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(2 * hidden, hidden),
            nn.LeakyReLU(LEAKY_SLOPE),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor, *latents: torch.Tensor) -> torch.Tensor:
        if self.noise:  # drawn like dropout's masks, from torch's global generator
            x = x + self.noise * torch.randn_like(x)
        joint = torch.cat([self.image_fc(self.trunk(x)), self.latent_fc(torch.cat(latents, dim=1))], dim=1)
        return self.head(joint).squeeze(1)


def build_discriminators(config) -> dict[str, LatentDiscriminator]:
    """d_xi over (x, z, e) for unlabelled pairs, d_gamma over (x, z) for reference pairs,
    and d_nu over (x, z) for neutralised pairs when config.neutral_weight is set."""
    kwargs = dict(hidden=config.disc_hidden, dropout=config.disc_dropout, noise=config.disc_noise)
    discs = {
        "d_xi": LatentDiscriminator(config.disc_channels, config.z_dim + config.e_dim, **kwargs),
        "d_gamma": LatentDiscriminator(config.disc_channels, config.z_dim, **kwargs),
    }
    if config.neutral_weight:
        discs["d_nu"] = LatentDiscriminator(config.disc_channels, config.z_dim, **kwargs)
    return discs

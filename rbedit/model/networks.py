"""Networks after Karras et al. 2018 (progressive-GAN blocks), paper Appendix D.

Encoders: 1×1 from RGB → [3×3 conv, LeakyReLU, pixel norm, 2×2 avg pool]… → FC.
Generator: FC → 4×4 → [nearest up, 3×3 conv, LeakyReLU, pixel norm]… → 1×1 to RGB → tanh.
With `level_convs` 2 (an rbedit extension), each level has two such 3×3
convolutions, as Karras et al.'s blocks do (`encoder_convs` sets Z's and E's alone).
With `e_inject` (an rbedit extension), e also scales and shifts every level's
channels before its pixel norm, as a style modulates a StyleGAN level.
With `e_warp` (also an extension), e sets an affine warp of the drawing, as a
spatial transformer (Jaderberg et al. 2015) places what it transforms.
The discriminators (training code) reuse `ConvTrunk` without normalisation.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

LEAKY_SLOPE = 0.2


class PixelNorm(nn.Module):
    """Normalise each pixel's feature vector to unit average square (Karras et al.)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _level_widths(c_in: int, c_out: int, convs: int, *, widen_first: bool) -> list[tuple[int, int]]:
    """(in, out) channels of a level's `convs` convolutions: the width changes at its first or its last."""
    widths = [c_out if widen_first else c_in] * convs
    return list(zip([c_in, *widths[:-1]], widths[:-1] + [c_out]))


class ConvTrunk(nn.Module):
    """Image (B, 3, S, S) → features (B, channels[-1] * 16) at 4×4."""

    def __init__(self, channels: tuple[int, ...], *, normalize: bool, convs: int = 1) -> None:
        super().__init__()
        self.from_rgb = nn.Conv2d(3, channels[0], 1)
        blocks = []
        for level_in, level_out in zip(channels[:-1], channels[1:]):
            for c_in, c_out in _level_widths(level_in, level_out, convs, widen_first=False):
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
                if normalize:
                    blocks.append(PixelNorm())
            blocks.append(nn.AvgPool2d(2))
        # A last conv at 4×4 keeps the top level as deep as the others.
        blocks += [nn.Conv2d(channels[-1], channels[-1], 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        if normalize:
            blocks.append(PixelNorm())
        self.blocks = nn.Sequential(*blocks)
        self.out_features = channels[-1] * 16

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.from_rgb(x), LEAKY_SLOPE)
        return self.blocks(h).flatten(1)


class GaussianEncoder(nn.Module):
    """q(v|x) = N(mu(x), exp(logvar(x))): image → (mu, logvar), each (B, dim)."""

    def __init__(self, channels: tuple[int, ...], dim: int, *, convs: int = 1) -> None:
        super().__init__()
        self.trunk = ConvTrunk(channels, normalize=True, convs=convs)
        self.head = nn.Linear(self.trunk.out_features, 2 * dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.trunk(x)).chunk(2, dim=1)
        return mu, logvar


class Generator(nn.Module):
    """G(z, e): latents (B, z_dim + e_dim) → image (B, 3, S, S) in [-1, 1].

    e_inject says where e enters: "input" (the paper: [z, e] feed the FC),
    "every-level" (the input, and before each level's pixel norm its channels
    are scaled by 1 + A(e) and shifted by B(e)) or "levels-only" (the FC sees
    z alone, so the 4×4 layout is z's, and e acts only through those scales
    and shifts). The pixel norm after the modulation keeps every level's
    output at unit scale whatever e is.

    e_warp: the drawing (before tanh) is resampled through an affine map
    that e sets, the identity at the start. A zoom, a shift or a slant of
    the whole drawing is then one of e's few numbers, where channel scales
    and shifts can change a drawing's size only by redrawing it.
    """

    def __init__(
        self,
        channels: tuple[int, ...],
        z_dim: int,
        e_dim: int,
        e_inject: str = "input",
        e_warp: bool = False,
        *,
        convs: int = 1,
    ) -> None:
        super().__init__()
        self.z_dim, self.e_inject = z_dim, e_inject
        top = channels[-1]
        self.fc = nn.Linear(z_dim if e_inject == "levels-only" else z_dim + e_dim, top * 16)
        self.top = top
        blocks = [nn.Conv2d(top, top, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE), PixelNorm()]
        normalised = [top]  # the channels of each pixel norm, in order
        for level_in, level_out in zip(channels[:0:-1], channels[-2::-1]):
            blocks.append(nn.Upsample(scale_factor=2, mode="nearest"))
            for c_in, c_out in _level_widths(level_in, level_out, convs, widen_first=True):
                blocks += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE), PixelNorm()]
                normalised.append(c_out)
        self.blocks = nn.Sequential(*blocks)
        self.styles = None
        if e_inject != "input":
            # One (scale, shift) pair per pixel norm, zero at the start: every level starts unmodulated.
            self.styles = nn.ModuleList([nn.Linear(e_dim, 2 * c) for c in normalised])
            for style in self.styles:
                nn.init.zeros_(style.weight)
                nn.init.zeros_(style.bias)
        self.to_rgb = nn.Conv2d(channels[0], 3, 1)
        self.norm = PixelNorm()
        self.warp = None
        if e_warp:
            # The affine map's 2×3 matrix minus the identity, zero at the start. Built aside from the
            # random stream, so every other network starts as it would without the warp.
            with torch.random.fork_rng(devices=[]):
                self.warp = nn.Linear(e_dim, 6)
            nn.init.zeros_(self.warp.weight)
            nn.init.zeros_(self.warp.bias)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        fc_input = latents[:, : self.z_dim] if self.e_inject == "levels-only" else latents
        h = self.norm(F.leaky_relu(self.fc(fc_input), LEAKY_SLOPE).view(-1, self.top, 4, 4))
        e = latents[:, self.z_dim :]
        if self.styles is None:
            h = self.blocks(h)
        else:
            styles = iter(self.styles)
            for layer in self.blocks:
                if isinstance(layer, PixelNorm):  # the end of a level: modulate, then normalise
                    scale, shift = next(styles)(e)[:, :, None, None].chunk(2, dim=1)
                    h = h * (1 + scale) + shift
                h = layer(h)
        drawing = self.to_rgb(h)
        if self.warp is not None:
            drawing = self._warped(drawing, e)
        return torch.tanh(drawing)

    def _warped(self, drawing: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        """The drawing resampled at the affine map of e; beyond its edge, the edge's colour (the background)."""
        identity = torch.eye(2, 3, dtype=drawing.dtype, device=drawing.device)
        theta = identity + self.warp(e).view(-1, 2, 3)
        grid = F.affine_grid(theta, list(drawing.shape), align_corners=False)
        return F.grid_sample(drawing, grid, padding_mode="border", align_corners=False)

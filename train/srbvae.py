"""sRb-VAE (§4.3, Alg. 1): the symmetric KL minimised adversarially, plus Eq. 10.

One batch gives one `Pass`: the encoder pairs (x, z, e), (x_r, z_r) and the
generator pairs (x̂, ẑ, ê), (x̂_r, ẑ_r), all at the current parameters. The
model phase minimises Eq. 8 (+ Eq. 10) with the discriminators frozen; the
discriminator phase maximises Eq. 9 on the same, detached, pairs. Both
gradients are taken before either update, as in Alg. 1 (lines 19-20).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from rbedit.model import RbVAE
from train.objectives import (
    adversarial_model_loss,
    clamp,
    discriminator_loss,
    gaussian_nll,
    laplace_nll,
)


@dataclass
class Pass:
    x: torch.Tensor  # (B, 3, S, S) unlabelled images
    z: torch.Tensor  # (B, z_dim) ~ q(z|x)
    e: torch.Tensor  # (B, e_dim) ~ q(e|x)
    x_r: torch.Tensor  # (B, 3, S, S) reference images
    z_r: torch.Tensor  # (B, z_dim) ~ q(z|x_r)
    x_hat: torch.Tensor  # G(ẑ, ê)
    z_hat: torch.Tensor  # ~ p(z)
    e_hat: torch.Tensor  # ~ p(e)
    x_hat_r: torch.Tensor  # G(ẑ_r, e_r)
    z_hat_r: torch.Tensor  # ~ p(z)


def model_terms(model: RbVAE, x: torch.Tensor, x_r: torch.Tensor, cfg, noise: torch.Generator) -> tuple[Pass, dict]:
    """Forward everything the model phase needs; returns the pass and its unweighted loss terms."""
    b = len(x)
    # Encoder pairs (Alg. 1 lines 2-6); one Z pass over both sets.
    qz_all = clamp(model.encode_z(torch.cat([x, x_r])), cfg.min_logvar)
    qe = clamp(model.encode_e(x), cfg.min_logvar)
    z_all = qz_all.sample(noise)
    z, z_r = z_all[:b], z_all[b:]
    e = qe.sample(noise)
    e_r = model.reference_e(b)

    # Prior draws (lines 9-11).
    def prior(dim: int) -> torch.Tensor:
        return torch.randn(b, dim, generator=noise, device=x.device)

    z_hat, e_hat, z_hat_r = prior(cfg.z_dim), prior(cfg.e_dim), prior(cfg.z_dim)

    # One generator pass: reconstructions, generated pairs (lines 12-13) and the swap.
    zs = [z, z_r, z_hat, z_hat_r, z_r]
    es = [e, e_r, e_hat, e_r, e]
    if cfg.swap_weight == 0:
        zs, es = zs[:4], es[:4]
    images = model.decode(torch.cat(zs), torch.cat(es)).split(b)
    recon, recon_r, x_hat, x_hat_r = images[:4]

    terms = {
        # Eq. 10, images: log p(x|z,e) and log p(x_r|z_r,e_r).
        "recon": laplace_nll(x, recon, cfg.laplace_scale),
        "recon_ref": laplace_nll(x_r, recon_r, cfg.laplace_scale),
    }
    # Eq. 10, latents re-encoded from generated images.
    re_z = clamp(model.encode_z(torch.cat([x_hat, x_hat_r, *images[4:]])), cfg.min_logvar)
    re_e = clamp(model.encode_e(torch.cat([x_hat, *images[4:]])), cfg.min_logvar)
    re_z_parts = [type(re_z)(m, lv) for m, lv in zip(re_z.mu.split(b), re_z.logvar.split(b))]
    re_e_parts = [type(re_e)(m, lv) for m, lv in zip(re_e.mu.split(b), re_e.logvar.split(b))]
    terms["latent"] = (
        gaussian_nll(z_hat, re_z_parts[0]) + gaussian_nll(e_hat, re_e_parts[0]) + gaussian_nll(z_hat_r, re_z_parts[1])
    )
    if cfg.swap_weight:
        # rbedit extension: a reference digit's z with an unlabelled image's e must
        # re-encode to both. z_r carries no style (all references share one), so
        # this asks Z to ignore the style that e put into the image.
        terms["swap"] = gaussian_nll(z_r.detach(), re_z_parts[2]) + gaussian_nll(e.detach(), re_e_parts[1])
    return Pass(x, z, e, x_r, z_r, x_hat, z_hat, e_hat, x_hat_r, z_hat_r), terms


def adversarial_terms(p: Pass, d_xi, d_gamma) -> dict:
    """Eq. 8: what the encoders and the generator minimise through the discriminators."""
    return {
        "adv_xi": adversarial_model_loss(d_xi(p.x, p.z, p.e), d_xi(p.x_hat, p.z_hat, p.e_hat)),
        "adv_gamma": adversarial_model_loss(d_gamma(p.x_r, p.z_r), d_gamma(p.x_hat_r, p.z_hat_r)),
    }


def discriminator_terms(p: Pass, d_xi, d_gamma) -> dict:
    """Eq. 9 for both discriminators on the detached pairs of the same pass."""
    det = {k: v.detach() for k, v in vars(p).items()}
    return {
        "d_xi": discriminator_loss(
            d_xi(det["x"], det["z"], det["e"]), d_xi(det["x_hat"], det["z_hat"], det["e_hat"])
        ),
        "d_gamma": discriminator_loss(
            d_gamma(det["x_r"], det["z_r"]), d_gamma(det["x_hat_r"], det["z_hat_r"])
        ),
    }


def model_loss(terms: dict, cfg) -> torch.Tensor:
    return (
        terms["recon"]
        + terms["recon_ref"]
        + cfg.latent_weight * terms["latent"]
        + cfg.swap_weight * terms.get("swap", 0.0)
        + cfg.adversarial_weight * (terms["adv_xi"] + terms["adv_gamma"])
    )

"""The objectives of DESIGN §1 as small pure loss functions.

Notation follows the paper: x unlabelled images, x_r reference images,
q(z|x) = Z(x), q(e|x) = E(x), e_r the learned reference vector, hats for
draws from the priors and images generated from them. Losses are summed over
pixels / latent dimensions and averaged over the batch.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from rbedit.model import Posterior, RbVAE


def clamp(post: Posterior, min_logvar: float) -> Posterior:
    return Posterior(post.mu, post.logvar.clamp(min=min_logvar))


def laplace_nll(x: torch.Tensor, mean: torch.Tensor, scale: float) -> torch.Tensor:
    """−log Laplace(x | mean, λ) up to a constant: the L1 error weighted 1/λ, summed over pixels."""
    return (x - mean).abs().flatten(1).sum(1).mean() / scale


def gaussian_nll(v: torch.Tensor, post: Posterior) -> torch.Tensor:
    """−log q(v|x) for a diagonal Gaussian posterior, summed over dimensions."""
    nll = 0.5 * ((v - post.mu).pow(2) * torch.exp(-post.logvar) + post.logvar + math.log(2 * math.pi))
    return nll.sum(1).mean()


def kl_to_standard_normal(post: Posterior) -> torch.Tensor:
    """KL(q || N(0, I)), summed over dimensions."""
    return 0.5 * (post.mu.pow(2) + post.logvar.exp() - 1.0 - post.logvar).sum(1).mean()


def discriminator_loss(d_encoded: torch.Tensor, d_generated: torch.Tensor) -> torch.Tensor:
    """Eq. 9 / Alg. 1 lines 16, 18 as a loss: logistic regression, encoder pairs labelled 1.

    Its optimum is d = log q(x, latents) / p(x, latents), the ratio of Eq. 7.
    """
    return 0.5 * (F.softplus(-d_encoded).mean() + F.softplus(d_generated).mean())


def adversarial_model_loss(d_encoded: torch.Tensor, d_generated: torch.Tensor) -> torch.Tensor:
    """Eq. 8 for one discriminator: E_q[d] − E_p[d], minimised by encoders and generator."""
    return d_encoded.mean() - d_generated.mean()


def vae_loss(model: RbVAE, x: torch.Tensor, *, scale: float, beta: float, min_logvar: float) -> dict:
    """(β-)VAE with all latents (z, e) as one code under N(0, I); the reference bit is ignored."""
    qz, qe = clamp(model.encode_z(x), min_logvar), clamp(model.encode_e(x), min_logvar)
    recon = laplace_nll(x, model.decode(qz.sample(), qe.sample()), scale)
    kl = kl_to_standard_normal(qz) + kl_to_standard_normal(qe)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def rbvae_loss(model: RbVAE, x: torch.Tensor, x_r: torch.Tensor, *, scale: float, min_logvar: float) -> dict:
    """Eq. 3: KL + Laplace reconstruction; reference images are decoded with e_r."""
    qz, qe = clamp(model.encode_z(x), min_logvar), clamp(model.encode_e(x), min_logvar)
    qz_r = clamp(model.encode_z(x_r), min_logvar)
    recon = laplace_nll(x, model.decode(qz.sample(), qe.sample()), scale)
    recon_r = laplace_nll(x_r, model.decode(qz_r.sample(), model.reference_e(len(x_r))), scale)
    kl = kl_to_standard_normal(qz) + kl_to_standard_normal(qe) + kl_to_standard_normal(qz_r)
    return {"loss": recon + recon_r + kl, "recon": recon, "recon_ref": recon_r, "kl": kl}

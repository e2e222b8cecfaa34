"""The objectives of DESIGN §1 as small pure loss functions.

Notation follows the paper: x unlabelled images, x_r reference images,
q(z|x) = Z(x), q(e|x) = E(x), e_r the learned reference vector, hats for
draws from the priors and images generated from them. Losses are summed over
pixels / latent dimensions and averaged over the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from rbedit.landmarks import ibug
from rbedit.model import Posterior, RbVAE
from rbedit.pixels import model_to_unit


def clamp(post: Posterior, min_logvar: float, max_logvar: float | None = None) -> Posterior:
    """The posterior with its log-variance clamped, in float32 (under bfloat16 autocast the
    encoders' heads give bfloat16, and the latent likelihoods would keep three digits)."""
    return Posterior(post.mu.float(), post.logvar.float().clamp(min=min_logvar, max=max_logvar))


# Per-pixel weights of a reconstruction error: (image, reconstruction) → weights broadcasting
# against the image, (1, 1, H, W) or (N, 1, H, W). rbedit extensions; the paper weighs pixels alike.
PixelWeight = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def laplace_nll(x: torch.Tensor, mean: torch.Tensor, scale: float, weight: PixelWeight | None = None) -> torch.Tensor:
    """−log Laplace(x | mean, λ) up to a constant: the L1 error weighted 1/λ, summed over pixels.

    `weight`, if given, scales each pixel's error by weight(x, mean) (feature_weights, ink_weights).
    """
    error = (x - mean).abs()
    if weight is not None:
        error = error * weight(x, mean)
    return error.flatten(1).sum(1).mean() / scale


def ink_weights(weight: float) -> PixelWeight:
    """Digits: errors count 1 + weight · ink, the ink of the image or of its reconstruction, whichever is more.

    Ink is a pixel's channel sum in [0, 1] units, clipped at 1: a styled digit's colour
    sums to 1 (App. C), a reference outline's to 3, the background's to 0. A small
    digit is a few dozen pixels of a 32×32 image, so an L1 over the whole image barely
    minds drawing it as another digit; weighting the ink makes missing strokes and
    strokes drawn where the image has none cost alike (the reconstruction's ink is
    detached: a weight, not a gradient path).
    """

    def weigh(x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        ink = torch.maximum(_ink(x), _ink(mean.detach()))
        return 1.0 + weight * ink

    return weigh


def _ink(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) channel sums of model-range images in [0, 1] units, clipped at 1."""
    return model_to_unit(x).sum(1, keepdim=True).clamp(max=1.0)


# Which of the 68 landmarks an expression moves: brows, eyes, lips.
EXPRESSION_LANDMARKS = [
    i for part in (ibug.RIGHT_BROW, ibug.LEFT_BROW, ibug.RIGHT_EYE, ibug.LEFT_EYE, ibug.OUTER_LIPS, ibug.INNER_LIPS)
    for i in range(68)[part]
]
# The jaw outline, where face width and length show.
OUTLINE_LANDMARKS = list(range(68)[ibug.JAW])
FEATURE_SIGMA = 0.04  # width of each landmark's bump, as a fraction of the crop side
IRIS_SIGMA = 0.025  # width of the bump on each eye's centre: about the iris's radius (0.8 px at 32×32)


def feature_weights(
    template,
    size: int,
    weight: float,
    outline_weight: float = 0.0,
    iris_weight: float = 0.0,
    device: torch.device | str = "cpu",
) -> PixelWeight:
    """Faces: errors count 1 + weight · bump + outline_weight · outline bump + iris_weight · iris bump.

    The bump is the largest Gaussian (σ = FEATURE_SIGMA · size) over the template's
    expression landmarks (brows, eyes, lips); the outline bump the same over its jaw
    outline, where face width and length are drawn; the iris bump a narrower one
    (σ = IRIS_SIGMA · size) on each eye's centre, where eye colour is drawn. An
    aligned face has its features near the template's, so this tells the likelihood
    where expression, face shape and eye colour are (rbedit extensions `feature_weight`,
    `outline_weight`, `iris_weight`; the paper's likelihood weighs every pixel alike).
    """
    points = np.asarray(template, dtype=np.float64)
    weights = 1.0 + weight * _bump(points[EXPRESSION_LANDMARKS], size, FEATURE_SIGMA)
    if outline_weight:
        weights = weights + outline_weight * _bump(points[OUTLINE_LANDMARKS], size, FEATURE_SIGMA)
    if iris_weight:
        weights = weights + iris_weight * _bump(ibug.eye_centres(points), size, IRIS_SIGMA)
    weights = weights[None, None].to(device)  # (1, 1, H, W): the same for every face
    return lambda x, mean: weights


def _bump(points: np.ndarray, size: int, sigma: float) -> torch.Tensor:
    """(H, W): the largest of Gaussians (σ = sigma · size) centred on (K, 2) points, x, y in pixels."""
    points = torch.as_tensor(points, dtype=torch.float32)
    centres = torch.arange(size, dtype=torch.float32)  # pixel i's centre is at i (the template's convention)
    dx = centres[None, None, :] - points[:, 0, None, None]  # (K, 1, W)
    dy = centres[None, :, None] - points[:, 1, None, None]  # (K, H, 1)
    return torch.exp(-(dx**2 + dy**2) / (2 * (sigma * size) ** 2)).amax(0)


def gaussian_nll(v: torch.Tensor, post: Posterior) -> torch.Tensor:
    """−log q(v|x) for a diagonal Gaussian posterior, summed over dimensions."""
    nll = 0.5 * ((v - post.mu).pow(2) * torch.exp(-post.logvar) + post.logvar + math.log(2 * math.pi))
    return nll.sum(1).mean()


def cross_correlation(a: torch.Tensor, b: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Sum of the squared Pearson correlations between every column of a (B, m) and of b (B, n) over the batch.

    Zero when no coordinate of one code moves linearly with any of the other. For
    independent codes it is about m · n / B, the sampling noise of B rows.
    """
    a = (a - a.mean(0)) / (a.std(0) + eps)
    b = (b - b.mean(0)) / (b.std(0) + eps)
    return ((a.T @ b) / (len(a) - 1)).pow(2).sum()


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


def vae_loss(
    model: RbVAE, x: torch.Tensor, *, scale: float, beta: float, min_logvar: float, weight: PixelWeight | None = None
) -> dict:
    """(β-)VAE with all latents (z, e) as one code under N(0, I); the reference bit is ignored."""
    qz, qe = clamp(model.encode_z(x), min_logvar), clamp(model.encode_e(x), min_logvar)
    recon = laplace_nll(x, model.decode(qz.sample(), qe.sample()), scale, weight)
    kl = kl_to_standard_normal(qz) + kl_to_standard_normal(qe)
    return {"loss": recon + beta * kl, "recon": recon, "kl": kl}


def rbvae_loss(
    model: RbVAE, x: torch.Tensor, x_r: torch.Tensor, *, scale: float, min_logvar: float, weight: PixelWeight | None = None
) -> dict:
    """Eq. 3: KL + Laplace reconstruction; reference images are decoded with e_r."""
    qz, qe = clamp(model.encode_z(x), min_logvar), clamp(model.encode_e(x), min_logvar)
    qz_r = clamp(model.encode_z(x_r), min_logvar)
    recon = laplace_nll(x, model.decode(qz.sample(), qe.sample()), scale, weight)
    recon_r = laplace_nll(x_r, model.decode(qz_r.sample(), model.reference_e(len(x_r))), scale, weight)
    kl = kl_to_standard_normal(qz) + kl_to_standard_normal(qe) + kl_to_standard_normal(qz_r)
    return {"loss": recon + recon_r + kl, "recon": recon, "recon_ref": recon_r, "kl": kl}

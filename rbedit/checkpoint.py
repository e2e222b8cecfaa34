"""Release checkpoints: a folder with config.json, model.safetensors and README.md.

Only safetensors and JSON are ever read (no pickle). Loading is strict: every
key and every shape must match the networks that config.json builds.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save

from rbedit.atomic import write_atomic
from rbedit.model import ModelConfig, RbVAE

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"


class CheckpointError(ValueError):
    """A checkpoint folder is missing a file or does not match its config."""


def save_checkpoint(
    model: RbVAE,
    folder: str | Path,
    *,
    card: str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Path:
    """Write the release checkpoint of `model` into `folder` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "pt", "rbedit_format": str(model.config.format_version)}
    write_atomic(folder / WEIGHTS_NAME, save(tensors, metadata=metadata))
    write_atomic(folder / CONFIG_NAME, model.config.to_json().encode())
    if card is not None:
        write_atomic(folder / CARD_NAME, card.encode())
    return folder


def load_config(folder: str | Path) -> ModelConfig:
    path = Path(folder) / CONFIG_NAME
    if not path.is_file():
        raise CheckpointError(f"{folder}: no {CONFIG_NAME}; not an rbedit checkpoint folder")
    try:
        return ModelConfig.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: invalid model config: {err}") from None


def load_checkpoint(
    folder: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> RbVAE:
    """Build the model from config.json and load model.safetensors strictly, in eval mode."""
    folder = Path(folder)
    config = load_config(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{folder}: no {WEIGHTS_NAME}")
    try:
        state = load_file(str(weights))
    except Exception as err:  # safetensors raises its own error types
        raise CheckpointError(f"{weights}: unreadable safetensors file: {err}") from None
    model = RbVAE(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}")
        if unexpected:
            parts.append(f"unexpected keys: {', '.join(unexpected[:5])}{' …' if len(unexpected) > 5 else ''}")
        raise CheckpointError(f"{weights}: does not match {CONFIG_NAME}: {'; '.join(parts)}")
    for key, value in expected.items():
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{weights}: shape mismatch for {key}: file has {tuple(state[key].shape)}, "
                f"{CONFIG_NAME} needs {tuple(value.shape)}"
            )
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return model.to(device=device, dtype=dtype).eval()

"""The one place that defines how pixels map into the model's range.

Inside the model an image is a float tensor (B, 3, H, W) in [-1, 1]; outside it
is uint8 RGB (H, W, 3) in [0, 255] or float in [0, 1].
"""

from __future__ import annotations

import numpy as np

MODEL_MIN = -1.0
MODEL_MAX = 1.0


def unit_to_model(x):
    """Map values in [0, 1] (numpy or torch) to the model range [-1, 1]."""
    return x * (MODEL_MAX - MODEL_MIN) + MODEL_MIN


def model_to_unit(x):
    """Map model outputs in [-1, 1] back to [0, 1] (values are clipped)."""
    y = (x - MODEL_MIN) / (MODEL_MAX - MODEL_MIN)
    return y.clip(0.0, 1.0)


def uint8_to_model(images: np.ndarray):
    """(B, H, W, 3) or (H, W, 3) uint8 → float32 torch tensor (B, 3, H, W) in [-1, 1]."""
    import torch

    arr = np.asarray(images)
    if arr.ndim == 3:
        arr = arr[None]
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float() / 255.0
    return unit_to_model(t)


def model_to_uint8(x) -> np.ndarray:
    """Float tensor (B, 3, H, W) in [-1, 1] → uint8 numpy (B, H, W, 3)."""
    unit = model_to_unit(x.detach().float().cpu())
    return (unit.permute(0, 2, 3, 1).numpy() * 255.0 + 0.5).astype(np.uint8)

"""Sample grids written during training: transfer rows and sampling rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from rbedit.model import RbVAE
from rbedit.pixels import model_to_uint8


def tile(rows: list[torch.Tensor], pad: int = 2) -> np.ndarray:
    """Rows of equal-length image batches (N, 3, S, S) → one uint8 (H, W, 3) grid."""
    arrays = [model_to_uint8(r) for r in rows]
    n, s = arrays[0].shape[0], arrays[0].shape[1]
    grid = np.full((len(arrays) * (s + pad) + pad, n * (s + pad) + pad, 3), 40, np.uint8)
    for i, row in enumerate(arrays):
        for j, img in enumerate(row):
            y, x = pad + i * (s + pad), pad + j * (s + pad)
            grid[y : y + s, x : x + s] = img
    return grid


@torch.no_grad()
def sample_grid(model: RbVAE, sources: torch.Tensor, targets: torch.Tensor, *, samples: int = 4, seed: int = 0) -> np.ndarray:
    """Rows: A (sources), B (targets), G(z_B, e_A), G(z_B, e_r), then `samples` rows of G(z_B, e ~ N(0, I))."""
    was_training = model.training
    model.eval()
    z_b = model.encode_z(targets).mu
    e_a = model.encode_e(sources).mu
    n = len(targets)
    rows = [sources, targets, model.decode(z_b, e_a), model.decode(z_b, model.reference_e(n))]
    gen = torch.Generator(device="cpu").manual_seed(seed)
    for _ in range(samples):
        e = torch.randn(n, model.config.e_dim, generator=gen).to(z_b.device)
        rows.append(model.decode(z_b, e))
    model.train(was_training)
    return tile(rows)


def save_png(grid: np.ndarray, path: Path, *, upscale: int = 2) -> None:
    image = Image.fromarray(grid)
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG")
    tmp.replace(path)

"""The digit-style protocol of the paper (Appendix C.1), at 64×64.

Reference style: a digit upscaled to 64×64 with only its edges kept (white,
thin, full size). Unlabelled images then apply, in this order:
  1. width:  k ~ U{1..10}, dilate with a k×k square;
  2. colour: c ~ U[0,1]^3, ĉ = c/‖c‖₁, multiply RGB by ĉ;
  3. size:   s ~ U[0.5, 1], downscale by s and zero-pad back to 64×64, centred.
Ground truth per image: (ĉ_R, ĉ_G, ĉ_B, s, k/10); reference style carries
(1/3, 1/3, 1/3, 1, 0.1). Images are then area-downsampled to the model size.

Splits are by source digit, never by transformed image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from train.data.mnist import load_bundled_subset, load_idx_mnist

PROTOCOL_SIZE = 64
FACTOR_NAMES = ("R", "G", "B", "scale", "width")
REFERENCE_FACTORS = np.array([1 / 3, 1 / 3, 1 / 3, 1.0, 0.1], dtype=np.float32)
MAX_WIDTH = 10
SCALE_RANGE = (0.5, 1.0)
SQUARE = np.ones((3, 3), dtype=bool)
OUTLINE_OUTSIDE = 2  # outline pixels outside the digit's mask, at 64×64
OUTLINE_INSIDE = 1  # and inside it


@dataclass
class DigitSet:
    """Images at model size with their ground truth."""

    images: np.ndarray  # (N, S, S, 3) uint8
    factors: np.ndarray  # (N, 5) float32: ĉ_R, ĉ_G, ĉ_B, s, k/10
    labels: np.ndarray  # (N,) int64 digit class
    sources: np.ndarray  # (N,) int64 index of the source digit

    def __len__(self) -> int:
        return len(self.images)


def edge_digit(digit28: np.ndarray) -> np.ndarray:
    """(28, 28) uint8 MNIST digit → (64, 64) float32 in {0, 1}: its edges, full size."""
    big = Image.fromarray(digit28).resize((PROTOCOL_SIZE, PROTOCOL_SIZE), Image.BILINEAR)
    mask = np.asarray(big) >= 128
    # Morphological gradient (dilation minus erosion) leaves a thin outline:
    # OUTLINE_OUTSIDE + OUTLINE_INSIDE = 3 px at 64, so it survives the area
    # downsampling to a 32×32 model as a line rather than a faint dotted trace.
    outline = ndimage.binary_dilation(mask, SQUARE, iterations=OUTLINE_OUTSIDE) & ~ndimage.binary_erosion(
        mask, SQUARE, iterations=OUTLINE_INSIDE
    )
    return outline.astype(np.float32)


def _rescale_centred(image: np.ndarray, scale: float) -> np.ndarray:
    """Downscale a (64, 64) float image by `scale` and zero-pad it back, centred."""
    side = max(1, round(PROTOCOL_SIZE * scale))
    small = np.asarray(Image.fromarray(image, mode="F").resize((side, side), Image.BILINEAR))
    out = np.zeros_like(image)
    top = (PROTOCOL_SIZE - side) // 2
    out[top : top + side, top : top + side] = small
    return out


def style_digit(edges: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Apply width → colour → size, drawn at random, to a (64, 64) edge image; returns (64, 64, 3) image and factors."""
    k = int(rng.integers(1, MAX_WIDTH + 1))
    c = rng.uniform(0.0, 1.0, size=3)
    s = float(rng.uniform(*SCALE_RANGE))
    return draw_style(edges, width=k, colour=c, scale=s)


def draw_style(edges: np.ndarray, *, width: int, colour, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Width `width` (1..MAX_WIDTH), colour ∝ `colour`, size `scale`: (64, 64, 3) image and its factors."""
    colour = np.asarray(colour, dtype=np.float64)
    colour = colour / colour.sum()
    wide = ndimage.grey_dilation(edges, size=(width, width)) if width > 1 else edges
    # Colour is a per-channel gain and resizing is linear, so scaling the grey
    # image first and colouring after gives the protocol's order exactly.
    grey = _rescale_centred(wide, scale)
    image = grey[:, :, None] * colour[None, None, :].astype(np.float32)
    factors = np.array([*colour, scale, width / MAX_WIDTH], dtype=np.float32)
    return image, factors


def to_model_size(image64: np.ndarray, size: int) -> np.ndarray:
    """Area-downsample a (64, 64[, 3]) float image in [0, 1] to uint8 (size, size, 3)."""
    if image64.ndim == 2:
        image64 = np.repeat(image64[:, :, None], 3, axis=2)
    f = PROTOCOL_SIZE // size
    if f * size != PROTOCOL_SIZE:
        raise ValueError(f"model size {size} must divide {PROTOCOL_SIZE}")
    small = image64.reshape(size, f, size, f, 3).mean(axis=(1, 3))
    return (small * 255.0 + 0.5).clip(0, 255).astype(np.uint8)


def make_reference(digits: np.ndarray, labels: np.ndarray, indices: np.ndarray, size: int) -> DigitSet:
    """Reference-style (white, thin, full size) images of the given source digits."""
    images = np.stack([to_model_size(edge_digit(digits[i]), size) for i in indices])
    factors = np.tile(REFERENCE_FACTORS, (len(indices), 1))
    return DigitSet(images, factors, labels[indices], indices.astype(np.int64))


def make_unlabelled(
    digits: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    size: int,
    *,
    copies: int,
    seed: int,
) -> DigitSet:
    """Each source digit styled `copies` times with a seeded generator."""
    rng = np.random.default_rng(seed)
    images, factors, sources = [], [], []
    for i in indices:
        edges = edge_digit(digits[i])
        for _ in range(copies):
            image, f = style_digit(edges, rng)
            images.append(to_model_size(image, size))
            factors.append(f)
            sources.append(i)
    sources = np.array(sources, dtype=np.int64)
    return DigitSet(np.stack(images), np.stack(factors), labels[sources], sources)


@dataclass
class DigitSplits:
    """Disjoint source-digit indices: model training (reference / unlabelled halves) and the two probe folds."""

    reference: np.ndarray
    unlabelled: np.ndarray
    probe_fit: np.ndarray
    probe_eval: np.ndarray


def split_sources(labels: np.ndarray, *, seed: int, probe_fraction: float = 0.2) -> DigitSplits:
    """Stratified split by source digit: probe_fit and probe_eval get `probe_fraction` each."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"reference": [], "unlabelled": [], "probe_fit": [], "probe_eval": []}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_probe = int(round(len(idx) * probe_fraction))
        fit, ev, rest = idx[:n_probe], idx[n_probe : 2 * n_probe], idx[2 * n_probe :]
        half = len(rest) // 2
        parts["probe_fit"].append(fit)
        parts["probe_eval"].append(ev)
        parts["reference"].append(rest[:half])
        parts["unlabelled"].append(rest[half:])
    return DigitSplits(**{k: np.sort(np.concatenate(v)) for k, v in parts.items()})


def load_source_digits(mnist_dir: str | Path | None) -> tuple[np.ndarray, np.ndarray]:
    """All source digits: full MNIST (train + test) from `mnist_dir`, else the bundled subset."""
    if mnist_dir is None:
        return load_bundled_subset()
    parts = [load_idx_mnist(mnist_dir, "train")]
    try:
        parts.append(load_idx_mnist(mnist_dir, "test"))
    except FileNotFoundError:
        pass
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

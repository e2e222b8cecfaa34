"""Digit preparation for real inputs: any size and mode → what the model saw in training.

Training digits are light strokes on a black square, centred, at a scale that
is itself a style factor. So a real input is
1. put on a black background: the background colour is estimated from the
   border and subtracted; dark-on-light images are inverted (ink becomes light);
2. centred: its content (bounding box of the ink) moved to the centre of a
   square canvas whose side is the image's longer side, so the digit keeps its
   size relative to the picture instead of being normalised away;
3. resized to the model resolution (area averaging when shrinking, as in training).
Images already in the model's style (black background, centred) pass through
unchanged apart from the resize.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

BORDER_FRACTION = 0.05  # width of the frame whose median colour is taken as the background
INK_THRESHOLD = 0.1  # pixels above this fraction of the brightest ink count as content
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def background_colour(rgb: np.ndarray) -> np.ndarray:
    """Median colour of the image border: (3,) float32 in [0, 255]."""
    h, w = rgb.shape[:2]
    b = max(1, round(BORDER_FRACTION * min(h, w)))
    if not (rgb[:b].any() or rgb[-b:].any() or rgb[:, :b].any() or rgb[:, -b:].any()):
        return np.zeros(3, np.float32)  # black frame (the model's own style): a fifth of the median's cost
    frame = np.concatenate(
        [rgb[:b].reshape(-1, 3), rgb[-b:].reshape(-1, 3), rgb[:, :b].reshape(-1, 3), rgb[:, -b:].reshape(-1, 3)]
    )
    # np.median, written out: its generic code costs ~4× the partition on a small frame.
    middle = [(len(frame) - 1) // 2, len(frame) // 2]
    return np.partition(frame, middle, axis=0)[middle].mean(axis=0, dtype=np.float32)


def ink(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 → (H, W, 3) uint8: light ink on a black background."""
    bg = background_colour(rgb)
    if not bg.any():
        return rgb  # already light on black
    # The mapping is per channel and per 8-bit value: apply it as three 256-entry tables.
    values = np.arange(256, dtype=np.float32)[:, None]
    if float(bg @ LUMA) > 127.5:  # dark on light: invert relative to the paper colour
        table = (bg - values) / np.maximum(bg, 1.0)
    else:
        table = (values - bg) / np.maximum(255.0 - bg, 1.0)
    table = (np.clip(table, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)  # (256, 3)
    out = np.empty_like(rgb)
    for c in range(3):
        out[..., c] = table[rgb[..., c], c]
    return out


def content_box(fg: np.ndarray) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the pixels holding ink, or None for a blank image."""
    # Channel maximum pairwise: numpy's strided fg.max(axis=2) is ~50× slower on small images.
    strength = np.maximum(np.maximum(fg[..., 0], fg[..., 1]), fg[..., 2])
    peak = float(strength.max())
    if peak <= 0.0:
        return None
    mask = strength > INK_THRESHOLD * peak
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _centre_on_square(array: np.ndarray, box: tuple[int, int, int, int] | None) -> np.ndarray:
    """Copy the boxed content into the centre of a zero square whose side is the longer image side."""
    h, w = array.shape[:2]
    side = max(h, w)
    top, bottom, left, right = box if box is not None else (0, h, 0, w)
    canvas = np.zeros((side, side, *array.shape[2:]), array.dtype)
    bh, bw = bottom - top, right - left
    y, x = (side - bh) // 2, (side - bw) // 2
    canvas[y : y + bh, x : x + bw] = array[top:bottom, left:right]
    return canvas


def _resize(array: np.ndarray, size: int) -> np.ndarray:
    side = array.shape[0]
    if side == size:
        return array
    if side > size and side % size == 0:
        return _block_mean(array, side // size)
    method = Image.BOX if side > size else Image.BILINEAR
    return np.array(Image.fromarray(array).resize((size, size), method))


def _block_mean(array: np.ndarray, f: int) -> np.ndarray:
    """Means of f×f blocks, rounded half up: the area downsampling of the training digits."""
    wide = array.astype(np.uint32)
    rows = sum(wide[i::f] for i in range(f))
    blocks = sum(rows[:, j::f] for j in range(f))
    return ((blocks + f * f // 2) // (f * f)).astype(np.uint8)


def prepare_digit(
    rgb: np.ndarray, *, size: int, alpha: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 3) uint8 [+ (H, W) alpha] → model input (size, size, 3) uint8 [+ alpha in the same geometry]."""
    fg = ink(rgb)
    box = content_box(fg)
    square = _centre_on_square(fg, box)
    out = _resize(square, size)
    if alpha is not None:
        alpha = _resize(_centre_on_square(alpha, box), size)
    return np.array(out, dtype=np.uint8), alpha  # a writable copy

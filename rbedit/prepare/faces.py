"""Face preparation: a thin bridge to rbedit.align.pipeline (alignment, crop, paste back).

The alignment module is imported only when a faces model is used, so digits
users never load landmark backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def detect_faces(
    rgb: np.ndarray, *, size: int, template, landmarks: str, face: str, source: Path | None
) -> list:
    """Aligned size×size crops (FaceCrop: .crop (S, S, 3) uint8, .matrix (2, 3) image→crop) of the
    selected faces, on `template` (None: the built-in standard template)."""
    from rbedit.align.pipeline import align_faces, crop_template

    template = crop_template(template, size)
    return list(align_faces(rgb, template=template, size=size, landmarks=landmarks, face=face, source=source))


def paste(rgb: np.ndarray, edited_crop: np.ndarray, face) -> np.ndarray:
    """The photo with one edited crop blended back in place."""
    from rbedit.align.pipeline import paste_back

    return paste_back(rgb, edited_crop, face)


def warp_alpha(alpha: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The photo's alpha channel in crop coordinates (same transform as the crop)."""
    forward = np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]])
    inverse = np.linalg.inv(forward)[:2].ravel()  # PIL maps output pixels back to input pixels
    img = Image.fromarray(alpha).transform((size, size), Image.AFFINE, tuple(inverse), Image.BILINEAR)
    return np.asarray(img)

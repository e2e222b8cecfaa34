"""The paste-back mask: where an edited crop replaces the photo, feathered at the edge."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from rbedit.landmarks import ibug

# The brows are raised by this fraction of the eye–mouth distance to take in the forehead.
FOREHEAD_RAISE = 0.6
FEATHER_SIGMA = 0.035  # Gaussian feather, as a fraction of the crop side
BORDER_MARGIN = 0.04  # the mask falls to exactly 0 this far (fraction of the side) from the crop edge
SUPERSAMPLE = 4  # polygon rasterised at 4× and box-reduced, for a smooth edge


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices (M, 2) of the convex hull of points (K, 2), counter-clockwise (Andrew's monotone chain)."""
    pts = sorted(map(tuple, np.asarray(points, dtype=np.float64)))

    def half(seq):
        chain: list[tuple[float, float]] = []
        for p in seq:
            while len(chain) >= 2:
                (ax, ay), (bx, by) = chain[-2], chain[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(pts) + half(reversed(pts)))


def face_outline(landmarks: np.ndarray) -> np.ndarray:
    """Points (27, 2) around the whole face: the jaw and the brows lifted onto the forehead."""
    pts = np.asarray(landmarks, dtype=np.float64)
    eyes = ibug.eye_centres(pts).mean(0)
    down = ibug.mouth_centre(pts) - eyes  # eye → mouth: the face's own "down"
    brows = np.concatenate([pts[ibug.RIGHT_BROW], pts[ibug.LEFT_BROW]])
    return np.concatenate([pts[ibug.JAW], brows - FOREHEAD_RAISE * down])


def face_mask(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(size, size) float32 in [0, 1]: 1 over the face, feathered, exactly 0 near the crop's border.

    landmarks: (68, 2) in crop pixel coordinates.
    """
    hull = convex_hull(face_outline(landmarks))
    big = Image.new("L", (size * SUPERSAMPLE, size * SUPERSAMPLE), 0)
    # PIL puts polygon vertices on pixel centres: crop point p → big pixel k(p + 0.5) - 0.5.
    ImageDraw.Draw(big).polygon([tuple(SUPERSAMPLE * (p + 0.5) - 0.5) for p in hull], fill=255)
    mask = big.reduce(SUPERSAMPLE).filter(ImageFilter.GaussianBlur(FEATHER_SIGMA * size))
    m = np.asarray(mask, dtype=np.float32) / 255.0  # uint8 blur: far from the face it is exactly 0
    # Taper to 0 at the border so the inverse warp never brings in the crop's padded edge.
    margin = max(1.0, BORDER_MARGIN * size)
    ramp = np.clip((np.minimum(np.arange(size), size - 1 - np.arange(size)) - 0.5) / margin, 0.0, 1.0)
    return (m * ramp[:, None] * ramp[None, :]).astype(np.float32)

"""The iBUG 300-W 68-point layout: which index is which part of the face.

"Right" and "left" are the subject's: the right eye (36–41) appears on the
image's left in a frontal photo.
"""

from __future__ import annotations

import numpy as np

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE_BRIDGE = slice(27, 31)
NOSE_LOWER = slice(31, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
OUTER_LIPS = slice(48, 60)
INNER_LIPS = slice(60, 68)

CHIN = 8
MOUTH_CORNERS = (48, 54)

# Left-right mirror of the layout: index i of a flipped face is MIRROR[i] of the original.
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]  # jaw
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]  # brows
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]  # nose
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]  # eyes
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]  # outer lips
    + [64, 63, 62, 61, 60, 67, 66, 65]  # inner lips
)


def eye_centres(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) → (..., 2, 2): centres of the right (image-left) and left eye."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.stack([pts[..., RIGHT_EYE, :].mean(axis=-2), pts[..., LEFT_EYE, :].mean(axis=-2)], axis=-2)


def mouth_centre(landmarks: np.ndarray) -> np.ndarray:
    """(..., 68, 2) → (..., 2): midpoint of the two mouth corners."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return (pts[..., MOUTH_CORNERS[0], :] + pts[..., MOUTH_CORNERS[1], :]) / 2.0


def eye_angle_degrees(landmarks: np.ndarray) -> float:
    """Angle of the line from the image-left eye centre to the image-right one (0 = level)."""
    right, left = eye_centres(landmarks)
    dx, dy = left - right
    return float(np.degrees(np.arctan2(dy, dx)))

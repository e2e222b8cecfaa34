"""What every landmark backend returns, and how it fails."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

NUM_LANDMARKS = 68  # iBUG 300-W layout


class LandmarkBackendError(RuntimeError):
    """The backend cannot run here (package, model file or weights missing); the message says what to do."""


class LandmarkFileError(ValueError):
    """Landmarks for one image are missing or malformed (the file backend); the message names the file."""


@dataclass(frozen=True)
class DetectedFace:
    """One face: its 68 landmarks and the box it was found in, both in image pixels.

    Coordinates are (x, y) with pixel centres on integers.
    """

    landmarks: np.ndarray  # (68, 2) float64
    box: tuple[float, float, float, float]  # (left, top, right, bottom)

    @property
    def area(self) -> float:
        left, top, right, bottom = self.box
        return max(0.0, right - left) * max(0.0, bottom - top)


class LandmarkBackend(Protocol):
    """Finds faces and their 68 landmarks in an RGB image."""

    name: str

    def detect(self, image: np.ndarray, *, source: Path | None = None) -> list[DetectedFace]:
        """Faces in `image` ((H, W, 3) uint8 RGB); `source` is the file it came from, if any."""
        ...


def face_from_landmarks(points: np.ndarray, box: tuple[float, float, float, float] | None = None) -> DetectedFace:
    """A DetectedFace from (68, 2) points; the box defaults to their extent."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"expected ({NUM_LANDMARKS}, 2) landmarks, got shape {pts.shape}")
    if box is None:
        (left, top), (right, bottom) = pts.min(axis=0), pts.max(axis=0)
        box = (float(left), float(top), float(right), float(bottom))
    return DetectedFace(landmarks=pts, box=tuple(float(v) for v in box))

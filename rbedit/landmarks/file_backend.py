"""Landmarks read from a file beside the image: same stem, `.json` or `.npy`.

The file holds one face as (68, 2) or several as (F, 68, 2) (x, y) pixel
coordinates; a JSON file may also be an object with that array under
"landmarks". `.json` is tried before `.npy`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rbedit.landmarks.interface import NUM_LANDMARKS, DetectedFace, LandmarkFileError, face_from_landmarks

SUFFIXES = (".json", ".npy")
JSON_KEY = "landmarks"


def landmark_file_for(source: Path) -> Path | None:
    """The landmarks file beside `source`, or None."""
    for suffix in SUFFIXES:
        candidate = Path(source).with_suffix(suffix)
        if candidate.is_file():
            return candidate
    return None


def read_landmark_file(path: Path) -> np.ndarray:
    """(F, 68, 2) float64 landmarks from a .json or .npy file; LandmarkFileError naming it otherwise."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            data = json.loads(path.read_text())
            if isinstance(data, dict):
                data = data[JSON_KEY]
        points = np.asarray(data, dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LandmarkFileError(f"{path}: cannot read landmarks ({exc})") from None
    if points.shape == (NUM_LANDMARKS, 2):
        points = points[None]
    if points.ndim != 3 or points.shape[1:] != (NUM_LANDMARKS, 2):
        raise LandmarkFileError(f"{path}: expected shape ({NUM_LANDMARKS}, 2) or (F, {NUM_LANDMARKS}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise LandmarkFileError(f"{path}: landmarks are not all finite")
    return points


class FileBackend:
    """Landmarks that already exist (annotated data sets, tests); boxes are the landmarks' extent."""

    name = "file"

    def detect(self, image: np.ndarray, *, source: Path | None = None) -> list[DetectedFace]:
        """Faces listed in the file beside `source` (the image itself is not looked at)."""
        if source is None:
            raise LandmarkFileError("the file landmark backend needs the image's path to find its landmarks file")
        path = landmark_file_for(Path(source))
        if path is None:
            names = " or ".join(Path(source).with_suffix(s).name for s in SUFFIXES)
            raise LandmarkFileError(f"{source}: no landmarks file beside it ({names})")
        return [face_from_landmarks(points) for points in read_landmark_file(path)]

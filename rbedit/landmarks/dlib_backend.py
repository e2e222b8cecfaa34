"""dlib backend: HOG face detector + the 68-point shape predictor (offline, CPU).

The predictor file is looked up, in order, at $RBEDIT_DLIB_PREDICTOR, inside
the PyPI package `face-recognition-models`, and at Debian's libdlib-data path.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from PIL import Image

from rbedit.landmarks.interface import NUM_LANDMARKS, DetectedFace, LandmarkBackendError

PREDICTOR_ENV = "RBEDIT_DLIB_PREDICTOR"
PREDICTOR_FILENAME = "shape_predictor_68_face_landmarks.dat"
MODELS_PACKAGE = "face_recognition_models"  # ships the predictor under models/
DEBIAN_PREDICTOR = Path("/usr/share/dlib") / PREDICTOR_FILENAME
INSTALL_HINT = "pip install 'rbedit[faces]'"

# HOG detection cost grows with pixels (~25 ms at 512², ~95 ms at 1024² on one core), so
# bigger photos are searched at this longest side; landmarks still use full resolution.
# At upsample 0 dlib finds faces ≥ ~80 px of the searched image (≥ 160 px of a 1024² photo);
# the 2× retry below finds faces down to ~40 px there (80 px of a 1024² photo).
DETECT_MAX_SIDE = 512
DETECT_UPSAMPLE = 0
# When nothing is found, the searched image is scanned again at 2× for smaller faces
# (only then: upsampling also raises false positives).
RETRY_UPSAMPLE = 1
# dlib's own default is 0. Its false positives on the astronaut photo's flag score
# 0.01–0.12 (at 2× scale), while clear frontal faces score well above 0.5.
DETECT_THRESHOLD = 0.2


def find_predictor() -> Path:
    """Path of the 68-point predictor, or LandmarkBackendError saying how to get one."""
    configured = os.environ.get(PREDICTOR_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise LandmarkBackendError(f"{PREDICTOR_ENV}={configured} is not a file")
        return path
    spec = importlib.util.find_spec(MODELS_PACKAGE)  # never import it: it needs pkg_resources
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            path = Path(root) / "models" / PREDICTOR_FILENAME
            if path.is_file():
                return path
    if DEBIAN_PREDICTOR.is_file():
        return DEBIAN_PREDICTOR
    raise LandmarkBackendError(
        f"dlib's {PREDICTOR_FILENAME} was not found: {INSTALL_HINT}, "
        f"install Debian's libdlib-data, or set {PREDICTOR_ENV} to the file"
    )


def read_predictor_mean_shape(path: Path) -> np.ndarray:
    """The predictor's initial (mean) shape, (68, 2) in units of the detector box.

    dlib serialises a shape_predictor as: version (int), initial_shape (a column
    matrix of x0 y0 x1 y1 ...), then the regression forests. Integers are one
    byte of size (high bit = negative) followed by little-endian bytes; floats
    are an integer mantissa and exponent. Only the first few KB are read.
    """
    data = Path(path).read_bytes()[: 64 * 1024]
    pos = 0

    def read_int() -> int:
        nonlocal pos
        head = data[pos]
        size = head & 0x0F
        value = int.from_bytes(data[pos + 1 : pos + 1 + size], "little")
        pos += 1 + size
        return -value if head & 0x80 else value

    version = read_int()
    rows, cols = abs(read_int()), abs(read_int())  # newer dlib writes negative sizes
    if version != 1 or rows * cols != 2 * NUM_LANDMARKS:
        raise ValueError(f"{path}: not a 68-point dlib shape predictor (version {version}, {rows}×{cols})")
    values = [read_int() * 2.0 ** read_int() for _ in range(rows * cols)]
    return np.asarray(values, dtype=np.float64).reshape(NUM_LANDMARKS, 2)


class DlibBackend:
    """Frontal faces with dlib; ~20–40 ms to detect in a 0.25 MP photo, ~2 ms per face for landmarks."""

    name = "dlib"

    def __init__(self, *, predictor_path: Path | None = None) -> None:
        try:
            import dlib
        except ImportError as exc:
            raise LandmarkBackendError(f"the dlib landmark backend needs dlib ({exc}): {INSTALL_HINT}") from None
        self.predictor_path = predictor_path or find_predictor()
        self._dlib = dlib
        self._detector = dlib.get_frontal_face_detector()
        self._predictor = dlib.shape_predictor(str(self.predictor_path))

    def _find_boxes(self, grey: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Face boxes in `grey` pixels, searching a downscaled copy of big images."""
        height, width = grey.shape
        factor = max(1.0, max(height, width) / DETECT_MAX_SIDE)
        small = grey
        if factor > 1.0:
            size = (round(width / factor), round(height / factor))
            small = np.asarray(Image.fromarray(grey).resize(size, Image.BILINEAR, reducing_gap=2.0))
        rects, _, _ = self._detector.run(small, DETECT_UPSAMPLE, DETECT_THRESHOLD)
        if not rects:
            rects, _, _ = self._detector.run(small, RETRY_UPSAMPLE, DETECT_THRESHOLD)
        return [(r.left() * factor, r.top() * factor, r.right() * factor, r.bottom() * factor) for r in rects]

    def detect(self, image: np.ndarray, *, source: Path | None = None) -> list[DetectedFace]:
        """Faces in an (H, W, 3) uint8 RGB image, in the detector's order."""
        grey = np.asarray(Image.fromarray(np.ascontiguousarray(image)).convert("L"))  # HOG is grey anyway; 2× faster
        faces = []
        for box in self._find_boxes(grey):
            rect = self._dlib.rectangle(*(int(round(v)) for v in box))
            shape = self._predictor(grey, rect)
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)  # (68, 2)
            faces.append(DetectedFace(landmarks=points, box=box))
        return faces

"""FAN backend: the `face-alignment` package (S3FD detector + 2D-FAN), imported lazily.

More robust than dlib on hard poses, but ~20 s per photo on a 2-core CPU (meant
for a GPU), and its weights download on first use into the torch hub cache:
where that cache is empty and the download host cannot be reached, this
backend fails at once with a message saying so instead of hanging.
"""

from __future__ import annotations

import socket
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

from rbedit.landmarks.interface import DetectedFace, LandmarkBackendError, face_from_landmarks

INSTALL_HINT = "pip install 'rbedit[fan]'"
LANDMARK_NETWORK = "2DFAN-4"  # 68 2-D points, the large network
DETECTOR = "sfd"
DETECTOR_WEIGHTS = "s3fd"
NETWORK_PROBE_TIMEOUT_S = 3.0  # how long to wait for the download host before giving up
DOWNLOAD_STALL_TIMEOUT_S = 30.0  # a download that receives nothing for this long fails


def _landmark_weights_url(api) -> str:
    """URL of the 2D-FAN weights in whichever table this face-alignment version keeps."""
    import torch

    table = getattr(api, "models_urls", {})
    if LANDMARK_NETWORK in table:  # face-alignment ≥ 1.5: one flat table
        return table[LANDMARK_NETWORK]
    torch_version = ".".join(torch.__version__.split(".")[:2])  # 1.3–1.4: per-torch-version tables
    return table.get(torch_version, getattr(api, "default_model_urls", {})).get(LANDMARK_NETWORK, "")


def required_weights(face_alignment) -> dict[str, str]:
    """{file name in the hub cache: URL} for the detector and landmark network."""
    import importlib

    detector = importlib.import_module(f"face_alignment.detection.{DETECTOR}.{DETECTOR}_detector")
    urls = [detector.models_urls[DETECTOR_WEIGHTS], _landmark_weights_url(face_alignment.api)]
    return {Path(urlparse(url).path).name: url for url in urls if url}


def hub_checkpoint_dir() -> Path:
    """Where torch.hub (and face-alignment) cache downloaded weights."""
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def host_reachable(url: str, timeout: float = NETWORK_PROBE_TIMEOUT_S) -> bool:
    """Whether a HEAD request for `url` succeeds within `timeout` seconds."""
    result: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
                result.append(response.status < 400)
        except (OSError, ValueError):  # URLError, HTTPError, timeouts are OSErrors
            result.append(False)

    # A thread, because name resolution ignores the timeout and can stall for minutes.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def check_weights_available(weights: dict[str, str], cache: Path) -> None:
    """Raise LandmarkBackendError when weights are missing from `cache` and cannot be downloaded."""
    missing = {name: url for name, url in weights.items() if not (cache / name).is_file()}
    if not missing:
        return
    first_url = next(iter(missing.values()))
    if host_reachable(first_url):
        return  # face-alignment downloads them on construction
    host = urlparse(first_url).hostname
    raise LandmarkBackendError(
        f"the fan backend's weights ({', '.join(missing)}) are not in the torch hub cache {cache} and "
        f"cannot be downloaded: {host} is not reachable (no network?). Copy them there from a machine "
        "with network access, or use --landmarks dlib"
    )


class FanBackend:
    """68 points from face-alignment's 2D-FAN; CUDA when available."""

    name = "fan"

    def __init__(self, *, device: str | None = None) -> None:
        try:
            import face_alignment
        except ImportError as exc:
            raise LandmarkBackendError(f"the fan landmark backend needs face-alignment ({exc}): {INSTALL_HINT}") from None
        import torch

        weights = required_weights(face_alignment)
        check_weights_available(weights, hub_checkpoint_dir())
        landmarks_type = getattr(face_alignment.LandmarksType, "TWO_D", None) or face_alignment.LandmarksType._2D
        previous_timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_STALL_TIMEOUT_S)  # torch.hub downloads without a timeout
        try:
            self._model = face_alignment.FaceAlignment(
                landmarks_type,
                device=device or ("cuda" if torch.cuda.is_available() else "cpu"),
                flip_input=False,
                face_detector=DETECTOR,
            )
        except OSError as exc:  # the download failed after all
            raise LandmarkBackendError(
                f"the fan backend could not download its weights ({', '.join(weights)}) into "
                f"{hub_checkpoint_dir()}: {exc}; copy them there, or use --landmarks dlib"
            ) from None
        finally:
            socket.setdefaulttimeout(previous_timeout)

    def detect(self, image: np.ndarray, *, source: Path | None = None) -> list[DetectedFace]:
        """Faces in an (H, W, 3) uint8 RGB image."""
        landmarks, _, boxes = self._model.get_landmarks_from_image(np.ascontiguousarray(image), return_bboxes=True)
        if landmarks is None:
            return []
        return [
            face_from_landmarks(points[:, :2], tuple(float(v) for v in box[:4]))
            for points, box in zip(landmarks, boxes)
        ]

"""Facial landmarks behind one small interface: 68 iBUG points and a box per face.

    backend = get_backend("dlib")            # "dlib" (default) | "fan" | "file"
    faces = backend.detect(rgb, source=path) # list[DetectedFace]

Backends load their models once, on first use, and are cached per name.
"""

from __future__ import annotations

import functools
import importlib

from rbedit.landmarks.interface import (
    NUM_LANDMARKS,
    DetectedFace,
    LandmarkBackend,
    LandmarkBackendError,
    LandmarkFileError,
)

DEFAULT_BACKEND = "dlib"
# name → (module, class); modules are imported only when their backend is asked for.
BACKENDS = {
    "dlib": ("rbedit.landmarks.dlib_backend", "DlibBackend"),
    "fan": ("rbedit.landmarks.fan_backend", "FanBackend"),
    "file": ("rbedit.landmarks.file_backend", "FileBackend"),
}


@functools.lru_cache(maxsize=None)
def get_backend(name: str = DEFAULT_BACKEND) -> LandmarkBackend:
    """The landmark backend called `name`, built once; LandmarkBackendError if it cannot run here."""
    if name not in BACKENDS:
        raise ValueError(f"unknown landmark backend {name!r}; choose one of {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name]
    return getattr(importlib.import_module(module_name), class_name)()


__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "NUM_LANDMARKS",
    "DetectedFace",
    "LandmarkBackend",
    "LandmarkBackendError",
    "LandmarkFileError",
    "get_backend",
]

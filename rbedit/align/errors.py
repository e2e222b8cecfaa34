"""Per-image outcomes of face preparation that are not bugs: each message is one line."""

from __future__ import annotations


class NoFaceError(ValueError):
    """No face was found (or the requested face index does not exist)."""


class FaceTooSmallError(ValueError):
    """Faces were found, but each is too small to edit at the model's resolution."""

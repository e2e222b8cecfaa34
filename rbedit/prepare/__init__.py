"""Turn a picture into model inputs and edited outputs back into pictures.

The model's config decides how: digits are inverted/centred/resized
(`rbedit.prepare.digits`), faces are aligned by landmarks and pasted back
(`rbedit.prepare.faces`, which calls `rbedit.align.pipeline`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from rbedit.imageio import Picture, resize
from rbedit.model.config import ModelConfig
from rbedit.prepare.digits import prepare_digit

LANDMARK_BACKENDS = ("dlib", "fan", "file")
FACE_CHOICE = re.compile(r"^(largest|all|\d+)$")


class PrepareError(ValueError):
    """A picture cannot be turned into a model input (no face found, ...)."""


@dataclass
class Prepared:
    """One model input cut from one picture, with what is needed to put the edit back."""

    input: np.ndarray  # (S, S, 3) uint8: exactly what the model sees
    alpha: np.ndarray | None  # (S, S) the picture's alpha in the same geometry, if it had one
    picture: Picture
    face: Any = None  # faces: the FaceCrop (crop, matrix image→crop); digits: None
    index: int = 0  # which face of the picture (0 for digits)


def prepare(
    picture: Picture,
    config: ModelConfig,
    *,
    landmarks: str = "dlib",
    face: str = "largest",
) -> list[Prepared]:
    """Model inputs for one picture: one for a digit, one per selected face for faces."""
    if config.domain == "digits":
        rgb, alpha = prepare_digit(picture.rgb, size=config.image_size, alpha=picture.alpha)
        return [Prepared(rgb, alpha, picture)]
    if config.domain == "faces":
        return prepare_face_crops(picture, config.image_size, config.template, landmarks=landmarks, face=face)
    raise PrepareError(f"no input preparation for domain {config.domain!r}")


def prepare_face_crops(
    picture: Picture,
    size: int,
    template=None,
    *,
    landmarks: str = "dlib",
    face: str = "largest",
) -> list[Prepared]:
    """One size×size crop per selected face, aligned to `template` (None: the built-in standard template)."""
    from rbedit.prepare.faces import detect_faces, warp_alpha

    name = str(picture.path) if picture.path is not None else "image"
    try:
        crops = detect_faces(
            picture.rgb, size=size, template=template, landmarks=landmarks, face=face, source=picture.path
        )
    except (ValueError, RuntimeError) as err:
        message = " ".join(str(err).split())
        raise PrepareError(message if name in message else f"{name}: {message}") from None
    if not crops:
        raise PrepareError(f"{name}: no face found")
    items = []
    for i, crop in enumerate(crops):
        alpha = None if picture.alpha is None else warp_alpha(picture.alpha, crop.matrix, size)
        items.append(Prepared(np.array(crop.crop, dtype=np.uint8), alpha, picture, crop, i))
    return items


def pastes_back(picture: Picture, config: ModelConfig, crop: bool | None) -> bool:
    """Faces paste the edit back into the photo unless --crop, or the photo is no larger than a crop."""
    if config.domain != "faces":
        return False
    if crop is not None:
        return not crop
    h, w = picture.rgb.shape[:2]
    return h > config.image_size or w > config.image_size


def finish(
    items: list[Prepared],
    edited: list[np.ndarray],
    config: ModelConfig,
    *,
    crop: bool | None = None,
    size: int | None = None,
) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Edited model outputs (S, S, 3) of one picture's inputs → output images (rgb, alpha).

    Digits and face crops give one image per input (upscaled to size×size if
    `size`); pasted faces give one photo with every edited face blended in.
    """
    if not items:
        return []
    picture = items[0].picture
    if pastes_back(picture, config, crop):
        from rbedit.prepare.faces import paste

        rgb = picture.rgb
        for item, out in zip(items, edited):
            rgb = paste(rgb, out, item.face)
        return [(np.asarray(rgb, dtype=np.uint8), picture.alpha)]
    results = []
    for item, out in zip(items, edited):
        alpha = item.alpha
        if size is not None:
            out, alpha = resize(out, size, alpha=alpha)
        results.append((out, alpha))
    return results


__all__ = ["LANDMARK_BACKENDS", "PrepareError", "Prepared", "finish", "prepare", "pastes_back"]

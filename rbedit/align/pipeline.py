"""Photo → aligned face crops, and edited crops → photo.

    crops = prepare_faces(rgb, config=cfg, landmarks="dlib", face="largest", source=path)
    edited = ...                                  # model output per crop.crop
    out = paste_back(rgb, edited, crops[0])       # one face at a time

Faces are numbered from 0, left to right (by their box). A face whose crop
would need more than MAX_UPSCALE× upsampling, or narrower than
MIN_FACE_WIDTH_PX, is too small: with face="all" it is skipped with a logged
warning; when nothing is left, FaceTooSmallError.
"""

from __future__ import annotations

import logging
import pathlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from rbedit.align.errors import FaceTooSmallError, NoFaceError
from rbedit.align.geometry import apply_transform, compose, fit_transform, invert_transform, transform_scale, warp_image
from rbedit.align.mask import face_mask
from rbedit.align.template import BUILTIN_TEMPLATE_SIZE, FIT_WEIGHTS, builtin_template, scale_template
from rbedit.landmarks import NUM_LANDMARKS, DetectedFace, get_backend
from rbedit.landmarks import ibug

if TYPE_CHECKING:  # rbedit.model pulls in torch; alignment does not need it
    from rbedit.model.config import ModelConfig

log = logging.getLogger(__name__)

MAX_UPSCALE = 2.0  # a face must cover at least half the crop's resolution
MIN_FACE_WIDTH_PX = 24  # below this, landmarks are guesses whatever the crop size
DEFAULT_TRANSFORM = "similarity"  # the paper fits an affine; a similarity never shears a face
FACE_CHOICES = ("largest", "all")  # or a face index as a string


@dataclass
class FaceCrop:
    """One aligned face and how to put it back."""

    crop: np.ndarray  # (S, S, 3) uint8: the aligned face at model size
    matrix: np.ndarray  # (2, 3) float64: image pixel → crop pixel
    landmarks: np.ndarray  # (68, 2) float64: in image pixels
    box: tuple  # (left, top, right, bottom) in image pixels, from the detector


def template_for(config: ModelConfig) -> np.ndarray:
    """(68, 2) template in config.image_size crop pixels: the config's own, else the built-in one."""
    return crop_template(config.template, config.image_size)


def crop_template(template, size: int) -> np.ndarray:
    """(68, 2) template in size×size crop pixels: `template` (68 (x, y) pairs, checked), or the built-in one if None."""
    if template is None:
        return scale_template(builtin_template(BUILTIN_TEMPLATE_SIZE), BUILTIN_TEMPLATE_SIZE, size)
    template = np.asarray(template, dtype=np.float64)
    if template.shape != (NUM_LANDMARKS, 2):
        raise ValueError(f"model config template must be {NUM_LANDMARKS} (x, y) pairs, got shape {template.shape}")
    return template


def _as_rgb(image: np.ndarray) -> np.ndarray:
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {arr.dtype}")
    if arr.ndim == 2:
        return np.repeat(arr[..., None], 3, axis=-1)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return arr[..., :3]
    raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")


def _select(faces: list[DetectedFace], face: str, where: str) -> list[tuple[int, DetectedFace]]:
    """(index, face) pairs chosen by `face`: "largest", "all" or an index, left to right from 0."""
    numbered = list(enumerate(sorted(faces, key=lambda f: (f.box[0], f.box[1]))))
    if face == "all":
        return numbered
    if face == "largest":
        return [max(numbered, key=lambda item: item[1].area)]
    try:
        index = int(face)
    except ValueError:
        raise ValueError(f"face must be 'largest', 'all' or a face index, got {face!r}") from None
    if not 0 <= index < len(numbered):
        raise NoFaceError(f"{where}face {index} requested but {len(numbered)} found (numbered from 0, left to right)")
    return [numbered[index]]


def prepare_faces(
    image: np.ndarray,
    *,
    config: ModelConfig,
    landmarks: str = "dlib",
    face: str = "largest",
    source: pathlib.Path | None = None,
    transform: str = DEFAULT_TRANSFORM,
) -> list[FaceCrop]:
    """Aligned crops of the selected faces in an (H, W, 3) uint8 RGB photo, for a faces model.

    landmarks: backend name ("dlib" | "fan" | "file"; "file" reads the JSON/NPY
    beside `source`). face: "largest" | "all" | an index ("0" = leftmost).
    The crop is config.image_size square, aligned to config.template (or the
    built-in template). Raises NoFaceError / FaceTooSmallError (one-line
    messages naming `source`), LandmarkFileError for a bad landmarks file,
    LandmarkBackendError when the backend cannot run here.
    """
    return align_faces(
        image, template=template_for(config), size=config.image_size,
        landmarks=landmarks, face=face, source=source, transform=transform,
    )  # fmt: skip


def align_faces(
    image: np.ndarray,
    *,
    template: np.ndarray,
    size: int,
    landmarks: str = "dlib",
    face: str = "largest",
    source: pathlib.Path | None = None,
    transform: str = DEFAULT_TRANSFORM,
) -> list[FaceCrop]:
    """prepare_faces with an explicit (68, 2) template in size×size crop pixels (training data)."""
    rgb = _as_rgb(image)
    where = f"{source}: " if source is not None else ""
    template = np.asarray(template, dtype=np.float64)
    faces = get_backend(landmarks).detect(rgb, source=source)
    if not faces:
        raise NoFaceError(f"{where}no face found (landmarks: {landmarks})")
    template_width = float(np.ptp(template[ibug.JAW, 0]))
    needed_px = max(MIN_FACE_WIDTH_PX, template_width / MAX_UPSCALE)
    crops, too_small = [], []
    for index, found in _select(faces, face, where):
        matrix = fit_transform(found.landmarks, template, kind=transform, weights=FIT_WEIGHTS)
        width_px = template_width / transform_scale(matrix)
        if width_px < needed_px:
            too_small.append(f"face {index} is {width_px:.0f} px wide")
            continue
        crop = warp_image(rgb, matrix, (size, size))
        crops.append(FaceCrop(crop=crop, matrix=matrix, landmarks=found.landmarks, box=tuple(found.box)))
    if not crops:
        raise FaceTooSmallError(
            f"{where}{'; '.join(too_small)}: too small for a {size}×{size} crop (at least {needed_px:.0f} px needed)"
        )
    for reason in too_small:
        log.warning("%sskipped %s (at least %.0f px needed)", where, reason, needed_px)
    return crops


def _paste_region(face: FaceCrop, image_shape: tuple[int, ...]):
    """The crop's mask, the photo window (x0, y0, x1, y1) its support covers, and crop → window."""
    size = face.crop.shape[0]
    mask = face_mask(apply_transform(face.matrix, face.landmarks), size)  # (S, S) in crop pixels
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return mask, (0, 0, 0, 0), None
    # Corners of the support's pixels (±1 for the bilinear reach), in photo pixels.
    box = np.array([[xs.min() - 1, ys.min() - 1], [xs.max() + 1, ys.min() - 1], [xs.min() - 1, ys.max() + 1], [xs.max() + 1, ys.max() + 1]], dtype=np.float64)
    corners = apply_transform(invert_transform(face.matrix), box)
    height, width = image_shape[:2]
    x0, y0 = np.maximum(np.floor(corners.min(0)).astype(int), 0)
    x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, (width, height))
    crop_to_window = compose(np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]]), invert_transform(face.matrix))
    return mask, (int(x0), int(y0), int(x1), int(y1)), crop_to_window


def paste_mask(face: FaceCrop, image_shape: tuple[int, ...]) -> np.ndarray:
    """(H, W) float32 in [0, 1]: how much of the edited crop paste_back puts at each photo pixel."""
    mask, (x0, y0, x1, y1), crop_to_window = _paste_region(face, image_shape)
    out = np.zeros(image_shape[:2], dtype=np.float32)
    if x1 > x0 and y1 > y0:
        out[y0:y1, x0:x1] = warp_image(mask, crop_to_window, (y1 - y0, x1 - x0), border="constant", resample="bilinear")
    return out


def paste_back(image: np.ndarray, edited_crop: np.ndarray, face: FaceCrop, *, keep_detail: bool = True) -> np.ndarray:
    """The photo with `edited_crop` warped back over `face`, blended through a feathered mask.

    keep_detail (default): add the *change* the edit made to the crop, so the
    photo keeps the fine detail a small crop cannot hold and an unedited crop
    changes nothing. Otherwise the upsampled crop replaces the face. Pixels
    where the mask is 0 (everything outside the face and its feather, see
    paste_mask) are returned unchanged, bit for bit.
    """
    rgb = np.asarray(image)
    edited = np.asarray(edited_crop)
    if edited.shape != face.crop.shape or edited.dtype != np.uint8:
        raise ValueError(f"edited crop must be uint8 {face.crop.shape}, got {edited.dtype} {edited.shape}")
    out = rgb.copy()
    mask, (x0, y0, x1, y1), crop_to_window = _paste_region(face, rgb.shape)
    if x1 <= x0 or y1 <= y0:
        return out
    shape = (y1 - y0, x1 - x0)
    weight = warp_image(mask, crop_to_window, shape, border="constant", resample="bilinear")  # (h, w)
    inside = weight > 0  # only these pixels are touched
    window = out[y0:y1, x0:x1, :3]  # a view: writing it writes `out`
    if keep_detail:  # warp the change itself: one float warp, and zero change stays exactly zero
        change = warp_image(edited.astype(np.float32) - face.crop.astype(np.float32), crop_to_window, shape)[inside]
    else:
        change = warp_image(edited.astype(np.float32), crop_to_window, shape)[inside] - window[inside]
    blended = window[inside] + weight[inside, None] * change
    window[inside] = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return out

"""2-D geometry for face alignment: least-squares transforms, Procrustes means, warps.

Conventions: points are (x, y) with pixel centres on integers (x right, y down).
A transform is a (2, 3) float64 matrix M acting as p' = M[:, :2] @ p + M[:, 2].
"""

from __future__ import annotations

import numpy as np
from PIL import Image

TRANSFORM_KINDS = ("similarity", "affine")
GPA_MAX_ITERATIONS = 100
GPA_TOLERANCE = 1e-10  # mean squared change of the normalised mean shape
# Downscaling by more than this factor is box-filtered first (bilinear alone aliases).
ANTIALIAS_FROM = 2
WARP_PAD = 3  # extra source pixels around the sampled region (bicubic needs 2)


# ---- transforms -------------------------------------------------------------------------


def _weights(weights, count: int) -> np.ndarray:
    w = np.ones(count) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (count,) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"weights must be {count} non-negative numbers, not all zero")
    return w / w.sum()


def fit_similarity_batch(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
    """Weighted least-squares similarity (Umeyama 1991) taking each src (N, K, 2) onto dst (K, 2) or (N, K, 2).

    Returns (N, 2, 3). Rotation, uniform scale and translation; never a reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.broadcast_to(np.asarray(dst, dtype=np.float64), src.shape)
    w = _weights(weights, src.shape[1])[None, :, None]  # (1, K, 1)
    mu_s, mu_d = (src * w).sum(1), (dst * w).sum(1)  # (N, 2)
    xs, xd = src - mu_s[:, None], dst - mu_d[:, None]
    cov = np.einsum("nki,nkj->nij", xd * w, xs)  # (N, 2, 2): dst × src
    u, d, vt = np.linalg.svd(cov)
    sign = np.sign(np.linalg.det(u) * np.linalg.det(vt))
    sign[sign == 0] = 1.0
    s = np.stack([np.ones_like(sign), sign], axis=-1)  # (N, 2): diag of the reflection fix
    rot = u @ (s[..., None] * vt)
    var_s = (xs**2 * w).sum((1, 2))
    scale = (d * s).sum(-1) / np.maximum(var_s, 1e-300)
    linear = scale[:, None, None] * rot
    shift = mu_d - np.einsum("nij,nj->ni", linear, mu_s)
    return np.concatenate([linear, shift[..., None]], axis=-1)


def fit_similarity(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
    """(2, 3) similarity taking points src (K, 2) onto dst (K, 2) in the weighted least-squares sense."""
    return fit_similarity_batch(np.asarray(src)[None], dst, weights)[0]


def fit_affine(src: np.ndarray, dst: np.ndarray, weights=None) -> np.ndarray:
    """(2, 3) affine map taking src (K, 2) onto dst (K, 2) in the weighted least-squares sense."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    root_w = np.sqrt(_weights(weights, len(src)))[:, None]
    design = np.hstack([src, np.ones((len(src), 1))]) * root_w  # (K, 3)
    solution, *_ = np.linalg.lstsq(design, dst * root_w, rcond=None)  # (3, 2)
    return solution.T


def fit_transform(src: np.ndarray, dst: np.ndarray, *, kind: str = "similarity", weights=None) -> np.ndarray:
    """(2, 3) least-squares `kind` ("similarity" | "affine") transform taking src onto dst."""
    if kind == "similarity":
        return fit_similarity(src, dst, weights)
    if kind == "affine":
        return fit_affine(src, dst, weights)
    raise ValueError(f"transform kind must be one of {TRANSFORM_KINDS}, got {kind!r}")


def similarity_matrix(*, scale: float = 1.0, angle_degrees: float = 0.0, shift=(0.0, 0.0)) -> np.ndarray:
    """(2, 3) matrix: rotate by `angle_degrees` (counter-clockwise on screen is negative y), scale, shift."""
    a = np.radians(angle_degrees)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    return np.array([[c, -s, shift[0]], [s, c, shift[1]]], dtype=np.float64)


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Points (..., 2) mapped by the (2, 3) matrix."""
    m = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ m[:, :2].T + m[:, 2]


def invert_transform(matrix: np.ndarray) -> np.ndarray:
    """The (2, 3) inverse of an invertible (2, 3) transform."""
    m = np.asarray(matrix, dtype=np.float64)
    linear = np.linalg.inv(m[:, :2])
    return np.hstack([linear, -(linear @ m[:, 2])[:, None]])


def compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """(2, 3) transform applying `inner` first, then `outer`."""
    o, i = np.asarray(outer, dtype=np.float64), np.asarray(inner, dtype=np.float64)
    return np.hstack([o[:, :2] @ i[:, :2], (o[:, :2] @ i[:, 2] + o[:, 2])[:, None]])


def transform_scale(matrix: np.ndarray) -> float:
    """Linear magnification of a transform: sqrt |det|, output pixels per input pixel."""
    return float(np.sqrt(abs(np.linalg.det(np.asarray(matrix, dtype=np.float64)[:, :2]))))


# ---- shapes -----------------------------------------------------------------------------


def normalise_shape(shape: np.ndarray, weights=None) -> np.ndarray:
    """Shape (K, 2) translated to weighted centroid 0 and scaled to weighted RMS radius 1."""
    pts = np.asarray(shape, dtype=np.float64)
    w = _weights(weights, len(pts))[:, None]
    centred = pts - (pts * w).sum(0)
    return centred / np.sqrt((centred**2 * w).sum())


def procrustes_mean_shape(shapes: np.ndarray, *, initial: np.ndarray | None = None, weights=None) -> np.ndarray:
    """Generalised Procrustes mean of shapes (N, K, 2), normalised (centroid 0, RMS radius 1).

    Starts from `initial` (default: the first shape) and keeps its orientation:
    each round aligns every shape to the current mean by a similarity, averages,
    and re-aligns the average to `initial` so the mean cannot drift or rotate.
    """
    shapes = np.asarray(shapes, dtype=np.float64)
    anchor = normalise_shape(shapes[0] if initial is None else initial, weights)
    mean = anchor
    for _ in range(GPA_MAX_ITERATIONS):
        aligned = np.einsum("nij,nkj->nki", (m := fit_similarity_batch(shapes, mean, weights))[..., :2], shapes)
        aligned += m[:, None, :, 2]
        new = normalise_shape(aligned.mean(0), weights)
        new = normalise_shape(apply_transform(fit_similarity(new, anchor, weights), new), weights)
        change = float(((new - mean) ** 2).mean())
        mean = new
        if change < GPA_TOLERANCE:
            break
    return mean


# ---- warps ------------------------------------------------------------------------------


def _pil_affine_data(out_to_in: np.ndarray) -> tuple[float, ...]:
    """PIL's AFFINE data for a pixel-centre (2, 3) output→input map.

    PIL samples output pixel x at continuous x + 0.5 and reads input pixels with
    centres at i + 0.5, so the half-pixel offsets are folded into the shift.
    """
    linear, shift = out_to_in[:, :2], out_to_in[:, 2]
    shift = shift + 0.5 - linear @ np.array([0.5, 0.5])
    return (linear[0, 0], linear[0, 1], shift[0], linear[1, 0], linear[1, 1], shift[1])


def _region(image: np.ndarray, x0: int, y0: int, x1: int, y1: int, border: str) -> np.ndarray:
    """image[y0:y1, x0:x1] where the window may leave the image: edge-replicated or zero."""
    height, width = image.shape[:2]
    cx0, cy0 = min(max(x0, 0), width), min(max(y0, 0), height)
    cx1, cy1 = min(max(x1, 0), width), min(max(y1, 0), height)
    inner = image[cy0:cy1, cx0:cx1]
    pads = [(cy0 - y0, y1 - cy1), (cx0 - x0, x1 - cx1)] + [(0, 0)] * (image.ndim - 2)
    if not any(a or b for a, b in pads):
        return inner
    if inner.size == 0 or border == "constant":
        out = np.zeros((y1 - y0, x1 - x0) + image.shape[2:], dtype=image.dtype)
        out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = inner
        return out
    return np.pad(inner, pads, mode="edge")


def _box_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """Float32 averages of factor×factor blocks (the array's sides are multiples of factor)."""
    h, w = image.shape[:2]
    blocks = image.reshape(h // factor, factor, w // factor, factor, *image.shape[2:])
    return blocks.mean(axis=(1, 3), dtype=np.float32)


def _pil_warp(image: np.ndarray, out_to_in: np.ndarray, shape: tuple[int, int], resample) -> np.ndarray:
    """Float32 channels warped one by one: PIL's 8-bit affine warps truncate (a −0.5 grey-level bias)."""
    data = _pil_affine_data(out_to_in)
    size = (shape[1], shape[0])
    planes = image[..., None] if image.ndim == 2 else image
    warped = [
        np.asarray(Image.fromarray(np.ascontiguousarray(planes[..., c], dtype=np.float32), "F").transform(size, Image.AFFINE, data, resample))
        for c in range(planes.shape[-1])
    ]
    return np.stack(warped, axis=-1).reshape(shape + image.shape[2:])


def warp_image(
    image: np.ndarray,
    matrix: np.ndarray,
    shape: tuple[int, int],
    *,
    border: str = "edge",
    resample: str = "bicubic",
) -> np.ndarray:
    """Resample `image` into an output of `shape` (h, w), `matrix` (2, 3) mapping image → output.

    image: (H, W[, C]) uint8 or float; the output has its dtype (uint8 is
    computed in float and rounded). Only the source region the output needs is
    touched; where it leaves the image, pixels are edge-replicated
    (border="edge") or zero ("constant"). Downscaling by ≥ 2 box-filters first
    so small crops of big faces do not alias.
    """
    image = np.asarray(image)
    out_to_in = invert_transform(matrix)
    h, w = shape
    corners = apply_transform(out_to_in, np.array([[-0.5, -0.5], [w - 0.5, -0.5], [-0.5, h - 0.5], [w - 0.5, h - 0.5]]))
    x0, y0 = np.floor(corners.min(0)).astype(int) - WARP_PAD
    x1, y1 = np.ceil(corners.max(0)).astype(int) + WARP_PAD + 1
    factor = int(1.0 / transform_scale(matrix)) if transform_scale(matrix) > 0 else 1
    factor = factor if factor >= ANTIALIAS_FROM else 1
    # Grow the window to whole blocks so the box filter sees full blocks.
    x1 += (-(x1 - x0)) % factor
    y1 += (-(y1 - y0)) % factor
    region = _region(image, int(x0), int(y0), int(x1), int(y1), border)
    # region pixel r (reduced by `factor`) sits at image pixel factor*r + (factor-1)/2 + origin.
    region_to_image = np.array([[factor, 0.0, x0 + (factor - 1) / 2], [0.0, factor, y0 + (factor - 1) / 2]])
    if factor > 1:
        region = _box_reduce(region, factor)
    out_to_region = compose(invert_transform(region_to_image), out_to_in)
    filters = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}
    out = _pil_warp(region, out_to_region, shape, filters[resample])
    if image.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(image.dtype, copy=False)

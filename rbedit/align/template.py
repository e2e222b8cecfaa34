"""The alignment template: a 68-point mean face shape placed in the model's crop.

The built-in template is the standard iBUG 300-W mean shape that dlib's 68-point
predictor starts every fit from (read once from
`shape_predictor_68_face_landmarks.dat` with
`rbedit.landmarks.dlib_backend.read_predictor_mean_shape`; tests check the
copy below still matches). A training run starts its generalised Procrustes
mean from the same shape, so its template keeps this orientation, and places
the result in the crop by the same rule (`place_shape`).
"""

from __future__ import annotations

import numpy as np

from rbedit.align.geometry import procrustes_mean_shape
from rbedit.landmarks import ibug

BUILTIN_TEMPLATE_SIZE = 96  # the paper's crop size; other sizes are scaled from it

# dlib's mean shape in units of its detector box (x right, y down), iBUG order.
STANDARD_MEAN_SHAPE = np.array([
    (0.02945, 0.32195), (0.03263, 0.44643), (0.04594, 0.57043), (0.07179, 0.69202),
    (0.12027, 0.80495), (0.19473, 0.90289), (0.28582, 0.98460), (0.38631, 1.05021),
    (0.50000, 1.06971), (0.61370, 1.05021), (0.71419, 0.98460), (0.80528, 0.90289),
    (0.87974, 0.80495), (0.92823, 0.69202), (0.95408, 0.57043), (0.96740, 0.44643),
    (0.97058, 0.32195), (0.11918, 0.23091), (0.17751, 0.17839), (0.25983, 0.16274),
    (0.34509, 0.17488), (0.42490, 0.20806), (0.57514, 0.20806), (0.65496, 0.17488),
    (0.74021, 0.16273), (0.82254, 0.17838), (0.88087, 0.23091), (0.50002, 0.30555),
    (0.50002, 0.38574), (0.50002, 0.46522), (0.50001, 0.54703), (0.40451, 0.60234),
    (0.45037, 0.61923), (0.50001, 0.63366), (0.54965, 0.61924), (0.59553, 0.60235),
    (0.21387, 0.31557), (0.26475, 0.28632), (0.32586, 0.28718), (0.37938, 0.32756),
    (0.32208, 0.33778), (0.26125, 0.33697), (0.62067, 0.32756), (0.67418, 0.28717),
    (0.73529, 0.28631), (0.78617, 0.31557), (0.73879, 0.33697), (0.67796, 0.33778),
    (0.31711, 0.75112), (0.38443, 0.72420), (0.45255, 0.71026), (0.50001, 0.72200),
    (0.54748, 0.71026), (0.61560, 0.72421), (0.68292, 0.75112), (0.61777, 0.81689),
    (0.55159, 0.84600), (0.50001, 0.85150), (0.44844, 0.84600), (0.38226, 0.81689),
    (0.34519, 0.75467), (0.45194, 0.74994), (0.50001, 0.75504), (0.54809, 0.74994),
    (0.65484, 0.75467), (0.54902, 0.78569), (0.50002, 0.79160), (0.45101, 0.78568),
], dtype=np.float64)  # fmt: skip

# Where the face sits in the crop, as fractions of its side: the eye midpoint on the
# vertical centre line, the mouth centre straight below it. With the mean shape this
# puts the brows at ~0.29 and the chin at ~0.92, leaving forehead and some hair.
EYES_AT = 0.40
EYES_TO_MOUTH = 0.30

# How much each landmark steers the fit. Eyes and nose hardly move with expression;
# jaw, brows and mouth do, so they count less: an open mouth or raised brows should
# not move the crop (that motion is what the model is meant to see).
_GROUP_WEIGHTS = (
    (ibug.JAW, 0.05),
    (ibug.RIGHT_BROW, 0.05),
    (ibug.LEFT_BROW, 0.05),
    (ibug.NOSE_BRIDGE, 1.0),
    (ibug.NOSE_LOWER, 1.0),
    (ibug.RIGHT_EYE, 1.0),
    (ibug.LEFT_EYE, 1.0),
    (ibug.OUTER_LIPS, 0.05),
    (ibug.INNER_LIPS, 0.0),  # often hidden or guessed by detectors
)
FIT_WEIGHTS = np.zeros(68)
for _group, _weight in _GROUP_WEIGHTS:
    FIT_WEIGHTS[_group] = _weight


def place_shape(shape: np.ndarray, size: int) -> np.ndarray:
    """A face shape (68, 2) moved by a similarity into a size×size crop (pixel coordinates).

    The eye midpoint goes to (0.5, EYES_AT)·size and the mouth centre to
    (0.5, EYES_AT + EYES_TO_MOUTH)·size; the shape's own proportions are kept.
    """
    shape = np.asarray(shape, dtype=np.float64)
    src = np.stack([ibug.eye_centres(shape).mean(0), ibug.mouth_centre(shape)])  # (2, 2)
    dst = np.array([[0.5, EYES_AT], [0.5, EYES_AT + EYES_TO_MOUTH]]) * size - 0.5
    # Two point pairs fix a similarity exactly: treat points as complex numbers.
    a, b = complex(*src[0]), complex(*src[1])
    c, d = complex(*dst[0]), complex(*dst[1])
    k = (d - c) / (b - a)
    z = (shape[:, 0] + 1j * shape[:, 1] - a) * k + c
    return np.stack([z.real, z.imag], axis=-1)


def builtin_template(size: int = BUILTIN_TEMPLATE_SIZE) -> np.ndarray:
    """The standard template for a size×size crop, (68, 2) pixel coordinates."""
    return place_shape(STANDARD_MEAN_SHAPE, size)


def scale_template(template: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """A template for a from_size crop, rescaled to a to_size crop (pixel centres kept consistent)."""
    return (np.asarray(template, dtype=np.float64) + 0.5) * (to_size / from_size) - 0.5


def template_from_landmarks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """A training set's template: the Procrustes mean of its landmarks (N, 68, 2), placed in a size crop.

    The mean starts from STANDARD_MEAN_SHAPE (so it keeps its orientation) and
    uses the same per-landmark weights as the fit.
    """
    mean = procrustes_mean_shape(landmarks, initial=STANDARD_MEAN_SHAPE, weights=FIT_WEIGHTS)
    return place_shape(mean, size)


def template_to_config(template: np.ndarray) -> tuple[tuple[float, float], ...]:
    """A template as the ModelConfig.template tuple (rounded to 1/1000 px)."""
    return tuple((round(float(x), 3), round(float(y), 3)) for x, y in np.asarray(template))

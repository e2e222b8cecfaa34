"""Procedurally drawn faces with known factors and exact 68 landmarks ("faces-synth").

Real face data sets cannot ship here, so this set stands in for training, tests
and a quantitative expression benchmark. Every face is drawn *from* its
landmarks (jaw outline, eye, brow, nose and lip contours pass through them), so
the landmarks are exact by construction.

Factors, in natural units (ranges in EXPRESSION_RANGES / IDENTITY_RANGES):
  expression  mouth_curve (−1 frown … 1 smile), mouth_open (0 … 1),
              brow_raise (−1 lowered … 1 raised), eye_open (−1 nearly shut … 1 wide);
              neutral = all 0, which is the reference set.
  identity    face_width, face_length, eye_spacing, skin_tone, hair_tone, eye_colour,
              background_hue (all 0 … 1), rotation (degrees), scale, shift_x, shift_y
              (fractions of the image side).

    faces = make_faces(1000, size=80, seed=0)               # photos with landmarks
    crops = aligned_faces(1000, size=32, seed=0)            # model-size aligned crops
    ref, unl, expr, ident = training_sets(n_reference=6000, n_unlabelled=6000, size=32, seed=0)
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from rbedit.align.geometry import apply_transform, compose, fit_similarity_batch, similarity_matrix, warp_image
from rbedit.align.template import EYES_AT, EYES_TO_MOUTH, FIT_WEIGHTS, STANDARD_MEAN_SHAPE, template_from_landmarks
from rbedit.landmarks import ibug

EXPRESSION_FACTORS = ("mouth_curve", "mouth_open", "brow_raise", "eye_open")
EXPRESSION_RANGES = np.array([(-1.0, 1.0), (0.0, 1.0), (-1.0, 1.0), (-1.0, 1.0)])
NEUTRAL_EXPRESSION = np.zeros(len(EXPRESSION_FACTORS))
IDENTITY_FACTORS = (
    "face_width", "face_length", "eye_spacing", "skin_tone", "hair_tone", "eye_colour",
    "background_hue", "rotation", "scale", "shift_x", "shift_y",
)  # fmt: skip
# Rotation, scale and shift are undone by alignment: these are the ones an aligned crop still shows
# (eye colour is ~1 px of iris at 32×32, so hard to read back at that size).
ALIGNED_IDENTITY_FACTORS = IDENTITY_FACTORS[:7]
IDENTITY_RANGES = np.array([(0, 1)] * 7 + [(-10.0, 10.0), (0.9, 1.1), (-0.05, 0.05), (-0.05, 0.05)], dtype=np.float64)

# ---- how factors move landmarks (face units: the mean shape's detector box, ~0.94 wide) ----
CURVE_LIFT = 0.05  # mouth corners rise (smile) or drop (frown) by this at |curve| = 1
OPEN_DROP = 0.10  # lower lip drops by this at the centre when fully open
JAW_DROP = 0.05  # and the chin by this
BROW_LIFT = 0.045  # brows move by this at |raise| = 1
EYE_APERTURE = 0.65  # eyelid opening scales by 1 ± this
WIDTH_SCALE = 0.12  # jaw x scaled by 1 ± this
LENGTH_SCALE = 0.10  # lower face y scaled by 1 ± this
EYE_SHIFT = 0.012  # each eye moves outward/inward by up to this (±6 % of the eye distance)
LOWER_FACE_FROM = 0.55  # y above which face_length stretches the jaw

# ---- drawing ----
SUPERSAMPLE_MIN_SIDE = 240  # drawn at ≥ this many pixels (and ≥ 2×), then box-reduced: smooth edges
FACE_WINDOW = 0.8  # the nominal face sits in the central 80 % of the image, placed like the crop template
CANVAS_PER_CROP = 2.0 / FACE_WINDOW  # aligned_faces draws at 2× the crop's resolution, plus margins
FOREHEAD_RISE = 0.42  # top of the face outline above the jaw's end points
HAIRLINE = 0.06  # face-unit y of the hair's edge on the forehead
SKIN = np.array([(242, 208, 182), (196, 146, 110), (98, 62, 42)], dtype=np.float64)
HAIR = np.array([(232, 212, 160), (150, 96, 52), (28, 22, 20)], dtype=np.float64)
IRIS = np.array([(70, 115, 175), (80, 135, 80), (105, 68, 36)], dtype=np.float64)
LIPS_TINT = np.array([1.0, 0.62, 0.62])
MOUTH_INSIDE = (60, 18, 24)
EYE_WHITE = (238, 238, 232)
IRIS_RADIUS = 0.032  # face units
PUPIL_RADIUS = 0.013


@dataclass
class SynthFaces:
    """Images with their factors and exact landmarks."""

    images: np.ndarray  # (N, H, W, 3) uint8
    expression: np.ndarray  # (N, 4) float32, EXPRESSION_FACTORS
    identity: np.ndarray  # (N, 11) float32, IDENTITY_FACTORS
    landmarks: np.ndarray  # (N, 68, 2) float32, image pixels

    def __len__(self) -> int:
        return len(self.images)


def base_shape() -> np.ndarray:
    """The neutral synthetic face: the standard mean shape with the lips closed."""
    shape = STANDARD_MEAN_SHAPE.copy()
    top, bottom = [61, 62, 63], [67, 66, 65]  # inner lips, facing pairs
    shape[top] = shape[bottom] = (shape[top] + shape[bottom]) / 2
    return shape


def sample_factors(n: int, rng: np.random.Generator, *, neutral: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(expression (n, 4), identity (n, 11)) drawn uniformly over their ranges; neutral → expression 0."""
    expression = rng.uniform(EXPRESSION_RANGES[:, 0], EXPRESSION_RANGES[:, 1], size=(n, len(EXPRESSION_FACTORS)))
    if neutral:
        expression[:] = NEUTRAL_EXPRESSION
    identity = rng.uniform(IDENTITY_RANGES[:, 0], IDENTITY_RANGES[:, 1], size=(n, len(IDENTITY_FACTORS)))
    return expression, identity


def _profile(x: np.ndarray, centre: float, half_width: float) -> np.ndarray:
    """1 at the centre, 0 at ±half_width, a parabola in between."""
    return np.clip(1.0 - ((x - centre) / half_width) ** 2, 0.0, 1.0)


def deform(shape: np.ndarray, expression: np.ndarray, identity: np.ndarray) -> np.ndarray:
    """A (68, 2) face-unit shape moved by one face's expression and face-shape factors."""
    curve, opening, raise_, eye_open = expression
    width, length, spacing = identity[:3]
    s = shape.copy()
    mouth = slice(48, 68)
    cx = s[ibug.MOUTH_CORNERS, 0].mean()
    half = (s[54, 0] - s[48, 0]) / 2
    s[mouth, 1] -= curve * CURVE_LIFT * ((s[mouth, 0] - cx) / half) ** 2
    lower_lip = [55, 56, 57, 58, 59, 65, 66, 67]
    s[lower_lip, 1] += opening * OPEN_DROP * _profile(s[lower_lip, 0], cx, half * 1.15)
    s[ibug.JAW, 1] += opening * JAW_DROP * _profile(s[ibug.JAW, 0], cx, 0.45)
    s[17:27, 1] -= raise_ * BROW_LIFT
    for eye, (outer, inner) in ((ibug.RIGHT_EYE, (36, 39)), (ibug.LEFT_EYE, (42, 45))):
        pts = s[eye]
        (x0, y0), (x1, y1) = s[outer], s[inner]
        line = y0 + (pts[:, 0] - x0) / (x1 - x0) * (y1 - y0)  # corner-to-corner line under each point
        s[eye, 1] = line + (pts[:, 1] - line) * (1.0 + eye_open * EYE_APERTURE)
    s[ibug.JAW, 0] = 0.5 + (s[ibug.JAW, 0] - 0.5) * (1.0 + (2 * width - 1) * WIDTH_SCALE)
    low = s[ibug.JAW, 1] > LOWER_FACE_FROM
    s[ibug.JAW, 1] = np.where(low, LOWER_FACE_FROM + (s[ibug.JAW, 1] - LOWER_FACE_FROM) * (1.0 + (2 * length - 1) * LENGTH_SCALE), s[ibug.JAW, 1])
    outward = (2 * spacing - 1) * EYE_SHIFT
    s[ibug.RIGHT_EYE, 0] -= outward
    s[ibug.LEFT_EYE, 0] += outward
    s[ibug.RIGHT_BROW, 0] -= outward / 2
    s[ibug.LEFT_BROW, 0] += outward / 2
    return s


def placement(identity: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) face units → image pixels: the template's placement in the central window, then pose."""
    rotation, scale, shift_x, shift_y = identity[7:11]
    window = size * FACE_WINDOW
    unit = EYES_TO_MOUTH * window / (ibug.mouth_centre(STANDARD_MEAN_SHAPE)[1] - ibug.eye_centres(STANDARD_MEAN_SHAPE).mean(0)[1])
    eyes = ibug.eye_centres(STANDARD_MEAN_SHAPE).mean(0)
    origin = np.array([size / 2, (size - window) / 2 + EYES_AT * window]) - 0.5  # where the eye midpoint goes
    nominal = np.array([[unit, 0.0, origin[0] - unit * eyes[0]], [0.0, unit, origin[1] - unit * eyes[1]]])
    centre = np.array([size / 2 - 0.5, size / 2 - 0.5])
    pose = compose(similarity_matrix(shift=centre + np.array([shift_x, shift_y]) * size), similarity_matrix(scale=scale, angle_degrees=rotation, shift=-centre))
    return compose(pose, nominal)


def _colour(palette: np.ndarray, t: float) -> np.ndarray:
    """Piecewise-linear colour along a palette of 3 stops, t in [0, 1]."""
    pos = t * (len(palette) - 1)
    i = min(int(pos), len(palette) - 2)
    return palette[i] + (pos - i) * (palette[i + 1] - palette[i])


def _ellipse(centre, rx: float, ry: float, start: float, stop: float, count: int = 24) -> np.ndarray:
    """Points along an ellipse arc in face units, angles in radians (y down)."""
    a = np.linspace(start, stop, count)[:, None]
    return np.asarray(centre) + np.hstack([rx * np.cos(a), ry * np.sin(a)])


def _rgb(colour) -> tuple[int, int, int]:
    r, g, b = (int(min(255.0, max(0.0, round(float(v))))) for v in colour)
    return r, g, b


def render(shape: np.ndarray, identity: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw one face: (size, size, 3) uint8 image and its (68, 2) landmarks in image pixels."""
    to_image = placement(identity, size)
    k = max(2, -(-SUPERSAMPLE_MIN_SIDE // size))

    linear, shift = to_image[:, :2].T * k, (to_image[:, 2] + 0.5) * k - 0.5

    def px(points: np.ndarray) -> list[float]:
        # face units → image pixels → supersampled pixels (PIL: vertices on pixel centres), flat x, y list
        return (np.asarray(points) @ linear + shift).ravel().tolist()

    unit = np.sqrt(abs(np.linalg.det(to_image[:, :2]))) * k  # supersampled pixels per face unit
    skin = _colour(SKIN, identity[3])
    hair = _colour(HAIR, identity[4])
    iris = _colour(IRIS, identity[5])
    background = np.array(colorsys.hsv_to_rgb(identity[6], 0.35, 0.78)) * 255
    rgb = _rgb

    image = Image.new("RGB", (size * k, size * k), rgb(background))
    draw = ImageDraw.Draw(image)
    jaw = shape[ibug.JAW]
    mid = (jaw[0] + jaw[-1]) / 2
    half_w = (jaw[-1, 0] - jaw[0, 0]) / 2
    # Hair behind the head, the neck, then the face outline: jaw plus a forehead arc.
    draw.polygon(px(_ellipse(mid + (0, 0.05), half_w * 1.18, 0.62, np.pi * 0.92, np.pi * 2.08)), fill=rgb(hair))
    neck = np.array([jaw[5], jaw[11], (jaw[11, 0], 2.0), (jaw[5, 0], 2.0)])
    draw.polygon(px(neck), fill=rgb(skin * 0.82))
    forehead = _ellipse(mid, half_w, FOREHEAD_RISE + (mid[1] - 0.32), np.pi * 2, np.pi, 20)[1:-1]
    draw.polygon(px(np.concatenate([jaw, forehead])), fill=rgb(skin))
    fringe = forehead[forehead[:, 1] < HAIRLINE]
    if len(fringe) > 2:
        draw.polygon(px(np.concatenate([fringe, [(fringe[-1, 0], HAIRLINE), (fringe[0, 0], HAIRLINE)]])), fill=rgb(hair))

    for eye, upper, lower in ((ibug.RIGHT_EYE, [36, 37, 38, 39], [39, 40, 41, 36]), (ibug.LEFT_EYE, [42, 43, 44, 45], [45, 46, 47, 42])):
        pts = shape[eye]
        centre = pts.mean(0)
        draw.polygon(px(pts), fill=EYE_WHITE)
        for radius, colour in ((IRIS_RADIUS, iris), (PUPIL_RADIUS, (10, 10, 12))):
            draw.polygon(px(_ellipse(centre, radius, radius, 0, 2 * np.pi, 16)), fill=rgb(colour))
        # Eyelids: skin over whatever of the iris lies outside the eye contour.
        lid = IRIS_RADIUS * 1.6
        for contour, sign in ((shape[upper], -1.0), (shape[lower], 1.0)):
            draw.polygon(px(np.concatenate([contour, contour[::-1] + (0, sign * lid)])), fill=rgb(skin))
        draw.line(px(shape[upper]), fill=rgb(skin * 0.35), width=max(1, round(0.012 * unit)), joint="curve")

    brow_width = max(1, round(0.028 * unit))
    for brow in (ibug.RIGHT_BROW, ibug.LEFT_BROW):
        draw.line(px(shape[brow]), fill=rgb(hair * 0.7), width=brow_width, joint="curve")
    line_width = max(1, round(0.012 * unit))
    draw.line(px(shape[ibug.NOSE_BRIDGE]), fill=rgb(skin * 0.78), width=line_width)
    draw.line(px(shape[ibug.NOSE_LOWER]), fill=rgb(skin * 0.55), width=line_width, joint="curve")

    draw.polygon(px(shape[ibug.OUTER_LIPS]), fill=rgb(skin * LIPS_TINT))
    inner = shape[ibug.INNER_LIPS]
    draw.polygon(px(inner), fill=MOUTH_INSIDE)
    draw.line(px(inner[[0, 1, 2, 3, 4]]), fill=MOUTH_INSIDE, width=line_width, joint="curve")  # the lip seam when closed

    small = np.asarray(image.reduce(k))
    return small, apply_transform(to_image, shape)


def make_faces(n: int, *, size: int = 80, seed: int = 0, neutral: bool = False) -> SynthFaces:
    """n faces drawn at size×size; neutral=True gives the reference set (expression 0).

    Different seeds give independent faces; use one seed per split.
    """
    rng = np.random.default_rng(seed)
    expression, identity = sample_factors(n, rng, neutral=neutral)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    landmarks = np.empty((n, 68, 2), dtype=np.float32)
    base = base_shape()
    for i in range(n):
        images[i], landmarks[i] = render(deform(base, expression[i], identity[i]), identity[i], size)
    return SynthFaces(images, expression.astype(np.float32), identity.astype(np.float32), landmarks)


def synth_template(size: int, *, count: int = 2000, seed: int = 12345) -> np.ndarray:
    """The faces-synth template for a size crop: Procrustes mean of the landmarks of `count` faces
    (half neutral, half expressive), placed like the built-in template."""
    rng = np.random.default_rng(seed)
    shapes = []
    base = base_shape()
    for neutral in (True, False):
        expression, identity = sample_factors(count // 2, rng, neutral=neutral)
        shapes += [deform(base, e, i) for e, i in zip(expression, identity)]
    return template_from_landmarks(np.stack(shapes), size)


def align_to_template(faces: SynthFaces, template: np.ndarray, size: int) -> SynthFaces:
    """Crops (N, size, size, 3) aligned with the true landmarks; landmarks moved into crop pixels."""
    matrices = fit_similarity_batch(faces.landmarks.astype(np.float64), template, FIT_WEIGHTS)  # (N, 2, 3)
    crops = np.stack([warp_image(img, m, (size, size)) for img, m in zip(faces.images, matrices)])
    moved = np.einsum("nij,nkj->nki", matrices[..., :2], faces.landmarks) + matrices[:, None, :, 2]
    return SynthFaces(crops, faces.expression, faces.identity, moved.astype(np.float32))


def aligned_faces(n: int, *, size: int, seed: int = 0, neutral: bool = False, template: np.ndarray | None = None) -> SynthFaces:
    """n faces aligned to `template` (default: synth_template(size)) as model-size crops.

    Drawn at CANVAS_PER_CROP × size so alignment downsamples, as with photos.
    """
    template = synth_template(size) if template is None else np.asarray(template, dtype=np.float64)
    faces = make_faces(n, size=int(round(size * CANVAS_PER_CROP)), seed=seed, neutral=neutral)
    return align_to_template(faces, template, size)


def training_sets(
    *, n_reference: int, n_unlabelled: int, size: int, seed: int = 0, template: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(reference crops, unlabelled crops, unlabelled expression (N, 4), unlabelled identity (N, 11)).

    Reference and unlabelled sets use different seeds derived from `seed`, so
    no face appears in both; pick another `seed` for an evaluation split.
    """
    template = synth_template(size) if template is None else template
    seeds = np.random.SeedSequence(seed).spawn(2)
    reference = aligned_faces(n_reference, size=size, seed=seeds[0], neutral=True, template=template)
    unlabelled = aligned_faces(n_unlabelled, size=size, seed=seeds[1], template=template)
    return reference.images, unlabelled.images, unlabelled.expression, unlabelled.identity

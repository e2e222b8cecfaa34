"""faces-synth: seeded, the right shapes, and its landmarks agree with what it draws."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from rbedit.landmarks import ibug
from train.data import faces_synth as fs

MID_IDENTITY = np.array([0.5] * 7 + [0.0, 1.0, 0.0, 0.0])  # average face, upright, centred


def _draw(expression, identity=MID_IDENTITY, size=160):
    return fs.render(fs.deform(fs.base_shape(), np.asarray(expression, float), np.asarray(identity, float)), np.asarray(identity, float), size)


def _polygon_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Pixels inside a polygon given in pixel-centre coordinates, rasterised independently of the renderer."""
    k = 4
    big = Image.new("L", (size * k, size * k), 0)
    ImageDraw.Draw(big).polygon([tuple(k * (p + 0.5) - 0.5) for p in points], fill=255)
    return np.asarray(big.reduce(k)) > 127


def test_make_faces_shapes_and_seeding():
    a = fs.make_faces(6, size=64, seed=3)
    assert a.images.shape == (6, 64, 64, 3) and a.images.dtype == np.uint8
    assert a.expression.shape == (6, len(fs.EXPRESSION_FACTORS))
    assert a.identity.shape == (6, len(fs.IDENTITY_FACTORS))
    assert a.landmarks.shape == (6, 68, 2)
    b = fs.make_faces(6, size=64, seed=3)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, fs.make_faces(6, size=64, seed=4).images)
    low, high = fs.EXPRESSION_RANGES.T
    assert ((a.expression >= low) & (a.expression <= high)).all()


def test_reference_faces_are_neutral():
    ref = fs.make_faces(4, size=64, seed=0, neutral=True)
    np.testing.assert_array_equal(ref.expression, 0.0)


def test_pupils_are_drawn_at_the_eye_landmarks():
    image, landmarks = _draw([0.0, 0.0, 0.0, 0.5])
    for centre in ibug.eye_centres(landmarks):
        x, y = np.rint(centre).astype(int)
        assert image[y, x].astype(int).sum() < 120, f"no pupil at {centre}"


def test_face_outline_passes_through_the_jaw_landmarks():
    image, landmarks = _draw([0.0, 0.0, 0.0, 0.0])
    skin = fs._colour(fs.SKIN, 0.5)
    centre = landmarks[ibug.JAW].mean(0)
    for point in landmarks[2:15]:  # the jaw below the ears
        inward = (centre - point) / np.linalg.norm(centre - point)
        x_in, y_in = np.rint(point + 2.5 * inward).astype(int)
        x_out, y_out = np.rint(point - 2.5 * inward).astype(int)
        assert np.abs(image[y_in, x_in] - skin).max() < 6, "skin just inside the jaw"
        assert np.abs(image[y_out, x_out] - skin).max() > 15, "not skin just outside the jaw"


def test_lips_and_open_mouth_fill_their_landmark_polygons():
    size = 160
    image, landmarks = _draw([0.3, 1.0, 0.0, 0.0], size=size)
    outer = _polygon_mask(landmarks[ibug.OUTER_LIPS], size)
    inner = _polygon_mask(landmarks[ibug.INNER_LIPS], size)
    drawn_mouth = np.abs(image.astype(int) - fs.MOUTH_INSIDE).max(-1) < 8
    iou = (drawn_mouth & inner).sum() / (drawn_mouth | inner).sum()
    assert iou > 0.85, f"open mouth vs inner-lip polygon IoU {iou:.2f}"
    lips = fs._colour(fs.SKIN, 0.5) * fs.LIPS_TINT
    drawn_lips = np.abs(image.astype(int) - lips).max(-1) < 8
    ring = outer & ~inner
    iou = (drawn_lips & ring).sum() / (drawn_lips | ring).sum()
    assert iou > 0.75, f"lips vs outer-minus-inner polygon IoU {iou:.2f}"


def test_expression_factors_move_the_right_landmarks():
    _, neutral = _draw([0, 0, 0, 0])
    _, smile = _draw([1, 0, 0, 0])
    _, open_ = _draw([0, 1, 0, 0])
    _, raised = _draw([0, 0, 1, 0])
    _, wide = _draw([0, 0, 0, 1])
    assert (smile[list(ibug.MOUTH_CORNERS), 1] < neutral[list(ibug.MOUTH_CORNERS), 1] - 1).all()
    assert open_[66, 1] - open_[62, 1] > neutral[66, 1] - neutral[62, 1] + 5
    assert (raised[17:27, 1] < neutral[17:27, 1] - 2).all()
    assert (wide[37, 1] < neutral[37, 1]) and (wide[41, 1] > neutral[41, 1])


def test_aligned_crops_put_the_eyes_on_the_template():
    template = fs.synth_template(64, count=400)
    crops = fs.aligned_faces(40, size=64, seed=1, template=template)
    assert crops.images.shape == (40, 64, 64, 3)
    error = np.linalg.norm(ibug.eye_centres(crops.landmarks) - ibug.eye_centres(template)[None], axis=-1)
    assert error.max() < 1.0, f"eye centres {error.max():.2f} px from the template"


def test_training_sets_shapes():
    ref, unl, expr, ident = fs.training_sets(n_reference=5, n_unlabelled=7, size=32, seed=0)
    assert ref.shape == (5, 32, 32, 3) and unl.shape == (7, 32, 32, 3)
    assert expr.shape == (7, 4) and ident.shape == (7, len(fs.IDENTITY_FACTORS))
    assert ref.dtype == unl.dtype == np.uint8


@pytest.mark.parametrize("size", [32, 96])
def test_synth_template_is_inside_the_crop(size):
    template = fs.synth_template(size, count=200)
    assert template.shape == (68, 2) and template.min() > 0 and template.max() < size

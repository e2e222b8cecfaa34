"""Alignment geometry on known points: fits, Procrustes means, templates, warps."""

from __future__ import annotations

import numpy as np
import pytest

from rbedit.align.geometry import (
    apply_transform,
    compose,
    fit_affine,
    fit_similarity,
    fit_transform,
    invert_transform,
    normalise_shape,
    procrustes_mean_shape,
    similarity_matrix,
    transform_scale,
    warp_image,
)
from rbedit.align.template import (
    EYES_AT,
    EYES_TO_MOUTH,
    STANDARD_MEAN_SHAPE,
    builtin_template,
    scale_template,
    template_from_landmarks,
    template_to_config,
)
from rbedit.landmarks import ibug

RNG_SEED = 0


@pytest.fixture
def rng():
    return np.random.default_rng(RNG_SEED)


def test_fit_similarity_recovers_a_known_similarity(rng):
    src = rng.uniform(-50, 50, size=(68, 2))
    known = similarity_matrix(scale=0.37, angle_degrees=23.0, shift=(12.5, -40.0))
    fitted = fit_similarity(src, apply_transform(known, src))
    np.testing.assert_allclose(fitted, known, atol=1e-9)


def test_fit_similarity_ignores_zero_weight_points_and_never_reflects(rng):
    src = rng.uniform(-1, 1, size=(20, 2))
    known = similarity_matrix(scale=2.0, angle_degrees=-70.0, shift=(3.0, 4.0))
    dst = apply_transform(known, src)
    dst[:5] += rng.normal(0, 10, size=(5, 2))  # outliers the weights switch off
    weights = np.r_[np.zeros(5), np.ones(15)]
    np.testing.assert_allclose(fit_similarity(src, dst, weights), known, atol=1e-9)
    mirrored = src * np.array([-1.0, 1.0])
    assert np.linalg.det(fit_similarity(src, mirrored)[:, :2]) > 0


def test_fit_affine_recovers_a_known_affine(rng):
    src = rng.uniform(-5, 5, size=(30, 2))
    known = np.array([[1.2, 0.3, -4.0], [-0.1, 0.8, 7.0]])
    np.testing.assert_allclose(fit_transform(src, apply_transform(known, src), kind="affine"), known, atol=1e-9)
    np.testing.assert_allclose(fit_affine(src, apply_transform(known, src)), known, atol=1e-9)
    with pytest.raises(ValueError, match="similarity"):
        fit_transform(src, src, kind="projective")


def test_invert_and_compose_round_trip(rng):
    m = similarity_matrix(scale=1.7, angle_degrees=33.0, shift=(5.0, -2.0))
    points = rng.normal(size=(10, 2))
    np.testing.assert_allclose(apply_transform(compose(invert_transform(m), m), points), points, atol=1e-12)
    assert transform_scale(m) == pytest.approx(1.7)


def test_procrustes_mean_of_posed_copies_is_the_shape():
    shape = STANDARD_MEAN_SHAPE
    poses = [similarity_matrix(scale=s, angle_degrees=a, shift=(t, -t)) for s, a, t in [(1, 0, 0), (2, 30, 5), (0.5, -45, 9)]]
    mean = procrustes_mean_shape(np.stack([apply_transform(p, shape) for p in poses]), initial=shape)
    np.testing.assert_allclose(mean, normalise_shape(shape), atol=1e-9)


def test_builtin_template_places_eyes_and_mouth():
    size = 96
    template = builtin_template(size)
    eyes = ibug.eye_centres(template)
    np.testing.assert_allclose(eyes.mean(0), [size / 2 - 0.5, EYES_AT * size - 0.5], atol=1e-9)
    np.testing.assert_allclose(ibug.mouth_centre(template), [size / 2 - 0.5, (EYES_AT + EYES_TO_MOUTH) * size - 0.5], atol=1e-9)
    assert abs(ibug.eye_angle_degrees(template)) < 0.01
    assert template.min() > 0 and template.max() < size  # the whole face is inside the crop


def test_template_round_trip_through_sizes_and_config():
    template = builtin_template(96)
    np.testing.assert_allclose(scale_template(scale_template(template, 96, 32), 32, 96), template, atol=1e-12)
    np.testing.assert_allclose(scale_template(template, 96, 64), builtin_template(64), atol=1e-9)
    as_config = template_to_config(template)
    assert len(as_config) == 68 and all(len(p) == 2 for p in as_config)
    np.testing.assert_allclose(np.array(as_config), template, atol=5e-4)


def test_template_from_landmarks_of_posed_mean_shapes_is_the_builtin_template(rng):
    poses = [similarity_matrix(scale=rng.uniform(50, 200), angle_degrees=rng.uniform(-20, 20), shift=rng.uniform(0, 300, 2)) for _ in range(5)]
    shapes = np.stack([apply_transform(p, STANDARD_MEAN_SHAPE) for p in poses])
    np.testing.assert_allclose(template_from_landmarks(shapes, 64), builtin_template(64), atol=1e-6)


def test_stored_mean_shape_matches_the_dlib_predictor():
    pytest.importorskip("dlib")
    from rbedit.landmarks import LandmarkBackendError
    from rbedit.landmarks.dlib_backend import find_predictor, read_predictor_mean_shape

    try:
        path = find_predictor()
    except LandmarkBackendError:
        pytest.skip("no dlib 68-point predictor installed")
    np.testing.assert_allclose(read_predictor_mean_shape(path), STANDARD_MEAN_SHAPE, atol=6e-6)


def test_warp_identity_is_exact_and_shift_is_subpixel(rng):
    image = rng.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_image(image, similarity_matrix(), (40, 50)), image)
    ramp = np.tile(np.arange(64, dtype=np.float32), (16, 1))  # value = x
    out = warp_image(ramp, similarity_matrix(shift=(-10.25, 0.0)), (16, 20), resample="bilinear")
    np.testing.assert_allclose(out[8, :10], np.arange(10) + 10.25, atol=1e-4)


def test_warp_maps_a_landmark_to_where_the_matrix_says():
    image = np.zeros((200, 300), dtype=np.float32)
    image[120, 77] = 1.0  # a single bright pixel
    m = similarity_matrix(scale=0.5, angle_degrees=15.0, shift=(10.0, -20.0))
    out = warp_image(image, m, (100, 100), resample="bilinear")
    ys, xs = np.nonzero(out)
    centre = np.array([np.average(xs, weights=out[ys, xs]), np.average(ys, weights=out[ys, xs])])
    np.testing.assert_allclose(centre, apply_transform(m, [77.0, 120.0]), atol=0.35)


def test_downscaling_warp_does_not_alias():
    checker = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)
    out = warp_image(np.stack([checker] * 3, -1), similarity_matrix(scale=0.25), (64, 64))
    assert abs(out[4:-4, 4:-4].astype(float).mean() - 127.5) < 2 and out[4:-4, 4:-4].std() < 2

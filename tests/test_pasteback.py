"""prepare_faces → paste_back on synthetic photos with exact landmarks (file backend)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rbedit.align.geometry import apply_transform, invert_transform, similarity_matrix
from rbedit.align.pipeline import paste_back, paste_mask, prepare_faces, template_for
from rbedit.model.config import ModelConfig
from train.data import faces_synth as fs

FACES_64 = ModelConfig(domain="faces", image_size=64, channels=(8, 8, 8, 8, 8))
FAILURES = Path(tempfile.gettempdir()) / "rbedit-test-failures"  # images a person can look at when a check fails
PLAIN_MEAN_LIMIT = 3.0  # grey levels: resampling down and up again blurs the drawing's hard edges


def _save_for_inspection(name: str, *images: np.ndarray) -> Path:
    FAILURES.mkdir(exist_ok=True)
    path = FAILURES / f"{name}.png"
    Image.fromarray(np.concatenate(images, axis=1)).save(path)
    return path


@pytest.fixture
def photo(tmp_path):
    """A 200×200 synthetic face photo with its true landmarks saved beside it."""
    faces = fs.make_faces(1, size=200, seed=11)
    source = tmp_path / "face.png"
    np.save(source.with_suffix(".npy"), faces.landmarks[0])
    return faces.images[0], source


def test_crop_landmarks_land_on_the_template(tmp_path):
    template = template_for(FACES_64)
    pose = similarity_matrix(scale=2.7, angle_degrees=12.0, shift=(40.0, 25.0))
    np.save(tmp_path / "p.npy", apply_transform(pose, template))
    image = np.zeros((300, 300, 3), np.uint8)
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=tmp_path / "p.png")
    np.testing.assert_allclose(face.matrix, invert_transform(pose), atol=1e-9)
    np.testing.assert_allclose(apply_transform(face.matrix, face.landmarks), template, atol=1e-9)


def test_unedited_paste_back_changes_nothing(photo):
    image, source = photo
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=source)
    np.testing.assert_array_equal(paste_back(image, face.crop, face), image)


def test_plain_paste_back_of_an_unedited_crop_is_close_inside_and_exact_outside(tmp_path):
    faces = fs.make_faces(1, size=80, seed=11)  # face at about the crop's resolution
    image = faces.images[0]
    np.save(tmp_path / "f.npy", faces.landmarks[0])
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=tmp_path / "f.png")
    plain = paste_back(image, face.crop, face, keep_detail=False)
    mask = paste_mask(face, image.shape)
    change = np.abs(plain.astype(int) - image.astype(int)).mean(-1)
    inside = change[mask >= 0.5].mean()
    where = _save_for_inspection("pasteback_plain", image, plain) if inside > PLAIN_MEAN_LIMIT else None
    assert inside <= PLAIN_MEAN_LIMIT, f"mean change inside the face {inside:.2f} grey levels (see {where})"
    assert change[mask == 0].max() == 0


def test_edits_change_only_the_masked_face(photo):
    image, source = photo
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=source)
    edited = 255 - face.crop
    mask = paste_mask(face, image.shape)
    for keep_detail in (True, False):
        out = paste_back(image, edited, face, keep_detail=keep_detail)
        changed = (out != image).any(-1)
        assert changed.any()
        assert not (changed & (mask == 0)).any(), "a pixel outside the mask changed"
        core = mask > 0.99
        assert changed[core].mean() > 0.9
    assert 0 < (mask > 0).mean() < 0.6  # the face, not the photo


def test_paste_back_rejects_a_crop_of_the_wrong_size(photo):
    image, source = photo
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=source)
    with pytest.raises(ValueError, match="edited crop"):
        paste_back(image, np.zeros((32, 32, 3), np.uint8), face)


def test_face_near_the_border_pastes_back_inside_the_photo(tmp_path):
    faces = fs.make_faces(1, size=200, seed=5)
    image = faces.images[0][:, 60:]  # cut off the left third: the crop leaves the photo
    np.save(tmp_path / "cut.npy", faces.landmarks[0] - np.array([60.0, 0.0]))
    (face,) = prepare_faces(image, config=FACES_64, landmarks="file", source=tmp_path / "cut.png")
    out = paste_back(image, 255 - face.crop, face)
    assert out.shape == image.shape and (out != image).any()

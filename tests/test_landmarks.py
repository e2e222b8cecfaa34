"""Landmark backends' contract, and prepare_faces' outcomes for no / several / tiny faces."""

from __future__ import annotations

import json
import logging
import sys
import types

import numpy as np
import pytest
from PIL import Image

from rbedit.align.errors import FaceTooSmallError, NoFaceError
from rbedit.align.geometry import apply_transform, similarity_matrix
from rbedit.align.pipeline import prepare_faces, template_for
from rbedit.align.template import STANDARD_MEAN_SHAPE
from rbedit.landmarks import LandmarkBackendError, LandmarkFileError, get_backend, ibug
from rbedit.model.config import ModelConfig

FACES_64 = ModelConfig(domain="faces", image_size=64, channels=(8, 8, 8, 8, 8))


def _dlib_or_skip():
    pytest.importorskip("dlib")
    try:
        return get_backend("dlib")
    except LandmarkBackendError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    return data.astronaut()  # (512, 512, 3) uint8, one face


def _face_at(scale: float, shift: tuple[float, float]) -> np.ndarray:
    """(68, 2) landmarks: the mean shape scaled to `scale` px and moved."""
    return apply_transform(similarity_matrix(scale=scale, shift=shift), STANDARD_MEAN_SHAPE)


def test_unknown_backend_is_a_value_error():
    with pytest.raises(ValueError, match="dlib, fan, file"):
        get_backend("magic")


# ---- dlib ---------------------------------------------------------------------------------


def test_dlib_finds_one_face_on_the_astronaut_with_level_eyes(astronaut):
    faces = _dlib_or_skip().detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (68, 2)
    left, top, right, bottom = face.box
    assert 150 < left < right < 300 and 50 < top < bottom < 200  # her face, not the flag
    crops = prepare_faces(astronaut, config=FACES_64)
    assert len(crops) == 1 and crops[0].crop.shape == (64, 64, 3)
    in_crop = apply_transform(crops[0].matrix, crops[0].landmarks)
    assert abs(ibug.eye_angle_degrees(in_crop)) < 2.0
    np.testing.assert_allclose(ibug.eye_centres(in_crop), ibug.eye_centres(template_for(FACES_64)), atol=2.0)


def test_dlib_predictor_from_a_missing_env_path_is_a_clear_error(monkeypatch, tmp_path):
    from rbedit.landmarks.dlib_backend import PREDICTOR_ENV, find_predictor

    monkeypatch.setenv(PREDICTOR_ENV, str(tmp_path / "nope.dat"))
    with pytest.raises(LandmarkBackendError, match=PREDICTOR_ENV):
        find_predictor()


# ---- file ---------------------------------------------------------------------------------


def test_file_backend_reads_npy_and_json_beside_the_image(tmp_path):
    backend = get_backend("file")
    image = np.zeros((300, 400, 3), np.uint8)
    one = _face_at(100, (50, 60))
    np.save(tmp_path / "a.npy", one)
    faces = backend.detect(image, source=tmp_path / "a.png")
    assert len(faces) == 1
    np.testing.assert_allclose(faces[0].landmarks, one)
    assert faces[0].box == pytest.approx((*one.min(0), *one.max(0)))

    two = np.stack([one, _face_at(80, (250, 100))])
    (tmp_path / "b.json").write_text(json.dumps(two.tolist()))
    assert len(backend.detect(image, source=tmp_path / "b.jpg")) == 2
    (tmp_path / "c.json").write_text(json.dumps({"landmarks": one.tolist()}))
    assert len(backend.detect(image, source=tmp_path / "c.jpg")) == 1


def test_file_backend_errors_name_the_file(tmp_path):
    backend = get_backend("file")
    image = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(LandmarkFileError, match="missing.png"):
        backend.detect(image, source=tmp_path / "missing.png")
    np.save(tmp_path / "bad.npy", np.zeros((5, 2)))
    with pytest.raises(LandmarkFileError, match=r"bad\.npy.*\(68, 2\)"):
        backend.detect(image, source=tmp_path / "bad.png")
    with pytest.raises(LandmarkFileError, match="path"):
        backend.detect(image)


# ---- fan ----------------------------------------------------------------------------------


def _fake_face_alignment(monkeypatch):
    """Stand-in modules with face-alignment's URL tables (no network, no weights)."""
    package = types.ModuleType("face_alignment")
    package.api = types.SimpleNamespace(models_urls={"2DFAN-4": "https://example.invalid/python-fan/2DFAN4-x.pth.tar"})
    detector = types.ModuleType("face_alignment.detection.sfd.sfd_detector")
    detector.models_urls = {"s3fd": "https://example.invalid/python-fan/s3fd-y.pth"}
    monkeypatch.setitem(sys.modules, "face_alignment", package)
    monkeypatch.setitem(sys.modules, "face_alignment.detection.sfd.sfd_detector", detector)


def _no_weights_no_network(monkeypatch, tmp_path):
    from rbedit.landmarks import fan_backend

    monkeypatch.setattr(fan_backend, "hub_checkpoint_dir", lambda: tmp_path / "checkpoints")
    monkeypatch.setattr(fan_backend, "host_reachable", lambda url, timeout=0: False)


def test_fan_without_weights_or_network_fails_with_a_clear_message(monkeypatch, tmp_path):
    from rbedit.landmarks.fan_backend import FanBackend

    _fake_face_alignment(monkeypatch)
    _no_weights_no_network(monkeypatch, tmp_path)
    with pytest.raises(LandmarkBackendError, match=r"s3fd-y\.pth.*2DFAN4-x\.pth\.tar.*not reachable.*--landmarks dlib"):
        FanBackend()


def test_fan_without_the_package_says_how_to_install(monkeypatch):
    from rbedit.landmarks.fan_backend import FanBackend

    monkeypatch.setitem(sys.modules, "face_alignment", None)  # import raises ImportError
    with pytest.raises(LandmarkBackendError, match=r"rbedit\[fan\]"):
        FanBackend()


def test_real_fan_without_weights_fails_with_a_clear_message(monkeypatch, tmp_path):
    pytest.importorskip("face_alignment")
    from rbedit.landmarks.fan_backend import FanBackend

    _no_weights_no_network(monkeypatch, tmp_path)
    with pytest.raises(LandmarkBackendError, match="not in the torch hub cache"):
        FanBackend()


# ---- outcomes: no face, several faces, tiny faces ------------------------------------------


def test_no_face_is_an_error_naming_the_file(tmp_path):
    _dlib_or_skip()
    grey = np.full((240, 320, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match=r"^.*flat\.png: no face found"):
        prepare_faces(grey, config=FACES_64, source=tmp_path / "flat.png")
    np.save(tmp_path / "empty.npy", np.zeros((0, 68, 2)))
    with pytest.raises(NoFaceError):
        prepare_faces(grey, config=FACES_64, landmarks="file", source=tmp_path / "empty.png")


def test_two_faces_largest_all_and_index(astronaut):
    _dlib_or_skip()
    head = astronaut[40:240, 120:320]  # (200, 200, 3) around her face
    small = np.asarray(Image.fromarray(head).resize((160, 160), Image.BILINEAR))
    pair = np.full((220, 420, 3), 200, np.uint8)
    pair[10:210, 10:210] = head
    pair[30:190, 240:400] = small  # right face smaller
    everyone = prepare_faces(pair, config=FACES_64, face="all")
    assert len(everyone) == 2
    assert everyone[0].box[0] < everyone[1].box[0]  # numbered left to right
    largest = prepare_faces(pair, config=FACES_64, face="largest")
    assert len(largest) == 1 and largest[0].box == everyone[0].box
    assert prepare_faces(pair, config=FACES_64, face="1")[0].box == everyone[1].box
    with pytest.raises(NoFaceError, match="face 5 requested but 2 found"):
        prepare_faces(pair, config=FACES_64, face="5")
    with pytest.raises(ValueError, match="largest"):
        prepare_faces(pair, config=FACES_64, face="biggest")


def test_tiny_faces_are_reported_not_edited(tmp_path, caplog):
    image = np.full((300, 300, 3), 90, np.uint8)
    tiny = _face_at(12, (20, 20))  # 12 px wide
    np.save(tmp_path / "tiny.npy", tiny)
    with pytest.raises(FaceTooSmallError, match=r"tiny\.png: face 0 is \d+ px wide"):
        prepare_faces(image, config=FACES_64, landmarks="file", source=tmp_path / "tiny.png")
    np.save(tmp_path / "mixed.npy", np.stack([tiny, _face_at(150, (100, 80))]))
    with caplog.at_level(logging.WARNING, logger="rbedit.align.pipeline"):
        crops = prepare_faces(image, config=FACES_64, landmarks="file", face="all", source=tmp_path / "mixed.png")
    assert len(crops) == 1 and crops[0].box[0] >= 100
    assert "skipped face 0" in caplog.text

"""Aligned folders for training: crops, manifest of skipped files, and the cache."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from train.data import faces_folder, faces_synth
from rbedit.align.template import builtin_template


@pytest.fixture
def folder(tmp_path):
    """Three drawn faces with landmark files, one image without, one broken file, one non-image."""
    root = tmp_path / "faces"
    (root / "sub").mkdir(parents=True)
    faces = faces_synth.make_faces(3, size=120, seed=2)
    for i, (image, points) in enumerate(zip(faces.images, faces.landmarks)):
        where = root / ("sub" if i == 2 else "") / f"f{i}.png"
        Image.fromarray(image).save(where)
        np.save(where.with_suffix(".npy"), points)
    Image.fromarray(faces.images[0]).save(root / "nolandmarks.png")
    (root / "broken.jpg").write_bytes(b"not a jpeg")
    (root / "notes.txt").write_text("ignored")
    return root


def test_folder_is_aligned_with_a_manifest_of_what_was_skipped(folder, tmp_path):
    images, manifest = faces_folder.load_aligned_folder(
        folder, size=32, template=builtin_template(32), cache_dir=tmp_path / "cache", landmarks="file", progress=False
    )
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.uint8
    assert manifest["images"] == ["f0.png", "f1.png", "sub/f2.png"]
    reasons = {s["path"]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"broken.jpg", "nolandmarks.png"}
    assert "landmarks file" in reasons["nolandmarks.png"]


def test_second_load_comes_from_the_cache(folder, tmp_path, monkeypatch):
    kwargs = dict(size=32, template=None, cache_dir=tmp_path / "cache", landmarks="file", progress=False)
    first, manifest = faces_folder.load_aligned_folder(folder, **kwargs)
    assert len(manifest["template"]) == 68  # computed from the folder's own faces

    def no_backend(name):
        raise AssertionError("landmarks were detected again")

    monkeypatch.setattr(faces_folder, "get_backend", no_backend)
    second, _ = faces_folder.load_aligned_folder(folder, **kwargs)
    np.testing.assert_array_equal(first, second)


def test_empty_folder_is_an_error_naming_it(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        faces_folder.load_aligned_folder(tmp_path / "empty", size=32, template=None, cache_dir=tmp_path / "c", landmarks="file", progress=False)

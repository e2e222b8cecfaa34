"""The digit protocol of Appendix C: factor ranges, reference style, splits by source digit."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from train.data.digits import (
    PROTOCOL_SIZE,
    REFERENCE_FACTORS,
    draw_style,
    edge_digit,
    make_reference,
    make_unlabelled,
    split_sources,
    style_digit,
)


@pytest.fixture(scope="module")
def digits():
    rng = np.random.default_rng(0)
    images = np.zeros((40, 28, 28), np.uint8)
    for i, img in enumerate(images):  # blocky "digits" of different sizes
        a = 4 + i % 6
        img[a : 28 - a, 10:18] = 255
    labels = np.arange(40) % 10
    return images, labels, rng


def test_edges_are_thin_and_binary(digits):
    images, _, _ = digits
    edges = edge_digit(images[0])
    assert edges.shape == (64, 64)
    assert set(np.unique(edges)) <= {0.0, 1.0}
    filled = np.asarray(images[0] > 0).sum() * (64 / 28) ** 2
    assert 0 < edges.sum() < 0.6 * filled  # an outline, not the filled shape


def test_style_factors_in_range(digits):
    images, _, _ = digits
    rng = np.random.default_rng(1)
    edges = edge_digit(images[3])
    for _ in range(30):
        image, f = style_digit(edges, rng)
        assert image.shape == (64, 64, 3)
        assert np.isclose(f[:3].sum(), 1.0) and (f[:3] >= 0).all()
        assert 0.5 <= f[3] <= 1.0
        assert np.isclose(f[4] * 10, round(f[4] * 10)) and 1 <= round(f[4] * 10) <= 10
        # Colour: every channel is the grey image times ĉ.
        grey = image.sum(axis=2)
        nz = grey > 1e-3
        assert np.allclose(image[nz] / grey[nz, None], f[:3], atol=1e-4)


def test_scale_shrinks_the_digit_about_the_centre(digits):
    images, _, _ = digits
    edges = edge_digit(images[0])
    rng = np.random.default_rng(2)
    for _ in range(10):
        image, f = style_digit(edges, rng)
        ys, xs = np.nonzero(image.sum(2) > 1e-3)
        extent = max(ys.max() - ys.min(), xs.max() - xs.min()) + 1
        full = np.nonzero(edges)
        full_extent = max(np.ptp(full[0]), np.ptp(full[1])) + 1
        assert extent <= full_extent * f[3] + f[4] * 10 + 2


def test_reference_style_and_factors(digits):
    images, labels, _ = digits
    ref = make_reference(images, labels, np.arange(5), 32)
    assert ref.images.shape == (5, 32, 32, 3)
    # White: all three channels equal.
    assert (ref.images[..., 0] == ref.images[..., 1]).all() and (ref.images[..., 1] == ref.images[..., 2]).all()
    assert np.allclose(ref.factors, REFERENCE_FACTORS)


def test_unlabelled_is_seeded(digits):
    images, labels, _ = digits
    a = make_unlabelled(images, labels, np.arange(4), 32, copies=2, seed=5)
    b = make_unlabelled(images, labels, np.arange(4), 32, copies=2, seed=5)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.factors, b.factors)
    assert list(a.sources) == [0, 0, 1, 1, 2, 2, 3, 3]


def test_splits_are_disjoint_by_source_digit():
    labels = np.repeat(np.arange(10), 50)
    s = split_sources(labels, seed=0)
    parts = [set(s.reference), set(s.unlabelled), set(s.probe_fit), set(s.probe_eval)]
    assert sum(map(len, parts)) == 500
    for i in range(4):
        for j in range(i + 1, 4):
            assert not parts[i] & parts[j]
    # Stratified: every class appears in every part.
    for p in (s.reference, s.unlabelled, s.probe_fit, s.probe_eval):
        assert set(labels[p]) == set(range(10))
    assert np.array_equal(split_sources(labels, seed=0).probe_eval, s.probe_eval)


def test_a_drawn_style_carries_the_factors_it_was_given():
    edges = np.zeros((PROTOCOL_SIZE, PROTOCOL_SIZE), dtype=np.float32)
    edges[20:44, 30:33] = 1.0
    image, factors = draw_style(edges, width=4, colour=(2.0, 1.0, 1.0), scale=0.5)
    np.testing.assert_allclose(factors, [0.5, 0.25, 0.25, 0.5, 0.4])
    ink = image.sum(axis=2) > 0
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    assert np.ptp(rows) < 16 and np.ptp(cols) < 6  # half the size, a few pixels wide
    np.testing.assert_allclose(image[ink][:, 0], 2 * image[ink][:, 1])  # red twice green


def test_the_example_digits_are_what_the_protocol_draws(tmp_path):
    from PIL import Image

    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, str(root / "examples" / "draw_digits.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    drawn = sorted(tmp_path.glob("*.png"))
    assert [p.name for p in drawn] == ["0_teal_bold.png", "2_red.png", "3_plain.png", "5_olive_thin.png", "7_purple.png"]
    for path in drawn:
        committed = root / "examples" / "digits" / path.name
        assert np.array_equal(np.asarray(Image.open(path)), np.asarray(Image.open(committed))), path.name

"""Image reading/writing rules of DESIGN §9."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rbedit.imageio import ImageError, file_key, from_array, make_grid, read_image, write_image


def save(img: Image.Image, path, **kw):
    img.save(path, **kw)
    return path


def test_rgba_is_composited_and_alpha_kept(tmp_path):
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[2:4, 2:4] = [0, 0, 0, 255]  # black ink on a transparent sheet
    pic = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert pic.alpha is not None and pic.alpha[2, 2] == 255 and pic.alpha[0, 0] == 0
    # Dark content is composited onto white, so it stays visible.
    assert pic.rgb[0, 0].tolist() == [255, 255, 255] and pic.rgb[2, 2].tolist() == [0, 0, 0]


def test_light_content_composited_on_black(tmp_path):
    rgba = np.zeros((6, 6, 4), np.uint8)
    rgba[2:4, 2:4] = [255, 255, 255, 255]
    pic = read_image(save(Image.fromarray(rgba, "RGBA"), tmp_path / "a.png"))
    assert pic.rgb[0, 0].tolist() == [0, 0, 0]


def test_opaque_alpha_dropped_and_la_mode(tmp_path):
    la = Image.fromarray(np.dstack([np.full((4, 4), 100, np.uint8), np.full((4, 4), 255, np.uint8)]), "LA")
    pic = read_image(save(la, tmp_path / "la.png"))
    assert pic.alpha is None and pic.rgb.shape == (4, 4, 3) and pic.rgb[0, 0].tolist() == [100] * 3


def test_palette_with_transparency(tmp_path):
    p = Image.new("P", (4, 4), 0)
    p.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    p.putpixel((1, 1), 1)
    p.info["transparency"] = 0
    pic = read_image(save(p, tmp_path / "p.png", transparency=0))
    assert pic.alpha is not None and pic.alpha[0, 0] == 0 and pic.alpha[1, 1] == 255
    assert pic.rgb[1, 1].tolist() == [0, 255, 0]


def test_sixteen_bit_grey_scaled_not_clipped(tmp_path):
    values = np.array([[0, 257 * 128, 65535, 257 * 10]], np.uint16)
    img = Image.fromarray(values)  # mode I;16
    pic = read_image(save(img, tmp_path / "g16.png"))
    assert pic.rgb[0, :, 0].tolist() == [0, 128, 255, 10]


def test_cmyk_and_one_bit(tmp_path):
    cmyk = Image.new("CMYK", (3, 3), (0, 255, 255, 0))  # red
    pic = read_image(save(cmyk, tmp_path / "c.jpg", quality=100))
    r, g, b = pic.rgb[1, 1].tolist()
    assert r > 200 and g < 60 and b < 60
    bw = Image.new("1", (3, 3), 1)
    assert read_image(save(bw, tmp_path / "b.png")).rgb[0, 0].tolist() == [255, 255, 255]


def test_exif_orientation_applied(tmp_path):
    arr = np.zeros((2, 4, 3), np.uint8)
    arr[0, 0] = 255  # marker at top-left of a landscape image
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    pic = read_image(save(img, tmp_path / "e.jpg", exif=exif.tobytes(), quality=100))
    assert pic.rgb.shape == (4, 2, 3)
    assert pic.rgb[0, 1].mean() > 128  # marker moved to the top-right


def test_refuses_bombs_truncated_and_non_images(tmp_path, monkeypatch):
    path = save(Image.new("RGB", (40, 40)), tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageError, match=r"big\.png.*decompression bomb"):
        read_image(path)
    monkeypatch.undo()

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated or corrupt") as err:
        read_image(tmp_path / "cut.jpg")
    assert "\n" not in str(err.value)

    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(ImageError, match=r"notes\.png: not an image"):
        read_image(tmp_path / "notes.png")
    with pytest.raises(ImageError, match=r"missing\.png: no such file"):
        read_image(tmp_path / "missing.png")


def test_write_keeps_alpha_where_format_can(tmp_path):
    rgb = np.full((3, 3, 3), 50, np.uint8)
    alpha = np.array([[0, 128, 255]] * 3, np.uint8)
    out = write_image(tmp_path / "o.png", rgb, alpha)
    back = np.asarray(Image.open(out))
    assert back.shape == (3, 3, 4) and back[..., 3].tolist() == alpha.tolist()
    jpg = write_image(tmp_path / "o.jpg", rgb, alpha)
    assert Image.open(jpg).mode == "RGB"


@pytest.mark.parametrize("name", ["out.png", "out.jpg"])
def test_write_is_atomic(tmp_path, monkeypatch, name):
    def failing_replace(src, dst):
        assert Path(src).read_bytes()  # the temporary file was written in full ...
        raise OSError("disk full")  # ... and is gone after the failure

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_image(tmp_path / name, np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_outputs_get_the_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = write_image(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8))
    finally:
        os.umask(old)
    assert out.stat().st_mode & 0o777 == 0o644  # (a temporary file from mkstemp would have made it 0600)


def test_a_stale_temporary_file_is_stepped_over(tmp_path, monkeypatch):
    import itertools

    from rbedit import atomic

    monkeypatch.setattr(atomic, "_counter", itertools.count())
    stale = tmp_path / f".out.png.{os.getpid()}-0.tmp"  # left by a killed process that had our id
    stale.write_bytes(b"half")
    write_image(tmp_path / "out.png", np.zeros((2, 2, 3), np.uint8))
    assert stale.read_bytes() == b"half" and Image.open(tmp_path / "out.png").size == (2, 2)


@pytest.mark.parametrize("shape", [(1, 1), (5, 7), (32, 32), (300, 260)])  # the last one through Pillow
def test_png_round_trip(tmp_path, shape):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, shape, dtype=np.uint8)
    opaque = Image.open(write_image(tmp_path / "rgb.png", rgb))
    assert opaque.mode == "RGB" and np.array_equal(np.asarray(opaque), rgb)
    clear = Image.open(write_image(tmp_path / "rgba.png", rgb, alpha))
    assert clear.mode == "RGBA" and np.array_equal(np.asarray(clear), np.dstack([rgb, alpha]))


def test_write_refuses_protected_input(tmp_path):
    src = save(Image.new("RGB", (2, 2), (1, 2, 3)), tmp_path / "in.png")
    with pytest.raises(ImageError, match="refusing to overwrite an input"):
        write_image(tmp_path / "in.png", np.zeros((2, 2, 3), np.uint8), protected={file_key(src)})
    assert np.asarray(Image.open(src))[0, 0].tolist() == [1, 2, 3]
    with pytest.raises(ImageError, match="unsupported output extension"):
        write_image(tmp_path / "o.xyz", np.zeros((2, 2, 3), np.uint8))


def test_from_array_and_grid():
    pic = from_array(np.ones((4, 4), np.float32) * 0.5)
    assert pic.rgb.shape == (4, 4, 3) and pic.rgb[0, 0, 0] == 128
    grid = make_grid([np.full((4, 4, 3), i, np.uint8) for i in range(5)], pad=1)
    assert grid.shape == (2 * 4 + 3, 3 * 4 + 4, 3)

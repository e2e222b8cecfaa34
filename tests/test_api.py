"""The Python API (rbedit.load / Editor) and digit preparation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import rbedit
from rbedit.devices import DeviceError, resolve_device
from rbedit.prepare.digits import prepare_digit

from conftest import device_under_test, digit_image


@pytest.fixture(scope="module")
def editor(tiny_model):
    return rbedit.load(str(tiny_model), device=device_under_test(), batch_size=2)


def test_import_rbedit_is_light():
    code = "import sys, rbedit; assert rbedit.__version__; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"


def test_input_kinds_give_matching_output_kinds(editor, tmp_path):
    arr = digit_image(0)
    Image.fromarray(arr).save(tmp_path / "d.png")
    s = editor.config.image_size
    out_pil = editor.neutralize(Image.fromarray(arr))
    out_path = editor.neutralize(tmp_path / "d.png")
    out_arr = editor.neutralize(arr)
    out_batch = editor.neutralize(np.stack([arr, digit_image(1), digit_image(2)]))
    out_list = editor.neutralize([arr, Image.fromarray(arr)])
    x = torch.from_numpy(editor.prepare(arr)).permute(2, 0, 1).float() / 127.5 - 1
    out_t = editor.neutralize(x)
    assert isinstance(out_pil, Image.Image) and out_pil.size == (s, s)
    assert np.array_equal(np.asarray(out_path), np.asarray(out_pil))
    assert out_arr.shape == (s, s, 3) and out_arr.dtype == np.uint8
    assert np.array_equal(out_arr, np.asarray(out_pil))
    assert out_batch.shape == (3, s, s, 3) and np.array_equal(out_batch[0], out_arr)  # batch of 2 + 1
    assert isinstance(out_list, list) and isinstance(out_list[1], Image.Image)
    assert out_t.shape == (3, s, s) and out_t.min() >= -1 and out_t.max() <= 1


def test_transfer_semantics(editor):
    src, tgt = digit_image(0), digit_image(1)
    x = lambda a: torch.from_numpy(editor.prepare(a)).permute(2, 0, 1)[None].float() / 127.5 - 1  # noqa: E731
    z_t, _ = editor.encode_tensor(x(tgt))
    _, e_s = editor.encode_tensor(x(src))
    with torch.no_grad():
        expected = editor.model.decode(z_t, e_s)
    got = editor.transfer(x(src)[0], x(tgt)[0])
    assert torch.allclose(got.cpu(), expected[0].cpu(), atol=1e-6)
    # α = 0 is the reference (neutralize); α = 1 is the source's e.
    assert np.array_equal(editor.transfer(src, tgt, strength=0.0), editor.neutralize(tgt))
    half = editor.blend_e(e_s[0], 0.5)
    assert torch.allclose(half, editor.model.e_ref + 0.5 * (e_s[0] - editor.model.e_ref))


def test_reconstruct_and_encode(editor):
    arr = digit_image(3)
    lat = editor.encode(arr)
    assert lat.z.shape == (2,) and lat.e.shape == (2,)
    with torch.no_grad():
        latents = (torch.from_numpy(v)[None].to(editor.device) for v in (lat.z, lat.e))
        expected = editor.model.decode(*latents)
    from rbedit.pixels import model_to_uint8

    assert np.array_equal(editor.reconstruct(arr), model_to_uint8(expected)[0])
    batch = editor.encode([arr, arr, digit_image(4)])
    assert batch.z.shape == (3, 2) and np.allclose(batch.z[0], batch.z[1])


def test_sample_seeded(editor):
    arr = digit_image(5)
    a = editor.sample(arr, n=5, seed=3)
    b = editor.sample(arr, n=5, seed=3)
    c = editor.sample(arr, n=5, seed=4)
    assert a.shape == (5, 8, 8, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    pics = editor.sample(Image.fromarray(arr), n=3, seed=3)
    assert len(pics) == 3 and np.array_equal(np.asarray(pics[0]), a[0])
    cold = editor.sample_e(4, seed=0, temperature=0.0)
    assert torch.count_nonzero(cold) == 0


def test_bad_inputs(editor):
    with pytest.raises(ValueError, match="prepared model inputs"):
        editor.neutralize(torch.zeros(3, 5, 5))
    with pytest.raises(TypeError):
        editor.neutralize(42)
    with pytest.raises(DeviceError, match="cuda"):
        if torch.cuda.is_available():
            pytest.skip("this machine has CUDA")
        resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")


def test_prepare_digit_inverts_centres_and_keeps_relative_size():
    img = np.full((40, 80, 3), 255, np.uint8)  # wide white paper
    img[5:25, 2:12] = 0  # dark ink, off-centre, 20 px tall
    out, _ = prepare_digit(img, size=16)
    assert out.shape == (16, 16, 3)
    rows = np.flatnonzero(out.max(axis=(1, 2)) > 64)
    cols = np.flatnonzero(out.max(axis=(0, 2)) > 64)
    # Inverted (light ink on black), centred, and 20/80 of the canvas → 4 of 16 pixels.
    assert out[0, 0].tolist() == [0, 0, 0] and out[8, 8].max() > 200
    assert abs((rows[0] + rows[-1]) / 2 - 7.5) <= 1 and abs((cols[0] + cols[-1]) / 2 - 7.5) <= 1
    assert 3 <= len(rows) <= 5


def test_prepare_digit_leaves_model_style_images_alone():
    img = np.zeros((16, 16, 3), np.uint8)
    img[4:12, 6:10] = [200, 30, 10]
    out, alpha = prepare_digit(img, size=16, alpha=np.full((16, 16), 255, np.uint8))
    assert np.array_equal(out, img) and alpha.shape == (16, 16)


def test_example_script_runs(tiny_model, tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, str(root / "examples" / "edit_digits.py"), "--model", str(tiny_model), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=root,
        env={**__import__("os").environ, "PYTHONPATH": str(root)},
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neutral.png", "samples.png", "strength.png", "transfer.png"]


def test_a_refining_editor_edits_with_the_refined_latents(tiny_model):
    refining = rbedit.load(str(tiny_model), device=device_under_test(), batch_size=2, refine=10)
    plain = rbedit.load(str(tiny_model), device=device_under_test(), batch_size=2)
    images = np.stack([digit_image(i) for i in range(3)])
    x = refining.to_model(np.stack([refining.prepare(a) for a in images])).to(refining.device)
    z, e = refining.model.refine(x[:2], 10)  # batch_size 2: the first batch on its own
    latents = refining.encode(images)
    assert np.allclose(latents.z[:2], z.cpu().numpy(), atol=1e-5) and np.allclose(latents.e[:2], e.cpu().numpy(), atol=1e-5)
    assert not np.allclose(latents.z, plain.encode(images).z)
    # Refined latents redraw each image closer than the encoder's means (L1, what they fit).
    redrawn = {name: ed.reconstruct_tensor(x) for name, ed in (("refined", refining), ("means", plain))}
    assert (redrawn["refined"] - x).abs().mean() < (redrawn["means"] - x).abs().mean()
    with pytest.raises(ValueError, match="refine"):
        rbedit.load(str(tiny_model), refine=-1)

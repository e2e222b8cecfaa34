"""Every command and shared option of the CLI, exit codes and error messages."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import device_under_test, digit_image


def run_rbedit(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    code = "import sys; from rbedit.cli.app import main; sys.argv = ['rbedit', *sys.argv[1:]]; main()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)


def test_help_and_completion_do_not_import_torch():
    code = (
        "import sys\n"
        "from rbedit.cli.app import main\n"
        "for argv in (['--help'], ['transfer', '--help'], ['sample', '--help'], ['models', '--help'], ['--version']):\n"
        "    sys.argv = ['rbedit', *argv]\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as e:\n"
        "        assert e.code in (0, None), (argv, e.code)\n"
        "heavy = [m for m in ('torch', 'numpy', 'PIL') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    assert "transfer" in out.stdout and "--strength" in out.stdout


def test_shell_completion_does_not_import_torch():
    code = (
        "import sys\n"
        "sys.argv = ['rbedit']\n"
        "from rbedit.cli.app import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('HEAVY', [m for m in ('torch', 'numpy', 'PIL') if m in sys.modules])\n"
    )
    env = {
        **__import__("os").environ,
        "_RBEDIT_COMPLETE": "complete_bash",
        "COMP_WORDS": "rbedit transfer a.png b.png --face all --landmarks dlib --format png --dev",
        "COMP_CWORD": "10",
    }
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert "--device" in out.stdout and "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_version(cli):
    from rbedit import __version__

    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"rbedit {__version__}"


def test_transfer_one_file(cli, tiny_model, tmp_path):
    Image.fromarray(digit_image(0)).save(tmp_path / "src.png")
    Image.fromarray(digit_image(1)).save(tmp_path / "tgt.png")
    out = tmp_path / "out.png"
    result = cli("transfer", tmp_path / "src.png", tmp_path / "tgt.png", "-o", out, "--model", tiny_model,
                 "--device", device_under_test())
    assert result.exit_code == 0, result.output
    import rbedit

    editor = rbedit.load(str(tiny_model), device=device_under_test())
    expected = editor.transfer(tmp_path / "src.png", tmp_path / "tgt.png")
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))
    half = tmp_path / "half.png"
    assert cli("transfer", tmp_path / "src.png", tmp_path / "tgt.png", "-o", half, "-m", tiny_model, "--strength", "0").exit_code == 0
    assert np.array_equal(np.asarray(Image.open(half)), np.asarray(editor.neutralize(tmp_path / "tgt.png")))


def test_neutralize_reconstruct_size_and_format(cli, tiny_model, digits_dir, tmp_path):
    for command in ("neutralize", "reconstruct"):
        result = cli(command, digits_dir, "-o", tmp_path / command, "-m", tiny_model, "--size", 32, "--format", "jpg")
        assert result.exit_code == 0, result.output
        out = tmp_path / command / "sub" / "c.jpg"
        assert Image.open(out).size == (32, 32)
        assert "3 done, 0 skipped, 0 failed" in result.stderr


def test_sample_grid_files_and_seed(cli, tiny_model, tmp_path):
    Image.fromarray(digit_image(2)).save(tmp_path / "d.png")
    args = ("sample", tmp_path / "d.png", "-n", 4, "-m", tiny_model)
    assert cli(*args, "--seed", 7, "-o", tmp_path / "g1.png").exit_code == 0
    assert cli(*args, "--seed", 7, "-o", tmp_path / "g2.png").exit_code == 0
    assert cli(*args, "--seed", 8, "-o", tmp_path / "g3.png").exit_code == 0
    g1, g2, g3 = (np.asarray(Image.open(tmp_path / f"g{i}.png")) for i in (1, 2, 3))
    assert np.array_equal(g1, g2) and not np.array_equal(g1, g3)
    assert g1.shape == (2 * 8 + 3 * 2, 2 * 8 + 3 * 2, 3)  # 2×2 grid of 8×8 with 2 px padding
    result = cli(*args, "--seed", 7, "-o", tmp_path / "many", "--temperature", 0.5)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "many").iterdir()) == [f"d_{k}.png" for k in range(4)]
    unseeded = cli(*args, "-o", tmp_path / "g4.png")
    assert "pass --seed" in unseeded.stderr
    # The API with the same seed gives the same samples.
    import rbedit

    editor = rbedit.load(str(tiny_model), device=device_under_test())
    api = editor.sample(tmp_path / "d.png", n=4, seed=7, temperature=0.5)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "many" / "d_3.png")), np.asarray(api[3]))


def test_encode_npz_and_jsonl(cli, tiny_model, digits_dir, tmp_path):
    assert cli("encode", digits_dir, "-o", tmp_path / "z.npz", "-m", tiny_model).exit_code == 0
    data = np.load(tmp_path / "z.npz")
    assert data["z"].shape == (3, 2) and data["e"].shape == (3, 2) and data["e_ref"].shape == (2,)
    assert [p.endswith(n) for p, n in zip(data["files"], ["a.png", "b.png", "c.png"])] == [True] * 3
    assert cli("encode", digits_dir / "a.png", "-o", tmp_path / "z.jsonl", "-m", tiny_model).exit_code == 0
    row = json.loads((tmp_path / "z.jsonl").read_text().splitlines()[0])
    assert np.allclose(row["z"], data["z"][0], atol=1e-5) and np.allclose(row["e"], data["e"][0], atol=1e-5)
    exists = cli("encode", digits_dir, "-o", tmp_path / "z.npz", "-m", tiny_model)
    assert exists.exit_code == 2 and "--overwrite" in exists.stderr
    assert cli("encode", digits_dir, "-o", tmp_path / "z.txt", "-m", tiny_model).exit_code == 2


def test_align_writes_prepared_input(cli, tiny_model, tmp_path):
    paper = np.full((20, 20, 3), 250, np.uint8)
    paper[4:16, 8:12] = 10
    Image.fromarray(paper).save(tmp_path / "scan.jpg")
    result = cli("align", tmp_path / "scan.jpg", "-o", tmp_path / "al", "-m", tiny_model)
    assert result.exit_code == 0, result.output
    out = np.asarray(Image.open(tmp_path / "al" / "scan.png"))
    assert out.shape == (8, 8, 3) and out[0, 0].max() < 30 and out[4, 4].min() > 150  # inverted, centred


def test_align_faces_without_a_face_model_levels_the_eyes(cli, tmp_path):
    from PIL import ImageDraw

    from rbedit.align.geometry import apply_transform, similarity_matrix
    from rbedit.align.template import STANDARD_MEAN_SHAPE, builtin_template
    from rbedit.landmarks import ibug

    # A face 180 px wide, tilted by 12°, whose eyes are bright dots; landmarks beside it (--landmarks file).
    landmarks = apply_transform(similarity_matrix(scale=180, angle_degrees=12, shift=(60, 40)), STANDARD_MEAN_SHAPE)
    photo = Image.new("RGB", (320, 300))
    for x, y in ibug.eye_centres(landmarks):
        ImageDraw.Draw(photo).ellipse((x - 5, y - 5, x + 5, y + 5), fill="white")
    photo.save(tmp_path / "face.png")
    (tmp_path / "face.json").write_text(json.dumps(landmarks.tolist()))

    result = cli("align", tmp_path / "face.png", "-o", tmp_path / "crop.png", "--faces", "--landmarks", "file")
    assert result.exit_code == 0, result.output
    crop = np.asarray(Image.open(tmp_path / "crop.png").convert("L"), dtype=np.float64)
    assert crop.shape == (96, 96)
    for left, expected in zip((0, 48), ibug.eye_centres(builtin_template(96))):  # image-left eye first
        half = crop[:, left : left + 48]
        ys, xs = np.nonzero(half > 128)
        found = [left + np.average(xs, weights=half[ys, xs]), np.average(ys, weights=half[ys, xs])]
        np.testing.assert_allclose(found, expected, atol=1.0)

    assert cli("align", tmp_path / "face.png", "-o", tmp_path / "c64.png", "--faces", "--landmarks", "file", "--size", "64").exit_code == 0
    assert Image.open(tmp_path / "c64.png").size == (64, 64)
    both = cli("align", tmp_path / "face.png", "-o", tmp_path / "x.png", "--faces", "-m", "digits")
    assert both.exit_code == 2 and "--model" in both.stderr


def test_models_list_and_info(cli, tiny_model):
    info = cli("models", "info", tiny_model)
    assert info.exit_code == 0, info.output
    assert "image_size" in info.stdout and "| sRb-VAE (e) | .05" in info.stdout and "F32" in info.stdout
    listing = cli("models", "list")
    assert listing.exit_code == 0 and "digits" in listing.stdout
    assert cli("models", "download", "not a repo").exit_code == 2


def test_errors_are_one_line_exit_1(cli, tiny_model, tmp_path):
    (tmp_path / "bad.png").write_text("not an image")
    result = cli("neutralize", tmp_path / "bad.png", "-o", tmp_path / "o.png", "-m", tiny_model)
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "bad.png: not an image file" in result.stderr
    assert "Traceback" not in result.output

    bad_model = cli("neutralize", tmp_path / "bad.png", "-o", tmp_path / "o.png", "-m", "nosuchmodel")
    assert bad_model.exit_code == 1 and bad_model.stderr.startswith("rbedit: error: unknown model")
    assert bad_model.stderr.count("\n") == 1


def test_debug_env_shows_traceback(tmp_path):
    env = {**__import__("os").environ, "RBEDIT_DEBUG": "1"}
    Image.fromarray(digit_image(0)).save(tmp_path / "a.png")
    out = run_rbedit("neutralize", str(tmp_path / "a.png"), "-o", str(tmp_path / "o.png"), "-m", "nosuchmodel", env=env)
    assert out.returncode == 1 and "Traceback" in out.stderr and "ModelRefError" in out.stderr


def test_the_console_entry_point_exits_with_the_commands_status(tiny_model, digits_dir, tmp_path):
    # main() leaves without interpreter teardown once torch is loaded: status, stderr and outputs must survive it.
    fine = run_rbedit("neutralize", str(digits_dir), "-o", str(tmp_path / "fine"), "-m", str(tiny_model))
    assert fine.returncode == 0 and "neutralize: 3 done, 0 skipped, 0 failed" in fine.stderr
    assert sorted(p.name for p in (tmp_path / "fine").rglob("*.png")) == ["a.png", "b.png", "c.png"]
    (digits_dir / "broken.png").write_bytes(b"not a png")
    some_bad = run_rbedit("neutralize", str(digits_dir), "-o", str(tmp_path / "bad"), "-m", str(tiny_model))
    assert some_bad.returncode == 1 and "broken.png" in some_bad.stderr and "3 done, 0 skipped, 1 failed" in some_bad.stderr
    usage = run_rbedit("neutralize", str(digits_dir), "-o", str(tmp_path / "x.png"), "-m", str(tiny_model))
    assert usage.returncode == 2


def test_usage_errors_exit_2(cli, tiny_model, digits_dir, tmp_path):
    assert cli("neutralize", digits_dir, "-o", tmp_path / "x.png", "-m", tiny_model).exit_code == 2  # folder → file
    assert cli("neutralize", tmp_path / "missing.png", "-o", tmp_path / "o", "-m", tiny_model).exit_code == 2
    assert cli("neutralize", digits_dir, "-m", tiny_model).exit_code == 2  # no -o
    assert cli("neutralize", digits_dir, "-o", tmp_path / "o", "--device", "tpu").exit_code == 2
    assert cli("neutralize", digits_dir, "-o", tmp_path / "o", "--format", "gifx").exit_code == 2
    assert cli("neutralize", digits_dir, "-o", tmp_path / "o", "--face", "biggest").exit_code == 2
    assert cli("sample", digits_dir / "a.png", "-o", tmp_path / "o.png", "--files").exit_code == 2
    assert cli("transfer", digits_dir, digits_dir, "-o", tmp_path / "o").exit_code == 2  # SOURCE folder
    assert cli("frobnicate").exit_code == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_missing_cuda_is_a_clear_error(cli, tiny_model, digits_dir, tmp_path):
    result = cli("neutralize", digits_dir, "-o", tmp_path / "o", "-m", tiny_model, "--device", "cuda")
    assert result.exit_code == 1
    assert "device 'cuda' requested" in result.stderr and "--device cpu" in result.stderr
    assert not (tmp_path / "o").exists()


def test_env_default_model(cli, tiny_model, digits_dir, tmp_path):
    result = cli("reconstruct", digits_dir / "a.png", "-o", tmp_path / "r.png", env={"RBEDIT_MODEL": str(tiny_model)})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.png").is_file()


def test_refine_gives_what_a_refining_editor_gives(cli, tiny_model, tmp_path):
    import rbedit

    Image.fromarray(digit_image(3)).save(tmp_path / "d.png")
    result = cli("reconstruct", tmp_path / "d.png", "-o", tmp_path / "r.png", "-m", tiny_model, "--refine", 5)
    assert result.exit_code == 0, result.output
    editor = rbedit.load(str(tiny_model), device=device_under_test(), refine=5)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "r.png")), np.asarray(editor.reconstruct(tmp_path / "d.png")))
    plain = cli("reconstruct", tmp_path / "d.png", "-o", tmp_path / "p.png", "-m", tiny_model)
    assert plain.exit_code == 0 and not np.array_equal(*(np.asarray(Image.open(tmp_path / n)) for n in ("r.png", "p.png")))
    bad = cli("reconstruct", tmp_path / "d.png", "-o", tmp_path / "b.png", "-m", tiny_model, "--refine", -1)
    assert bad.exit_code != 0 and not (tmp_path / "b.png").exists()

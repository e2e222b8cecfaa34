"""Folders: mirroring, skip/overwrite, resume after a kill, report, input protection, alpha/EXIF, faces."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from conftest import digit_image, write_tiny_checkpoint


def tree(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_outputs_mirror_the_tree_and_skip_existing(cli, tiny_model, digits_dir, tmp_path):
    out = tmp_path / "out"
    first = cli("neutralize", digits_dir, "-o", out, "-m", tiny_model)
    assert first.exit_code == 0, first.output
    assert tree(out) == ["a.png", "b.png", "sub/c.png"]
    before = {p: (out / p).stat().st_mtime_ns for p in tree(out)}
    again = cli("neutralize", digits_dir, "-o", out, "-m", tiny_model)
    assert "0 done, 3 skipped, 0 failed" in again.stderr
    assert {p: (out / p).stat().st_mtime_ns for p in tree(out)} == before
    forced = cli("neutralize", digits_dir, "-o", out, "-m", tiny_model, "--overwrite")
    assert "3 done, 0 skipped" in forced.stderr


def test_several_inputs_mirror_from_their_common_parent(cli, tiny_model, digits_dir, tmp_path):
    other = tmp_path / "more"
    other.mkdir()
    Image.fromarray(digit_image(9)).save(other / "a.jpg")
    Image.fromarray(digit_image(8)).save(digits_dir / "a.jpg")  # same stem as a.png
    result = cli("reconstruct", digits_dir, other / "a.jpg", "-o", tmp_path / "out", "-m", tiny_model)
    assert result.exit_code == 0, result.output
    assert tree(tmp_path / "out") == ["in/a_jpg.png", "in/a_png.png", "in/b.png", "in/sub/c.png", "more/a.png"]


def test_bad_files_reported_and_skipped(cli, tiny_model, digits_dir, tmp_path):
    (digits_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (digits_dir / "notes.txt").write_text("ignored: not an image extension")
    report = tmp_path / "report.jsonl"
    result = cli("neutralize", digits_dir, "-o", tmp_path / "out", "-m", tiny_model, "--report", report)
    assert result.exit_code == 1
    assert "3 done, 0 skipped, 1 failed" in result.stderr and "broken.png" in result.stderr
    lines = [json.loads(line) for line in report.read_text().splitlines()]
    assert len(lines) == 4 and {tuple(sorted(line)) for line in lines} == {("error", "input", "output", "status")}
    status = {line["input"].rsplit("/", 1)[-1]: line["status"] for line in lines}
    assert status == {"a.png": "done", "b.png": "done", "c.png": "done", "broken.png": "failed"}
    failed = next(line for line in lines if line["status"] == "failed")
    assert failed["output"] is None and "broken.png" in failed["error"]
    assert tree(tmp_path / "out") == ["a.png", "b.png", "sub/c.png"]


def test_killed_run_resumes_to_identical_outputs(cli, tiny_model, tmp_path, monkeypatch):
    src = tmp_path / "many"
    src.mkdir()
    for i in range(11):
        Image.fromarray(digit_image(i, colour=[40 + 20 * i, 200, 90])).save(src / f"{i:02d}.png")
    args = ("transfer", src / "00.png", src, "-m", tiny_model, "--batch-size", 4)
    assert cli(*args, "-o", tmp_path / "whole").exit_code == 0

    import rbedit.imageio as imageio

    real_write, calls = imageio.write_image, []

    def dies_on_sixth(*a, **kw):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_write(*a, **kw)

    monkeypatch.setattr("rbedit.cli.editing.write_image", dies_on_sixth)
    killed = cli(*args, "-o", tmp_path / "resumed")
    assert killed.exit_code != 0
    assert len(tree(tmp_path / "resumed")) == 5  # no partial or temporary file left
    monkeypatch.setattr("rbedit.cli.editing.write_image", real_write)
    resumed = cli(*args, "-o", tmp_path / "resumed")
    assert "6 done, 5 skipped, 0 failed" in resumed.stderr
    assert tree(tmp_path / "whole") == tree(tmp_path / "resumed")
    for rel in tree(tmp_path / "whole"):
        assert (tmp_path / "whole" / rel).read_bytes() == (tmp_path / "resumed" / rel).read_bytes(), rel


def test_worker_processes_write_what_threads_write(cli, tiny_model, tmp_path):
    src = tmp_path / "many"
    (src / "sub").mkdir(parents=True)
    for i in range(11):
        folder = src / "sub" if i % 3 else src
        Image.fromarray(digit_image(i, colour=[40 + 20 * i, 200, 90])).save(folder / f"{i:02d}.png")
    (src / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    args = ("transfer", src / "00.png", src, "-m", tiny_model, "--batch-size", 4)
    threads = cli(*args, "-o", tmp_path / "threads", "--workers", 0)
    forked = cli(*args, "-o", tmp_path / "forked", "--workers", 2)
    for result in (threads, forked):
        assert result.exit_code == 1 and "11 done, 0 skipped, 1 failed" in result.stderr
        assert "broken.png" in result.stderr
    assert tree(tmp_path / "threads") == tree(tmp_path / "forked") and len(tree(tmp_path / "forked")) == 11
    for rel in tree(tmp_path / "threads"):
        assert (tmp_path / "threads" / rel).read_bytes() == (tmp_path / "forked" / rel).read_bytes(), rel


@pytest.mark.parametrize("workers", [0, 2])
@pytest.mark.parametrize("overlap", [False, True])
def test_every_schedule_writes_the_same(tmp_path, monkeypatch, workers, overlap):
    from rbedit import batch

    monkeypatch.setattr(batch, "MAX_CHUNK_BYTES", 10)  # also splits chunks: 3 items of 8 bytes pass it
    src, out = tmp_path / "src", tmp_path / f"out-{workers}-{overlap}"
    src.mkdir()
    for i in range(13):
        (src / f"{i:02d}.png").write_text("bad" if i == 5 else f"{i:02d}")
    jobs = [batch.Job(path, path.name, out / path.name) for path in sorted(src.iterdir())]

    def load(job):
        text = job.input.read_text()
        if text == "bad":
            raise ValueError(f"{job.input}: not a number")
        return [SimpleNamespace(text=text, picture=SimpleNamespace(rgb=np.zeros(8, np.uint8)))] * (1 + int(text) % 2)

    def save(job, items, results):
        job.output.parent.mkdir(exist_ok=True)
        job.output.write_text("+".join(results))
        return [job.output]

    reporter = batch.Reporter(total=len(jobs), report=tmp_path / f"report-{workers}-{overlap}.jsonl")
    batch.run(
        jobs, load=load, edit=lambda items: [item.text * 2 for item in items], save=save,
        reporter=reporter, batch_size=4, workers=workers, overlap=overlap,
    )
    reporter.close()
    lines = [json.loads(line) for line in (tmp_path / f"report-{workers}-{overlap}.jsonl").read_text().splitlines()]
    assert {Path(line["input"]).name: line["status"] for line in lines} == {
        job.input.name: "failed" if job.input.name == "05.png" else "done" for job in jobs
    }
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        f"{i:02d}.png": "+".join([f"{i:02d}" * 2] * (1 + i % 2)) for i in range(13) if i != 5
    }


KILLED_MAIN = """
import os, signal, sys, time
from pathlib import Path, PurePosixPath
from rbedit import batch

class DiesOnFirstOutcome:  # the main process is killed outright once its workers are busy
    def record(self, outcome):
        import multiprocessing
        Path(sys.argv[1]).write_text(" ".join(str(p.pid) for p in multiprocessing.active_children()))
        os.kill(os.getpid(), signal.SIGKILL)

def load(job):  # each file marks when it is read and when it is written
    (Path(sys.argv[2]) / f"read-{job.input}").touch()
    return [job]

def save(job, items, results):
    (Path(sys.argv[2]) / f"written-{job.input}").touch()
    return []

jobs = [batch.Job(Path(str(i)), PurePosixPath(str(i))) for i in range(200)]
batch.run(jobs, load=load, edit=lambda items: time.sleep(1.0) or items, save=save,  # chunks outlast the watch's poll
          reporter=DiesOnFirstOutcome(), batch_size=2, workers=2)
"""


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_workers_exit_when_the_main_process_is_killed(tmp_path):
    import subprocess
    import sys
    import time

    pids_file, marks = tmp_path / "workers", tmp_path / "marks"
    marks.mkdir()
    run = subprocess.run([sys.executable, "-c", KILLED_MAIN, str(pids_file), str(marks)], timeout=60)
    assert run.returncode == -9
    pids = [int(pid) for pid in pids_file.read_text().split()]
    assert len(pids) == 2

    def alive(pid):  # (an exited orphan may linger as a zombie until it is reaped)
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(alive, pids))  # (without the watch they would wait for work forever)
    read = {p.name.removeprefix("read-") for p in marks.glob("read-*")}
    written = {p.name.removeprefix("written-") for p in marks.glob("written-*")}
    assert read == written and len(read) > 2  # chunks under way were finished, not cut off


REFAULTS = """
import resource, sys
import numpy as np
from rbedit import batch

if sys.argv[1] == "kept":
    batch._keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
start = faults()
for _ in range(20):  # a model call's pattern: activations of a few megabytes each, all freed at the end
    blocks = [np.empty(megabytes * 2**20, np.uint8) for megabytes in (4, 4, 2, 2, 1, 4)]
    for block in blocks:
        block.fill(1)
    del blocks, block
print(faults() - start)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_workers_reuse_freed_memory_instead_of_faulting_it_in_again():
    import subprocess
    import sys

    def faults(setting):
        run = subprocess.run([sys.executable, "-c", REFAULTS, setting], capture_output=True, text=True, check=True)
        return int(run.stdout)

    default, kept = faults("default"), faults("kept")
    assert kept * 3 < default, (kept, default)  # (glibc 2.36: ~3,000 against ~55,000)


def test_a_dead_worker_stops_the_run_with_one_line(cli, tiny_model, digits_dir, tmp_path, monkeypatch):
    import os

    import rbedit.cli.editing as editing

    real_prepare = editing.prepare_file

    def dies_on_b(path, editor):
        if path.name == "b.png":
            os._exit(1)  # like a worker killed by the OOM killer
        return real_prepare(path, editor)

    monkeypatch.setattr(editing, "prepare_file", dies_on_b)
    result = cli("neutralize", digits_dir, "-o", tmp_path / "out", "-m", tiny_model, "--workers", 1)
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        "rbedit: error: a worker process died while reading, editing or writing images; finished outputs are kept, "
        "so rerunning resumes (--workers 0 works without worker processes)"
    ]


def test_inputs_are_never_overwritten(cli, tiny_model, digits_dir, tmp_path):
    original = (digits_dir / "a.png").read_bytes()
    same_file = cli("neutralize", digits_dir / "a.png", "-o", digits_dir / "a.png", "-m", tiny_model, "--overwrite")
    assert same_file.exit_code == 2 and "input" in same_file.stderr
    same_dir = cli("neutralize", digits_dir, "-o", digits_dir, "-m", tiny_model, "--overwrite")
    assert same_dir.exit_code == 2
    # OUT is the parent of one input folder: in/sub/c.png would map onto in/c.png (not an input) – fine;
    # but in/ mirrored into its own parent with sub/ as OUT collides with the inputs and must fail per file.
    (digits_dir / "sub" / "a.png").write_bytes(original)
    clash = cli("neutralize", digits_dir / "a.png", digits_dir / "sub" / "a.png", "-o", digits_dir, "-m", tiny_model, "--overwrite")
    assert clash.exit_code == 1 and "refusing to overwrite an input" in clash.stderr
    assert (digits_dir / "a.png").read_bytes() == original and (digits_dir / "sub" / "a.png").read_bytes() == original


def test_alpha_kept_through_the_cli(cli, tiny_model, tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[2:6, 3:5] = [0, 0, 0, 255]  # black digit on a transparent sheet, model size already
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert cli("neutralize", tmp_path / "t.png", "-o", tmp_path / "o.png", "-m", tiny_model).exit_code == 0
    out = Image.open(tmp_path / "o.png")
    assert out.mode == "RGBA" and np.asarray(out)[..., 3].tolist() == rgba[..., 3].tolist()
    assert cli("neutralize", tmp_path / "t.png", "-o", tmp_path / "o.jpg", "-m", tiny_model).exit_code == 0
    assert Image.open(tmp_path / "o.jpg").mode == "RGB"


def test_exif_orientation_through_the_cli(cli, tiny_model, tmp_path):
    arr = np.zeros((8, 16, 3), np.uint8)
    arr[2:6, 1:5] = 255
    exif = Image.Exif()
    exif[0x0112] = 8  # displayed rotated 90° counter-clockwise
    Image.fromarray(arr).save(tmp_path / "r.jpg", exif=exif.tobytes(), quality=100)
    assert cli("align", tmp_path / "r.jpg", "-o", tmp_path / "a.png", "-m", tiny_model).exit_code == 0
    plain = np.asarray(Image.fromarray(arr).transpose(Image.ROTATE_90))
    Image.fromarray(plain).save(tmp_path / "p.png")
    assert cli("align", tmp_path / "p.png", "-o", tmp_path / "b.png", "-m", tiny_model).exit_code == 0
    a, b = (np.asarray(Image.open(tmp_path / n)).astype(int) for n in ("a.png", "b.png"))
    assert np.abs(a - b).max() < 40  # same geometry (JPEG noise aside)


@pytest.fixture
def faces_stub(monkeypatch):
    """Stand-in for rbedit.align.pipeline: one face per 'face' box of a photo; paste writes the crop top-left."""
    import rbedit.align.pipeline as pipeline

    calls = {}

    def align_faces(image, *, template, size, landmarks, face, source):
        calls.update(landmarks=landmarks, face=face, source=source)
        s = size
        if image.mean() < 1:
            raise pipeline.NoFaceError(f"{source}: no face found (landmarks: {landmarks})")
        faces = [SimpleNamespace(crop=image[:s, :s].copy(), matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]]))]
        if face == "all":
            faces.append(SimpleNamespace(crop=image[-s:, -s:].copy(), matrix=np.array([[1.0, 0, 0], [0, 1.0, 0]])))
        return faces

    def paste_back(image, edited_crop, face):
        out = image.copy()
        s = edited_crop.shape[0]
        out[:s, :s] = edited_crop
        return out

    monkeypatch.setattr(pipeline, "align_faces", align_faces)
    monkeypatch.setattr(pipeline, "paste_back", paste_back)
    return calls


def test_faces_paste_back_crop_and_errors(cli, faces_stub, tmp_path):
    model = write_tiny_checkpoint(tmp_path / "faces", domain="faces")
    photo = np.random.default_rng(0).integers(1, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(photo).save(tmp_path / "p.png")
    Image.fromarray(np.zeros((20, 20, 3), np.uint8)).save(tmp_path / "blank.png")
    result = cli("neutralize", tmp_path / "p.png", "-o", tmp_path / "pasted.png", "-m", model, "--landmarks", "file")
    assert result.exit_code == 0, result.output
    pasted = np.asarray(Image.open(tmp_path / "pasted.png"))
    assert pasted.shape == (20, 30, 3) and np.array_equal(pasted[8:], photo[8:])  # photo kept outside the face
    assert faces_stub == {"landmarks": "file", "face": "largest", "source": tmp_path / "p.png"}
    crop = cli("neutralize", tmp_path / "p.png", "-o", tmp_path / "crops", "-m", model, "--crop", "--face", "all")
    assert crop.exit_code == 0, crop.output
    assert tree(tmp_path / "crops") == ["p.png", "p_1.png"]
    assert Image.open(tmp_path / "crops" / "p.png").size == (8, 8)
    blank = cli("neutralize", tmp_path / "blank.png", "-o", tmp_path / "b.png", "-m", model)
    assert blank.exit_code == 1 and "blank.png: no face found" in blank.stderr
    assert blank.stderr.count("\n") == 1


def test_sample_folder_is_deterministic_and_resumes(cli, tiny_model, digits_dir, tmp_path):
    args = ("sample", digits_dir, "-n", 3, "--seed", 5, "-m", tiny_model)
    assert cli(*args, "-o", tmp_path / "a").exit_code == 0
    assert tree(tmp_path / "a") == [f"{name}_{k}.png" for name in ("a", "b", "sub/c") for k in range(3)]
    (tmp_path / "a" / "b_2.png").unlink()  # b unfinished: its last sample is missing
    again = cli(*args, "-o", tmp_path / "a")
    assert "1 done, 2 skipped" in again.stderr
    assert cli(*args, "-o", tmp_path / "b").exit_code == 0
    for rel in tree(tmp_path / "b"):
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    # Different files get different samples (seeds derived from --seed and the path).
    assert (tmp_path / "b" / "a_0.png").read_bytes() != (tmp_path / "b" / "b_0.png").read_bytes()
    grids = cli(*args, "--grid", "-o", tmp_path / "g")
    assert grids.exit_code == 0 and tree(tmp_path / "g") == ["a.png", "b.png", "sub/c.png"]


def test_output_folder_inside_the_input_is_not_walked(cli, tiny_model, digits_dir):
    for _ in range(2):
        result = cli("neutralize", digits_dir, "-o", digits_dir / "out", "-m", tiny_model)
        assert result.exit_code == 0, result.output
    assert tree(digits_dir / "out") == ["a.png", "b.png", "sub/c.png"]
    assert "0 done, 3 skipped" in result.stderr

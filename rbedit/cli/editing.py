"""What every image-editing command does: plan outputs, load the model, stream, report.

Imported only inside command bodies (it pulls in torch through the editor).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer
from rich.console import Console

from rbedit import batch
from rbedit.editor import Editor, load
from rbedit.imageio import read_image, write_image
from rbedit.prepare import Prepared, finish, prepare

console = Console(stderr=True, soft_wrap=True)  # one line per message, never wrapped


@dataclass
class Common:
    """The options every editing command shares."""

    model: str | None
    device: str
    batch_size: int
    fmt: str = "png"
    overwrite: bool = False
    report: Path | None = None
    size: int | None = None
    landmarks: str = "dlib"
    face: str = "largest"
    crop: bool | None = None
    workers: int | None = None  # None: stage_workers decides
    refine: int = 0  # gradient steps on each image's latents (Editor.refine)


# Runs shorter than this many batches stay in this process: forking workers
# costs more than it saves.
WORKER_MIN_BATCHES = 4
MAX_AUTO_WORKERS = 8


def stage_workers(common: Common, jobs: int) -> int:
    """How many forked processes share the batch (0: none; see batch.run)."""
    import os

    if common.workers is not None:
        return common.workers
    if jobs < WORKER_MIN_BATCHES * common.batch_size or common.landmarks == "fan":
        return 0  # (fan may run its network on CUDA, which a forked process cannot use)
    return min(os.cpu_count() or 1, MAX_AUTO_WORKERS)


def plan_or_exit(inputs: list[Path], output: Path, fmt: str) -> batch.Plan:
    """Plan the outputs; a plan that cannot work is a usage error (exit 2)."""
    try:
        result = batch.plan(inputs, output, fmt=fmt)
    except batch.PlanError as err:
        raise typer.BadParameter(str(err)) from None
    if result.single_file_output and output.exists() and batch.file_key(output) in result.protected:
        raise typer.BadParameter(f"-o {output} is the input file; write somewhere else")
    return result


# Runs this small use one CPU thread: splitting a few small images over cores
# gains little, and costs a lot when the cores are busy with other work.
SMALL_RUN_IMAGES = 16


@contextmanager
def cpu_threads_for(images: int) -> Iterator[None]:
    """One torch CPU thread while editing fewer than SMALL_RUN_IMAGES images (restored after)."""
    import torch

    previous = torch.get_num_threads()
    if images < SMALL_RUN_IMAGES:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def load_editor(common: Common) -> Editor:
    return load(
        common.model,
        device=common.device,
        batch_size=common.batch_size,
        landmarks=common.landmarks,
        face=common.face,
        refine=common.refine,
    )


def prepare_file(path: Path, editor: Editor) -> list[Prepared]:
    """Read and prepare one file (errors name the file)."""
    return prepare(read_image(path), editor.config, landmarks=editor.landmarks, face=editor.face)


def fixed_shape(editor: Editor, fn: Callable, rows: int) -> Callable[[list[Prepared]], list[np.ndarray]]:
    """Run fn on model batches that always have `rows` rows (the last one padded).

    Every model call then has the same shape whatever files were skipped, so a
    resumed run writes byte-identical outputs to an uninterrupted one.
    """
    import torch

    from rbedit.pixels import model_to_uint8

    def edit(items: list[Prepared]) -> list[np.ndarray]:
        x = editor.to_model(np.stack([item.input for item in items]))  # (N, 3, S, S)
        outs = []
        for i in range(0, len(x), rows):
            chunk = x[i : i + rows]
            n = len(chunk)
            if n < rows:
                chunk = torch.cat([chunk, chunk[-1:].expand(rows - n, -1, -1, -1)])
            outs.append(model_to_uint8(fn(chunk)[:n]))
        return list(np.concatenate(outs))

    return edit


def output_name(path: Path, index: int) -> Path:
    """Extra outputs of one input (several faces, samples) get _N before the extension."""
    return path if index == 0 else path.with_name(f"{path.stem}_{index}{path.suffix}")


def run_image_command(
    name: str,
    work: batch.Plan,
    common: Common,
    *,
    operation: Callable[[Editor], Callable],
) -> None:
    """Load the model, edit every planned input with operation(editor)(x) → y, write, report; exit 1 if any failed."""
    with cpu_threads_for(len(work.jobs)):
        _run_image_command(name, work, common, operation=operation)


def _run_image_command(name: str, work: batch.Plan, common: Common, *, operation: Callable[[Editor], Callable]) -> None:
    editor = load_editor(common)
    rows = min(common.batch_size, len(work.jobs))

    def save(job: batch.Job, items: list[Prepared], edited: list[np.ndarray]) -> list[Path]:
        results = finish(items, edited, editor.config, crop=common.crop, size=common.size)
        return [
            write_image(output_name(job.output, i), rgb, alpha, protected=work.protected)
            for i, (rgb, alpha) in enumerate(results)
        ]

    execute(
        name,
        work,
        common,
        load=lambda job: prepare_file(job.input, editor),
        edit=fixed_shape(editor, operation(editor), rows),
        save=save,
        editor=editor,
    )


def execute(name: str, work: batch.Plan, common: Common, *, load, edit, save, editor: Editor | None = None) -> None:
    """Stream the plan through load/edit/save with progress and report; exit 1 if a file failed.

    With the editor's model on an accelerator, reading and writing overlap its
    work; on the CPU (or with no model) each worker reads, edits and writes
    whole chunks (see batch.run).
    """
    reporter = batch.Reporter(total=len(work.jobs), report=common.report, console=console, label=name)
    try:
        batch.run(
            work.jobs,
            load=load,
            edit=edit,
            save=save,
            reporter=reporter,
            batch_size=common.batch_size,
            overwrite=common.overwrite,
            workers=stage_workers(common, len(work.jobs)),
            overlap=editor is not None and editor.device.type != "cpu",
        )
    finally:
        reporter.close()
    finish_run(name, work, reporter)


def finish_run(name: str, work: batch.Plan, reporter: batch.Reporter) -> None:
    """Summary line for batches (a single file says only what went wrong); exit 1 if any file failed."""
    if len(work.jobs) == 1 and reporter.counts["skipped"]:
        console.print(f"{name}: {work.jobs[0].output} exists, skipped (pass --overwrite to replace it)", highlight=False)
    elif len(work.jobs) > 1:
        console.print(reporter.summary(name), highlight=False)
    if reporter.failed:
        raise typer.Exit(1)

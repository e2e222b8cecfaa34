"""`rbedit encode INPUT... -o latents.npz|latents.jsonl`: posterior means z and e per image.

npz: arrays `files` (input paths), `face` (face index, 0 for digits), `z`
(N, z_dim), `e` (N, e_dim) and `e_ref` (e_dim,). jsonl: one object per image
with `file`, `face`, `z` and `e`. Written atomically once all files are read.
"""

from pathlib import Path
from typing import Annotated

import typer

from rbedit.cli import options as opt

LATENT_FORMATS = (".npz", ".jsonl")


def encode(
    inputs: opt.Inputs,
    output: Annotated[
        Path, typer.Option("--output", "-o", metavar="FILE", help="latents.npz or latents.jsonl.", show_default=False)
    ],
    model: opt.Model = None,
    device: opt.Device = "auto",
    batch_size: opt.BatchSize = 64,
    overwrite: opt.Overwrite = False,
    report: opt.Report = None,
    landmarks: opt.Landmarks = "dlib",
    face: opt.Face = "largest",
    refine: opt.Refine = 0,
) -> None:
    """Write z and e of every image to .npz or .jsonl.

    Posterior means of the common factors z and the target factors e (refined
    with --refine), one row per image (per face), for feature learning and analysis.
    """
    from rbedit.batch import Job, Plan, PlanError, collect_inputs
    from rbedit.cli.editing import Common, cpu_threads_for, execute, load_editor, prepare_file

    suffix = output.suffix.lower()
    if suffix not in LATENT_FORMATS:
        raise typer.BadParameter(f"{output}: use a .npz or .jsonl file name", param_hint="-o")
    if output.exists() and not overwrite:
        raise typer.BadParameter(f"{output} exists; pass --overwrite to replace it", param_hint="-o")
    try:
        found = collect_inputs(inputs)
    except PlanError as err:
        raise typer.BadParameter(str(err)) from None
    if not found:
        raise typer.BadParameter("no input images found")
    work = Plan([Job(path, rel) for path, rel in found], protected=set())
    # workers=0: save() collects rows in this process, so it must not run in forked workers.
    common = Common(model, device, batch_size, landmarks=landmarks, face=face, overwrite=True, report=report, workers=0,
                    refine=refine)
    editor = load_editor(common)
    rows: list[tuple[str, int, list, list]] = []

    def edit(items):
        import numpy as np

        z, e = editor.encode_tensor(editor.to_model(np.stack([item.input for item in items])))
        return list(zip(z.float().cpu().numpy(), e.float().cpu().numpy()))

    def save(job, items, results):
        for item, (z, e) in zip(items, results):
            rows.append((str(job.input), item.index, z, e))
        return [output]

    stop = None
    try:
        with cpu_threads_for(len(work.jobs)):
            execute(
                "encode", work, common, load=lambda job: prepare_file(job.input, editor), edit=edit, save=save,
                editor=editor,
            )
    except typer.Exit as some_failed:  # still write what was encoded; Ctrl-C or a crash writes nothing
        stop = some_failed
    if rows:
        _write_latents(output, rows, editor.model.e_ref.detach().float().cpu().numpy())
    if stop is not None:
        raise stop


def _write_latents(path: Path, rows, e_ref) -> None:
    import json

    import numpy as np

    from rbedit.atomic import atomic_file

    with atomic_file(path) as f:
        if path.suffix.lower() == ".npz":
            np.savez(
                f,
                files=np.array([r[0] for r in rows]),
                face=np.array([r[1] for r in rows], dtype=np.int64),
                z=np.stack([r[2] for r in rows]).astype(np.float32),
                e=np.stack([r[3] for r in rows]).astype(np.float32),
                e_ref=e_ref.astype(np.float32),
            )
        else:
            for file, index, z, e in rows:
                line = {"file": file, "face": index, "z": z.tolist(), "e": e.tolist()}
                f.write((json.dumps(line) + "\n").encode())

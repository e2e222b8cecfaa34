"""`rbedit sample INPUT --n 8 -o OUT`: keep z (which digit / who), draw new e.

e comes from the Gaussian fitted to the training images' e when the checkpoint
carries one (the shipped digits model does), or with `--prior standard` from
the paper's N(0, T² I).

`-o grid.png` writes one grid image; `-o folder/` writes N images per input
(INPUT_0.png … INPUT_7.png). Folders of inputs get one grid (`--grid`) or N
files each, mirrored under OUT. With several inputs each file's seed is derived
from --seed and its path, so reruns and resumed runs give the same samples.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbedit.cli import options as opt


def _prior(ctx: typer.Context, value: Optional[str]) -> Optional[str]:
    if ctx.resilient_parsing or value is None:
        return value
    if value not in ("fitted", "standard"):
        raise typer.BadParameter("use fitted or standard")
    return value


def sample(
    inputs: opt.Inputs,
    output: opt.Output,
    n: Annotated[int, typer.Option("--n", "-n", min=1, metavar="N", help="Samples per input.")] = 8,
    seed: opt.Seed = None,
    temperature: Annotated[
        float, typer.Option("--temperature", "-t", min=0.0, metavar="T", help="Scale T of the prior's spread (0: its mean).")
    ] = 1.0,
    prior: Annotated[
        Optional[str],
        typer.Option(
            "--prior",
            metavar="fitted|standard",
            help="Draw e from the Gaussian fitted to the training data, or from N(0, T² I) as the paper "
            "(default: fitted when the model has one).",
            show_default=False,
            callback=_prior,
        ),
    ] = None,
    grid: Annotated[
        Optional[bool],
        typer.Option("--grid/--files", help="One grid image per input, or N files (default: grid when -o is an image file).", show_default=False),
    ] = None,
    columns: Annotated[Optional[int], typer.Option("--columns", min=1, metavar="N", help="Grid columns (default: about √N).", show_default=False)] = None,
    model: opt.Model = None,
    device: opt.Device = "auto",
    size: opt.Size = None,
    batch_size: opt.BatchSize = 64,
    workers: opt.Workers = None,
    fmt: opt.Format = "png",
    overwrite: opt.Overwrite = False,
    report: opt.Report = None,
    landmarks: opt.Landmarks = "dlib",
    face: opt.Face = "largest",
    crop: opt.Crop = None,
    refine: opt.Refine = 0,
) -> None:
    """Keep z, draw N new styles / expressions e.

    -o grid.png writes one grid; -o FOLDER writes N images per input
    (NAME_0.png ... NAME_7.png), or one grid per input with --grid.
    """
    import secrets

    from rbedit.cli.editing import Common, console, cpu_threads_for, execute, load_editor, plan_or_exit, prepare_file
    from rbedit.imageio import WRITE_FORMATS

    common = Common(model, device, batch_size, fmt, overwrite, report, size, landmarks, face, crop, workers=workers, refine=refine)
    file_output = output.suffix.lower() in WRITE_FORMATS
    grid = file_output if grid is None else grid
    if file_output and not grid:
        raise typer.BadParameter(f"--files needs a folder, and {output} names an image file", param_hint="-o")
    work = plan_or_exit(inputs, output, fmt)
    width = len(str(n - 1))
    base_seed = seed if seed is not None else secrets.randbits(31)
    seeds, bases = {}, {}
    for job in work.jobs:
        seeds[str(job.input)] = base_seed if len(work.jobs) == 1 else _derived_seed(base_seed, str(job.rel))
        bases[str(job.input)] = job.output
        if not grid:  # the last sample marks a finished input (each file is written atomically, in order)
            job.output = _sample_path(job.output, n - 1, width)
    if seed is None:
        console.print(f"sample: seed {base_seed} (pass --seed {base_seed} to repeat)", highlight=False)
    editor = load_editor(common)
    if prior == "fitted" and editor.config.e_prior != "fitted":
        name = editor.source.ref if editor.source else "the model"
        raise typer.BadParameter(f"{name} carries no fitted prior of e; use --prior standard", param_hint="--prior")

    def edit(items):
        from rbedit.pixels import model_to_uint8

        return [
            list(
                model_to_uint8(
                    editor.sample_tensor(
                        editor.to_model(item.input), n, seed=seeds[str(item.picture.path)],
                        temperature=temperature,
                        prior=prior,
                    )
                )
            )
            for item in items
        ]

    def save(job, items, results):
        from rbedit.imageio import make_grid, write_image
        from rbedit.prepare import finish

        samples = results[0]  # faces: the selected face of the photo
        if grid:
            tiles = [rgb for rgb, _ in finish(items[:1] * n, samples, editor.config, crop=True, size=size)]
            return [write_image(job.output, make_grid(tiles, columns=columns), protected=work.protected)]
        written = []
        for k, edited in enumerate(samples):
            rgb, alpha = finish(items[:1], [edited], editor.config, crop=crop, size=size)[0]
            path = _sample_path(bases[str(job.input)], k, width)
            written.append(write_image(path, rgb, alpha, protected=work.protected))
        return written

    with cpu_threads_for(len(work.jobs) * n):
        execute(
            "sample", work, common, load=lambda job: prepare_file(job.input, editor), edit=edit, save=save,
            editor=editor,
        )


def _derived_seed(base: int, name: str) -> int:
    import hashlib

    digest = hashlib.sha256(f"{base}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _sample_path(path: Path, k: int, width: int) -> Path:
    return path.with_name(f"{path.stem}_{k:0{width}d}{path.suffix}")


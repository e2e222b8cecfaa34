"""Options shared by several commands, declared once as Annotated aliases.

Nothing here imports torch, numpy or PIL at import time (`rbedit --help` stays fast).
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from rbedit.devices import check_device_spec  # pure string checks, no torch

FACES_PANEL = "Faces"
BATCH_PANEL = "Batch"


def _device(ctx: typer.Context, value: str) -> str:
    if ctx.resilient_parsing:
        return value
    try:
        return check_device_spec(value)
    except ValueError as err:
        raise typer.BadParameter(str(err)) from None


# Callbacks import their constants lazily, and do nothing while the shell
# completes a command line (resilient parsing), so neither `rbedit --help` nor
# completion imports numpy, PIL or torch.


def _format(ctx: typer.Context, value: str) -> str:
    if ctx.resilient_parsing:
        return value
    from rbedit.imageio import WRITE_FORMATS

    fmt = value.lower().lstrip(".")
    if f".{fmt}" not in WRITE_FORMATS:
        raise typer.BadParameter(f"use one of {', '.join(sorted({s[1:] for s in WRITE_FORMATS}))}")
    return fmt


def _landmarks(ctx: typer.Context, value: str) -> str:
    if ctx.resilient_parsing:
        return value
    from rbedit.prepare import LANDMARK_BACKENDS

    if value not in LANDMARK_BACKENDS:
        raise typer.BadParameter(f"use one of {', '.join(LANDMARK_BACKENDS)}")
    return value


def _face(ctx: typer.Context, value: str) -> str:
    if ctx.resilient_parsing:
        return value
    from rbedit.prepare import FACE_CHOICE

    if not FACE_CHOICE.match(value):
        raise typer.BadParameter("use largest, all, or a face index N (0 = leftmost)")
    return value


Inputs = Annotated[
    list[Path],
    typer.Argument(help="Image files or folders (walked recursively).", show_default=False, metavar="INPUT"),
]
Output = Annotated[
    Path,
    typer.Option(
        "--output",
        "-o",
        metavar="OUT",
        help="Output image file (one input) or folder (mirrors the input tree).",
        show_default=False,
    ),
]
Model = Annotated[
    Optional[str],
    typer.Option(
        "--model",
        "-m",
        metavar="MODEL",
        help="Embedded name (digits), checkpoint folder, or Hub id ORG/REPO[@REV]. Default: $RBEDIT_MODEL, else digits.",
        show_default=False,
    ),
]
Device = Annotated[
    str,
    typer.Option("--device", metavar="DEVICE", help="auto (CUDA when present), cpu, cuda or cuda:N.", callback=_device),
]
Refine = Annotated[
    int,
    typer.Option(
        "--refine",
        min=0,
        metavar="N",
        help="Fit each image's z and e by N gradient steps past the encoder's guess before editing: "
        "slower, keeps more of the image (digits, 30 steps: transfers keep B's digit 86.0 % against 84.4 %).",
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, metavar="N", help="Images per model call.", rich_help_panel=BATCH_PANEL)]
Workers = Annotated[
    Optional[int],
    typer.Option(
        "--workers",
        min=0,
        metavar="N",
        help="Processes that share the batch (model on the CPU: each reads, edits and writes whole batches; on a GPU: they read and write beside it). 0: none. Default: one per CPU core, at most 8, for runs of several batches.",
        rich_help_panel=BATCH_PANEL,
        show_default=False,
    ),
]
Seed = Annotated[Optional[int], typer.Option("--seed", metavar="INT", help="Random seed (same seed, same result).", show_default=False)]
Strength = Annotated[
    float,
    typer.Option("--strength", "-s", metavar="α", help="α in e = e_r + α (e_source − e_r): 0 neutral, 1 the source's style."),
]
Format = Annotated[
    str,
    typer.Option("--format", metavar="EXT", help="Output extension for folder outputs.", callback=_format, rich_help_panel=BATCH_PANEL),
]
Overwrite = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace existing outputs (default: skip them, so runs resume).", rich_help_panel=BATCH_PANEL),
]
Report = Annotated[
    Optional[Path],
    typer.Option("--report", metavar="FILE.jsonl", help="Write one JSON line per file (input, output, status, error).", rich_help_panel=BATCH_PANEL, show_default=False),
]
Size = Annotated[
    Optional[int],
    typer.Option("--size", min=1, metavar="PIXELS", help="Upscale outputs to SIZE×SIZE pixels (default: model resolution).", show_default=False),
]
Landmarks = Annotated[
    str,
    typer.Option("--landmarks", metavar="dlib|fan|file", help="Faces: landmark backend dlib, fan or file.", callback=_landmarks, rich_help_panel=FACES_PANEL),
]
Face = Annotated[
    str,
    typer.Option("--face", metavar="largest|all|N", help="Faces: the largest face, all faces, or face N (0 = leftmost).", callback=_face, rich_help_panel=FACES_PANEL),
]
Crop = Annotated[
    Optional[bool],
    typer.Option(
        "--crop/--paste",
        help="Faces: write the aligned crop only, or paste the edit back into the photo (default: paste when the photo is larger than the crop).",
        rich_help_panel=FACES_PANEL,
        show_default=False,
    ),
]

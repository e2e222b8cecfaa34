"""`rbedit transfer SOURCE TARGET... -o OUT`: each TARGET with SOURCE's target factors e.

z comes from the target (which digit / who), e from the source (style /
expression), both posterior means; `--strength α` gives e = e_r + α (e_source − e_r).
"""

from pathlib import Path
from typing import Annotated

import typer

from rbedit.cli import options as opt


def transfer(
    source: Annotated[Path, typer.Argument(help="Image whose style / expression is transferred.", show_default=False, metavar="SOURCE")],
    targets: Annotated[
        list[Path], typer.Argument(help="Images or folders that receive it.", show_default=False, metavar="TARGET")
    ],
    output: opt.Output,
    strength: opt.Strength = 1.0,
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
    """Give every TARGET the SOURCE's style or expression.

    Output = G(z_target, e) with e = e_r + α (e_source − e_r): the target's digit
    or identity with the source's style or expression (α = --strength).
    """
    from rbedit.cli.editing import Common, plan_or_exit, prepare_file, run_image_command

    common = Common(model, device, batch_size, fmt, overwrite, report, size, landmarks, face, crop, workers=workers, refine=refine)
    if source.is_dir():
        raise typer.BadParameter(f"{source} is a folder; SOURCE must be one image", param_hint="SOURCE")
    work = plan_or_exit(targets, output, fmt)  # usage errors before the model loads

    def operation(editor):
        items = prepare_file(source, editor)  # faces: the selected (largest) face of the source
        _, e_source = editor.encode_tensor(editor.to_model(items[0].input))
        return lambda x: editor.transfer_tensor(x, e_source[0], strength)

    run_image_command("transfer", work, common, operation=operation)


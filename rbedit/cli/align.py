"""`rbedit align INPUT... -o OUT`: write exactly what the model will see for each image.

Digits: inverted if dark on light, centred, resized to the model resolution.
Faces: the aligned crop(s). Only the model's config.json is read (no weights).
`--faces` aligns faces on the built-in standard template, with no face model.
"""

from typing import Annotated

import typer

from rbedit.cli import options as opt

StandardFaces = Annotated[
    bool,
    typer.Option(
        "--faces",
        help="Align faces on the built-in standard template, no face model needed: SIZE×SIZE crops "
        "(--size, default 96, the paper's crop).",
        rich_help_panel=opt.FACES_PANEL,
    ),
]


def align(
    inputs: opt.Inputs,
    output: opt.Output,
    model: opt.Model = None,
    size: opt.Size = None,
    batch_size: opt.BatchSize = 64,
    workers: opt.Workers = None,
    fmt: opt.Format = "png",
    overwrite: opt.Overwrite = False,
    report: opt.Report = None,
    landmarks: opt.Landmarks = "dlib",
    face: opt.Face = "largest",
    faces: StandardFaces = False,
) -> None:
    """Write what the model sees for each image.

    Digits: background removed, dark-on-light inverted, centred, resized to the
    model resolution. Faces: the aligned crop. Reads only the model config;
    with --faces, no model at all.
    """
    from rbedit.checkpoint import load_config
    from rbedit.cli.editing import Common, execute, output_name, plan_or_exit
    from rbedit.hub import resolve_model
    from rbedit.imageio import read_image, write_image
    from rbedit.prepare import finish, prepare, prepare_face_crops

    if faces and model is not None:
        raise typer.BadParameter("--faces aligns on the built-in template; leave out --model", param_hint="--faces")
    work = plan_or_exit(inputs, output, fmt)
    common = Common(model, "cpu", batch_size, fmt, overwrite, report, size, landmarks, face, crop=True, workers=workers)
    if faces:
        from rbedit.align.template import BUILTIN_TEMPLATE_SIZE

        crop_size = size or BUILTIN_TEMPLATE_SIZE

        def load(job):
            return prepare_face_crops(read_image(job.input), crop_size, landmarks=landmarks, face=face)

        def finish_crops(items, prepared):
            return [(item.input, item.alpha) for item in items]  # already crop_size
    else:
        config = load_config(resolve_model(model, require_weights=False).folder)

        def load(job):
            return prepare(read_image(job.input), config, landmarks=landmarks, face=face)

        def finish_crops(items, prepared):
            return finish(items, prepared, config, crop=True, size=size)

    def save(job, items, prepared):
        results = finish_crops(items, prepared)
        return [
            write_image(output_name(job.output, i), rgb, alpha, protected=work.protected)
            for i, (rgb, alpha) in enumerate(results)
        ]

    execute(
        "align",
        work,
        common,
        load=load,
        edit=lambda items: [item.input for item in items],
        save=save,
    )

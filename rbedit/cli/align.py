"""`rbedit align INPUT... -o OUT`: write exactly what the model will see for each image.

Digits: inverted if dark on light, centred, resized to the model resolution.
Faces: the aligned crop(s). Only the model's config.json is read (no weights).
"""

from rbedit.cli import options as opt


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
) -> None:
    """Write what the model sees for each image.

    Digits: background removed, dark-on-light inverted, centred, resized to the
    model resolution. Faces: the aligned crop. Reads only the model config.
    """
    from rbedit.checkpoint import load_config
    from rbedit.cli.editing import Common, execute, output_name, plan_or_exit
    from rbedit.hub import resolve_model
    from rbedit.imageio import read_image, write_image
    from rbedit.prepare import finish, prepare

    work = plan_or_exit(inputs, output, fmt)
    config = load_config(resolve_model(model, require_weights=False).folder)
    common = Common(model, "cpu", batch_size, fmt, overwrite, report, size, landmarks, face, crop=True, workers=workers)

    def save(job, items, prepared):
        results = finish(items, prepared, config, crop=True, size=size)
        return [
            write_image(output_name(job.output, i), rgb, alpha, protected=work.protected)
            for i, (rgb, alpha) in enumerate(results)
        ]

    execute(
        "align",
        work,
        common,
        load=lambda job: prepare(read_image(job.input), config, landmarks=landmarks, face=face),
        edit=lambda items: [item.input for item in items],
        save=save,
    )

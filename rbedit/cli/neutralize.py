"""`rbedit neutralize INPUT... -o OUT`: each image with e := e_r (neutral face, plain white thin digit)."""

from rbedit.cli import options as opt


def neutralize(
    inputs: opt.Inputs,
    output: opt.Output,
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
    """Set e to the reference e_r: neutral face, plain digit.

    Each image keeps its common factors z (who / which digit) and gets the
    reference set's target factors (neutral expression; white, thin, full size).
    """
    from rbedit.cli.editing import Common, plan_or_exit, run_image_command

    common = Common(model, device, batch_size, fmt, overwrite, report, size, landmarks, face, crop, workers=workers, refine=refine)
    work = plan_or_exit(inputs, output, fmt)
    run_image_command("neutralize", work, common, operation=lambda editor: editor.neutralize_tensor)

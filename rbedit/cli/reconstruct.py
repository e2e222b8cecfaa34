"""`rbedit reconstruct INPUT... -o OUT`: each image decoded from its posterior means."""

from rbedit.cli import options as opt


def reconstruct(
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
    """Encode and decode each image (posterior means).

    Shows what the model keeps of an image: G(z, e) with z and e the means of
    q(z|x) and q(e|x).
    """
    from rbedit.cli.editing import Common, plan_or_exit, run_image_command

    common = Common(model, device, batch_size, fmt, overwrite, report, size, landmarks, face, crop, workers=workers, refine=refine)
    work = plan_or_exit(inputs, output, fmt)
    run_image_command("reconstruct", work, common, operation=lambda editor: editor.reconstruct_tensor)

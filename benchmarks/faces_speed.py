"""Face pipeline numbers from issue 4: speed, astronaut eye angle, synthetic alignment and paste-back error.

    python benchmarks/faces_speed.py [--repeats 20] [--synth 500]

Floors: dlib alignment ≤ 60 ms per face (model load excluded), paste-back ≤ 150 ms
per 1-megapixel photo, synthetic eye centres within 1.0 px of the template's,
unedited paste-back ≤ 2 grey levels on average inside the face and 0 outside.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere in the checkout

from rbedit.align.geometry import apply_transform  # noqa: E402
from rbedit.align.pipeline import align_faces, paste_back, paste_mask  # noqa: E402
from rbedit.align.template import builtin_template  # noqa: E402
from rbedit.landmarks import get_backend, ibug  # noqa: E402
from train.data import faces_synth  # noqa: E402

CROP = 64  # the faces preset's resolution
MEGAPIXEL_SIDE = 1024


def median_ms(fn, repeats: int) -> float:
    """Median CPU milliseconds of one call. Everything timed is single-threaded, so CPU time is
    the cost on one core and is not inflated when other jobs share the machine (wall time is)."""
    fn()  # warm-up
    cpu, wall = [], []
    for _ in range(repeats):
        start_cpu, start_wall = time.process_time(), time.perf_counter()
        fn()
        cpu.append((time.process_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start_wall) * 1000)
    WALL.append(float(np.median(wall)))
    return float(np.median(cpu))


WALL: list[float] = []  # wall-clock medians, printed beside the CPU ones


def astronaut_numbers(repeats: int) -> None:
    from skimage.data import astronaut

    photo = astronaut()
    template = builtin_template(CROP)
    start = time.perf_counter()
    get_backend("dlib")
    print(f"dlib model load (once, wall)                {1000 * (time.perf_counter() - start):8.1f} ms")
    print("timings below: median CPU ms on one core (wall-clock in brackets)")

    faces = align_faces(photo, template=template, size=CROP, face="all")
    ms = median_ms(lambda: align_faces(photo, template=template, size=CROP, face="all"), repeats)
    print(f"dlib alignment, astronaut 512×512           {ms / len(faces):8.1f} ms/face  ({len(faces)} face; wall {WALL[-1]:.1f} ms)")

    big = np.asarray(Image.fromarray(photo).resize((MEGAPIXEL_SIDE, MEGAPIXEL_SIDE), Image.BICUBIC))
    big_faces = align_faces(big, template=template, size=CROP, face="all")
    ms = median_ms(lambda: align_faces(big, template=template, size=CROP, face="all"), repeats)
    print(f"dlib alignment, astronaut 1024×1024 (1 MP)  {ms / len(big_faces):8.1f} ms/face  "
          f"({len(big_faces)} face(s) found; wall {WALL[-1]:.1f} ms/photo)")

    face = faces[0]
    crop_points = apply_transform(face.matrix, face.landmarks)
    print(f"astronaut: faces found {len(faces)}, landmarks {face.landmarks.shape}, eye angle in photo "
          f"{ibug.eye_angle_degrees(face.landmarks):+.2f}°, in aligned crop {ibug.eye_angle_degrees(crop_points):+.2f}°")

    largest = max(big_faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    edited = 255 - largest.crop
    for keep_detail in (True, False):
        ms = median_ms(lambda: paste_back(big, edited, largest, keep_detail=keep_detail), repeats)
        print(f"paste-back, 1 MP photo, keep_detail={keep_detail!s:5}    {ms:8.1f} ms/photo  (wall {WALL[-1]:.1f} ms)")


def synth_numbers(count: int) -> None:
    for size in (96, 64, 32):
        template = faces_synth.synth_template(size)
        crops = faces_synth.aligned_faces(count, size=size, seed=1, template=template)
        error = np.linalg.norm(ibug.eye_centres(crops.landmarks) - ibug.eye_centres(template)[None], axis=-1)
        print(f"faces-synth eye-centre error, {size}×{size} crops, {count} faces: mean {error.mean():.3f} px, "
              f"95th pct {np.percentile(error, 95):.3f} px, max {error.max():.3f} px")

    with tempfile.TemporaryDirectory() as tmp:
        for photo_size in (80, 200):
            faces = faces_synth.make_faces(min(count, 100), size=photo_size, seed=7)
            results: dict[bool, list[float]] = {True: [], False: []}
            outside = 0
            for image, points in zip(faces.images, faces.landmarks):
                source = Path(tmp) / "face.png"
                np.save(source.with_suffix(".npy"), points)
                (face,) = align_faces(image, template=builtin_template(CROP), size=CROP, landmarks="file", source=source)
                mask = paste_mask(face, image.shape)
                for keep_detail in (True, False):
                    out = paste_back(image, face.crop, face, keep_detail=keep_detail)
                    change = np.abs(out.astype(int) - image.astype(int)).mean(-1)
                    results[keep_detail].append(change[mask >= 0.5].mean())
                    outside = max(outside, int(change[mask == 0].max()))
            print(f"unedited paste-back, {photo_size}×{photo_size} synthetic photos → {CROP}×{CROP} crops: "
                  f"mean change inside the face {np.mean(results[True]):.3f} (keep_detail) / "
                  f"{np.mean(results[False]):.3f} (plain) grey levels; max change outside the mask {outside}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20, help="timed runs per measurement (median reported)")
    parser.add_argument("--synth", type=int, default=500, help="synthetic faces for the alignment error")
    args = parser.parse_args()
    astronaut_numbers(args.repeats)
    synth_numbers(args.synth)


if __name__ == "__main__":
    main()

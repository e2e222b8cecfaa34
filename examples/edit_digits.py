"""Edit the sample digits with the Python API.

    python examples/edit_digits.py                  # embedded digits model
    python examples/edit_digits.py --model DIR_OR_ORG/REPO --out my-grids/

Writes into --out (default: rbedit-example/ in the system temp folder):
  transfer.png     each sample digit restyled like 7_purple.png (z from the digit, e from the 7)
  samples.png      3_plain.png with 8 random styles e ~ N(0, I)
  neutral.png      every sample digit with the reference style e_r (white, thin, full size)
  strength.png     2_red.png's style applied to 3_plain.png at α = 0, 0.25, ..., 1.25
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np

import rbedit
from rbedit.imageio import make_grid, resize, write_image

HERE = Path(__file__).resolve().parent
DIGITS = sorted((HERE / "digits").glob("*.png"))
UPSCALE = 64  # the model works at low resolution; enlarge tiles so the grids are easy to look at


def tiles(images) -> list[np.ndarray]:
    return [resize(np.asarray(img), UPSCALE)[0] for img in images]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="model reference (default: $RBEDIT_MODEL or digits)")
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "rbedit-example")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()

    editor = rbedit.load(args.model, device=args.device)
    print(editor)

    styled = editor.transfer(HERE / "digits" / "7_purple.png", DIGITS)  # a list of PIL images
    samples = editor.sample(HERE / "digits" / "3_plain.png", n=8, seed=0)
    neutral = editor.neutralize(DIGITS)
    strengths = [
        editor.transfer(HERE / "digits" / "2_red.png", HERE / "digits" / "3_plain.png", strength=a)
        for a in (0.0, 0.25, 0.5, 0.75, 1.0, 1.25)
    ]
    originals = tiles(editor.prepare(p) for p in DIGITS)  # what the model sees of each input

    write_image(args.out / "transfer.png", make_grid(originals + tiles(styled), columns=len(DIGITS)))
    write_image(args.out / "samples.png", make_grid(tiles(samples), columns=4))
    write_image(args.out / "neutral.png", make_grid(originals + tiles(neutral), columns=len(DIGITS)))
    write_image(args.out / "strength.png", make_grid(tiles(strengths), columns=len(strengths)))

    latents = editor.encode(DIGITS)
    print(f"z {latents.z.shape}, e {latents.e.shape}; wrote grids to {args.out}")


if __name__ == "__main__":
    main()

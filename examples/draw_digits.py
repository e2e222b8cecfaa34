"""Redraw the styled example digits in examples/digits/ with the training protocol (train/data/digits.py).

Each is a held-out source digit (the first of its class in the evaluation probe fold, so no model
trained it) drawn at 64×64 with a fixed width, colour and scale; `3_plain.png` is the reference
style itself. `4_scan.png` is a scan-like picture, not a protocol digit, and is left alone.

    python examples/draw_digits.py [--out DIR]     # needs rbedit[train]; default examples/digits
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # train/ is run from the repository root, not installed

from train.data.digits import draw_style, edge_digit, load_source_digits, split_sources  # noqa: E402

# name: (digit, width k, colour (R, G, B) before normalising, scale s); None: the reference style.
STYLES = {
    "0_teal_bold": (0, 7, (0.15, 0.50, 0.35), 0.60),
    "2_red": (2, 1, (0.72, 0.14, 0.14), 0.90),
    "3_plain": (3, None, None, None),
    "5_olive_thin": (5, 1, (0.44, 0.53, 0.03), 0.55),
    "7_purple": (7, 4, (0.47, 0.07, 0.46), 0.80),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "digits")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    digits, labels = load_source_digits(None)
    held_out = split_sources(labels, seed=0).probe_eval
    for name, (digit, k, colour, scale) in STYLES.items():
        source = held_out[labels[held_out] == digit][0]
        edges = edge_digit(digits[source])
        if k is None:
            image = np.repeat(edges[:, :, None], 3, axis=2)
        else:
            image, _ = draw_style(edges, width=k, colour=colour, scale=scale)
        path = out / f"{name}.png"
        Image.fromarray((image * 255 + 0.5).clip(0, 255).astype(np.uint8)).save(path)
        print(f"{path}: source digit #{source}")


if __name__ == "__main__":
    main()

"""Count the loss spikes in a run's metrics.jsonl (docs/digits.md, "Loss spikes").

    python -m train.spikes runs/a runs/b

A spike starts at a step where the reconstruction error or the reference
reconstructions' error rises above `factor` × its median over the previous
`window` logged steps; the steps after it that stay above count as the same
spike. For each spike the table gives the largest jump of the cycles' latent
terms one step before (each against its own median), the pattern seen before
six of seven spikes in the digits preset's seed 0. The window counts logged
steps, so runs logged with `--log-every 1` give the numbers docs/digits.md uses.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

WATCHED = ("recon", "recon_ref")
CYCLES = ("swap", "neutral_cycle", "transfer")


@dataclass
class Spike:
    step: int
    term: str  # the watched term that rose most against its median
    ratio: float  # its value over its median
    cycle_before: float | None  # the cycles' largest ratio one logged step before, None where none is logged


def read_metrics(path: Path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def _ratio(rows: list[dict], i: int, key: str, window: int) -> float | None:
    """rows[i][key] over its median in the `window` rows before i; None where it is not logged that far back."""
    history = [r[key] for r in rows[max(0, i - window) : i] if key in r]
    if key not in rows[i] or len(history) < window:
        return None
    median = statistics.median(history)
    return rows[i][key] / median if median > 0 else None


def find_spikes(rows: list[dict], *, factor: float = 2.0, window: int = 100) -> list[Spike]:
    spikes: list[Spike] = []
    inside = False
    for i in range(len(rows)):
        ratios = {key: r for key in WATCHED if (r := _ratio(rows, i, key, window)) is not None}
        term = max(ratios, key=ratios.get, default=None)
        above = term is not None and ratios[term] > factor
        if above and not inside:
            before = [r for key in CYCLES if i > 0 and (r := _ratio(rows, i - 1, key, window)) is not None]
            spikes.append(Spike(rows[i]["step"], term, ratios[term], max(before, default=None)))
        inside = above
    return spikes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.spikes", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or metrics.jsonl files)")
    parser.add_argument("--factor", type=float, default=2.0, help="a spike is above factor × the median (2)")
    parser.add_argument("--window", type=int, default=100, help="logged steps the median looks back over (100)")
    parser.add_argument("--until", type=int, help="count only the steps up to this one, to compare unequal runs")
    args = parser.parse_args(argv)
    for run in args.runs:
        path = run / "metrics.jsonl" if run.is_dir() else run
        if not path.is_file():
            parser.exit(1, f"{path}: no such metrics file\n")
        rows = [r for r in read_metrics(path) if args.until is None or r["step"] <= args.until]
        spikes = find_spikes(rows, factor=args.factor, window=args.window)
        last = rows[-1]["step"] if rows else 0
        print(f"{run}: {len(spikes)} spikes in {last} steps ({len(rows)} logged)")
        for s in spikes:
            before = "-" if s.cycle_before is None else f"{s.cycle_before:.1f} ×"
            print(f"  step {s.step:>6}  {s.term:<9} {s.ratio:5.1f} × median   cycles one step before: {before}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

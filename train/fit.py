"""python -m train.fit [--preset digits] [--objective srbvae] [--FIELD VALUE ...] [--resume]

Every TrainConfig field is an option (--steps 2000, --channels 16,32,64,128), and --help
shows each with its comment in train/config.py;
the resolved config is written to the run folder.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import io
import os
import sys
import tokenize
from pathlib import Path

from train.config import PRESETS, TrainConfig, preset

SKIPPED_FIELDS = {"preset", "departures"}


def _parse_value(field: dataclasses.Field, text: str):
    hint = str(field.type)
    if text.lower() in ("none", "") and "None" in hint:  # before the numbers: --recon-noise-e none
        return None
    if "bool" in hint and text.lower() in ("true", "false"):  # also bool | tuple: --z-cycles-train-g false
        return text.lower() == "true"
    if "tuple" in hint:
        cast = str if "tuple[str" in hint else float if "float" in hint else int
        return tuple(cast(v) for v in text.split(","))
    if hint.startswith("int"):
        return int(text)
    if hint.startswith("float"):
        return float(text)
    if hint == "bool":
        raise ValueError(f"--{field.name.replace('_', '-')} takes true or false, got {text!r}")
    return text


def field_comments(cls: type) -> dict[str, str]:
    """Each dataclass field's comment in its source: the one on its line, else the comment lines just above it."""
    comments: dict[str, str] = {}
    above: list[str] = []  # comment lines since the last field or blank line
    name, row = None, 0  # the last field seen and its line
    for tok in tokenize.generate_tokens(io.StringIO(inspect.getsource(cls)).readline):
        if tok.type == tokenize.COMMENT:
            text = tok.string.lstrip("#").strip()
            if tok.start[0] == row:
                comments[name] = text
            elif not text.startswith("---"):  # not a section rule such as "# --- data ---"
                above.append(text)
        elif tok.type == tokenize.NAME and tok.start[1] == 4 and tok.line[4:].split(":")[0].isidentifier():
            name, row = tok.string, tok.start[0]  # a class-level "name: type = default"
            if above:
                comments[name] = " ".join(above)
            above = []
        elif tok.type == tokenize.NL and not tok.line.strip():
            above = []
    return comments


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m train.fit",
        description="Train an rbedit model. Every option not given takes the preset's value (train/config.py).",
    )
    parser.add_argument(
        "--preset", default="digits", choices=sorted(PRESETS), help="the named config the options override"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir bit for bit")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (logs still go to metrics.jsonl)")
    # The faces preset's data folders, with their DESIGN spellings.
    parser.add_argument("--reference", dest="reference_dir", help="faces: folder of neutral faces")
    parser.add_argument("--unlabelled", dest="unlabelled_dir", help="faces: folder of faces with expressions")
    comments = field_comments(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        if f.name in SKIPPED_FIELDS or f.name in ("reference_dir", "unlabelled_dir"):
            continue
        text = f"{comments.get(f.name, '')} ({f.type})".lstrip()
        parser.add_argument(f"--{f.name.replace('_', '-')}", dest=f.name, metavar=f.name.upper(), help=text)
    return parser


# What a resumed run may change: its length, where it runs and its bookkeeping.
RESUMABLE_FIELDS = {"steps", "device", "threads", "save_every", "sample_every", "log_every", "push_to_hub"}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset with the given overrides; with --resume, the run's own config.json instead."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    overrides = {
        name: _parse_value(fields[name], value) if isinstance(value, str) else value
        for name, value in vars(args).items()
        if name in fields and value is not None
    }
    if not args.resume:
        return preset(args.preset, **overrides)
    overrides.pop("preset")
    run_dir = Path(overrides.pop("run_dir", None) or preset(args.preset).run_dir)
    config_path = run_dir / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{run_dir}: no config.json to resume from")
    fixed = sorted(set(overrides) - RESUMABLE_FIELDS)
    if fixed:
        raise ValueError(f"a resumed run keeps its config; cannot change {', '.join(fixed)}")
    # The folder resumed is the one named, also when the run was copied or moved there.
    return dataclasses.replace(TrainConfig.from_json(config_path.read_text()), run_dir=str(run_dir), **overrides)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from train.export import push_to_hub
    from train.loop import TrainingDiverged, train

    try:
        run_dir = train(cfg, resume=args.resume, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted: state saved in {cfg.run_dir}; continue with --resume", file=sys.stderr)
        return 130
    except (TrainingDiverged, FileExistsError, FileNotFoundError, ValueError, RuntimeError) as err:
        if os.environ.get("RBEDIT_DEBUG"):
            raise
        print(f"error: {err}", file=sys.stderr)
        return 1
    release = run_dir / "release"
    print(f"release checkpoint: {release}")
    if cfg.push_to_hub:
        print(f"pushed: {push_to_hub(release, cfg.push_to_hub)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

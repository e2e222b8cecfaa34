"""The command-line shell both evaluations share: `python -m train.evaluate` for digits
(train/evaluate.py) and for faces-synth (train/evaluate_faces.py).

Each evaluation declares its own options and builds its own report; what they do
around that is here: the options they have in common, --judge KEY=VALUE parsing,
one-line errors, printing the report, --json and the --strict exit code.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from rich.console import Console

DEFAULT_CACHE = "cache"  # judge weights go to cache/judges/<key>/ (git-ignored)
WIDE_CONSOLE = 160  # columns for the report tables when the output is piped or logged

Log = Callable[[str], None]


def evaluation_parser(*, description: str, models_nargs: str, models_help: str) -> argparse.ArgumentParser:
    """A `python -m train.evaluate` parser with the options every evaluation starts with: the models and --json."""
    parser = argparse.ArgumentParser(prog="python -m train.evaluate", description=description)
    parser.add_argument("models", nargs=models_nargs, help=models_help)
    parser.add_argument("--json", type=Path, help="write the full report here")
    return parser


def add_cache_and_device_options(parser: argparse.ArgumentParser) -> None:
    """--cache-dir (where judges are cached), --device and --threads."""
    parser.add_argument("--cache-dir", default=DEFAULT_CACHE, help="judge weights are cached under CACHE_DIR/judges")
    parser.add_argument("--device", default="cpu", help="auto | cpu | cuda[:N] (default cpu)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")


def judge_override(text: str, judge_config: type, *, data_fields: set[str]) -> tuple[str, object]:
    """--judge KEY=VALUE for a training field of the dataclass `judge_config`; VALUE is JSON.

    `data_fields` are refused: the evaluated model fixes them.
    """
    key, _, value = text.partition("=")
    allowed = {f.name for f in dataclasses.fields(judge_config)} - data_fields
    if key not in allowed or not value:
        raise argparse.ArgumentTypeError(f"--judge needs KEY=VALUE with KEY one of {', '.join(sorted(allowed))}")
    return key, json.loads(value)


def run_evaluation_command(
    args: argparse.Namespace,
    evaluate: Callable[[Log], dict],
    print_report: Callable[[dict, Console], None],
    *,
    after_report: Callable[[dict, Log], None] = lambda report, log: None,
) -> int:
    """Run `evaluate(log)` → report the way both evaluations do; returns the exit code.

    --threads is applied first. An error becomes one line on stderr and exit code 1
    (RBEDIT_DEBUG=1 raises it instead, with its traceback); Ctrl-C gives 130. The
    report is printed, written to --json, handed to `after_report`, and with --strict
    any failed target gives exit code 1.
    """
    from rich.console import Console

    err = Console(stderr=True)

    def log(message: str) -> None:
        err.print(f"[dim]{message}[/dim]")

    try:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        report = evaluate(log)
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except (ValueError, RuntimeError, OSError) as error:  # OSError covers FileNotFoundError and FileExistsError
        if os.environ.get("RBEDIT_DEBUG"):
            raise
        err.print(f"error: {error}", markup=False, highlight=False)
        return 1
    out = Console()
    # Piped or logged output would wrap the wide tables at rich's default of 80 columns.
    print_report(report, out if out.is_terminal else Console(width=WIDE_CONSOLE))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"report written to {args.json}")
    after_report(report, log)
    failed = any(t["status"] == "FAIL" for t in report["targets"])
    return 1 if args.strict and failed else 0

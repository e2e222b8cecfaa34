"""The models an evaluation measures: which checkpoint a command-line name means, and the
loop that evaluates each one on held-out data prepared once per data key.

Shared by the digits (train/evaluate.py) and faces-synth (train/evaluate_faces.py) evaluations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Hashable, Protocol, Sequence

RELEASE_DIR = "release"


class Entry(Protocol):
    """One model to evaluate (train.evaluate.ModelEntry, train.evaluate_faces.FacesEntry)."""

    name: str  # as given on the command line
    folder: Path  # the release checkpoint folder
    objective: str
    data: Hashable  # what fixes the held-out data: entries with equal keys share it
    steps: int | None


@dataclass
class EvaluatedModels:
    """What `evaluate_checkpoints` measured."""

    device: object  # the torch.device the models ran on
    data: list  # the prepared held-out data, one per data key, in order of first use
    models: list[dict]  # per entry: name, folder, objective, steps, data, then the evaluation's results


def locate_checkpoint(name: str) -> tuple[Path, Path | None]:
    """The release checkpoint folder that `name` means, and the run folder when `name` is one.

    `name`: a run folder (with release/), a checkpoint folder, an embedded name or a Hub id.
    """
    from rbedit.hub import resolve_model

    path = Path(name).expanduser()
    run_dir = path if (path / RELEASE_DIR / "config.json").is_file() else None
    if run_dir is None and ((path / "metrics.jsonl").is_file() or (path / "state.pt").is_file()):
        raise ValueError(f"{name}: a run folder without {RELEASE_DIR}/ (training not finished?); "
                         "finish it with python -m train.fit --resume")
    folder = run_dir / RELEASE_DIR if run_dir else resolve_model(name).folder
    return folder, run_dir


def evaluate_checkpoints(
    entries: Sequence[Entry],
    *,
    prepare: Callable[[Hashable, object], object],
    evaluate: Callable[[object, str, object], dict],
    describe_data: Callable[[Hashable], dict],
    device: str = "cpu",
    log: Callable[[str], None] = lambda m: None,
) -> EvaluatedModels:
    """Load and evaluate every entry's checkpoint.

    `prepare(data_key, device)` builds the held-out data (and judge) once per data key;
    `evaluate(model, objective, data)` measures one model; `describe_data(data_key)` is
    the "data" recorded beside each model's results.
    """
    from rbedit.checkpoint import load_checkpoint
    from rbedit.devices import resolve_device

    dev = resolve_device(device)
    prepared: dict = {}
    models = []
    for entry in entries:
        if entry.data not in prepared:
            prepared[entry.data] = prepare(entry.data, dev)
        log(f"evaluating {entry.name} ({entry.objective})")
        result = evaluate(load_checkpoint(entry.folder, device=dev), entry.objective, prepared[entry.data])
        models.append({"name": entry.name, "folder": str(entry.folder), "objective": entry.objective,
                       "steps": entry.steps, "data": describe_data(entry.data), **result})
    return EvaluatedModels(dev, list(prepared.values()), models)

"""Resume state: every network, optimiser and RNG, and the step. Not a release.

Saved atomically (temporary file + rename) so a crash mid-write keeps the
previous state. Loaded with weights_only=True: tensors and plain containers only.
"""

from __future__ import annotations

from pathlib import Path

import torch

from rbedit.atomic import atomic_file

STATE_NAME = "state.pt"


def save_state(run_dir: Path, *, step: int, modules: dict, optimizers: dict, generators: dict) -> Path:
    path = Path(run_dir) / STATE_NAME
    state = {
        "step": step,
        "modules": {k: m.state_dict() for k, m in modules.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "generators": {k: g.get_state() for k, g in generators.items()},
        "torch_rng": torch.get_rng_state(),  # dropout
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    with atomic_file(path) as f:
        torch.save(state, f)
    return path


def load_state(run_dir: Path, *, modules: dict, optimizers: dict, generators: dict) -> int:
    """Restore everything saved by `save_state`; returns the step to continue from."""
    path = Path(run_dir) / STATE_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {STATE_NAME} to resume from")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for k, m in modules.items():
        m.load_state_dict(state["modules"][k])
    for k, o in optimizers.items():
        o.load_state_dict(state["optimizers"][k])
    for k, g in generators.items():
        g.set_state(state["generators"][k])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"]:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return int(state["step"])

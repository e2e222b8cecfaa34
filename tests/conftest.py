"""Shared fixtures for the API/CLI tests: a tiny random checkpoint and small digit images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

def pytest_addoption(parser):
    parser.addoption("--device", default="cpu", help="device for the model tests: cpu, cuda, cuda:N")


def pytest_configure(config):
    # Read by the tests through `device_under_test()`, also from plain helper functions.
    os.environ["RBEDIT_TEST_DEVICE"] = config.getoption("--device")


def device_under_test() -> str:
    return os.environ.get("RBEDIT_TEST_DEVICE", "cpu")


TINY = dict(image_size=8, channels=(4, 4), z_dim=2, e_dim=2)
CARD = """# tiny test model

## Evaluation

| probe | R | G | B | Avg |
|---|---|---|---|---|
| sRb-VAE (e) | .05 | .05 | .05 | .05 |
"""


def write_tiny_checkpoint(folder: Path, *, domain: str = "digits", seed: int = 0) -> Path:
    """A randomly initialised 8×8 model with a non-zero e_r, saved as a release checkpoint."""
    import torch

    from rbedit.checkpoint import save_checkpoint
    from rbedit.model import ModelConfig, RbVAE

    torch.manual_seed(seed)
    model = RbVAE(ModelConfig(domain=domain, **TINY))
    with torch.no_grad():
        model.e_ref.normal_()
    return save_checkpoint(model, folder, card=CARD)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """Folder of a tiny digits checkpoint (shared, read-only)."""
    return write_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


def digit_image(seed: int, *, size: int = 28, colour=None, dark_on_light: bool = False) -> np.ndarray:
    """A blocky 'digit' (a coloured ring of random size) on black: (size, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    colour = np.array(colour if colour is not None else rng.integers(80, 256, 3), np.uint8)
    img = np.zeros((size, size, 3), np.uint8)
    half = int(rng.integers(size // 6, size // 3))
    c = size // 2
    img[c - half : c + half, c - half // 2 : c + half // 2] = colour
    img[c - half + 2 : c + half - 2, c - half // 2 + 2 : c + half // 2 - 2] = 0
    return 255 - img if dark_on_light else img


@pytest.fixture
def digits_dir(tmp_path) -> Path:
    """in/ with a.png, b.png and sub/c.png (small coloured digits)."""
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    for i, rel in enumerate(["a.png", "b.png", "sub/c.png"]):
        Image.fromarray(digit_image(i)).save(root / rel)
    return root


@pytest.fixture
def cli(monkeypatch):
    """Run `rbedit ARGS...` in-process; returns the CliRunner result (stdout / stderr separate)."""
    from typer.testing import CliRunner

    from rbedit.cli.app import app

    monkeypatch.delenv("RBEDIT_DEBUG", raising=False)

    def run(*args, env: dict | None = None):
        return CliRunner().invoke(app, [str(a) for a in args], env=env)

    return run

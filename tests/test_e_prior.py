"""The fitted prior of e: the fit, its checkpoint, sampling from it, and train.e_prior."""

import json

import numpy as np
import pytest
import torch
from conftest import TINY, device_under_test, digit_image

from rbedit.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from rbedit.editor import Editor
from rbedit.model import ModelConfig, RbVAE
from rbedit.pixels import uint8_to_model
from train.e_prior import fit_e_prior, main, some_images, with_fitted_prior


def _model(seed=0, **fields):
    torch.manual_seed(seed)
    return RbVAE(ModelConfig(**{**TINY, "e_dim": 3, **fields}))


def _images(count=64, size=8):
    return np.stack([digit_image(i, size=size) for i in range(count)])


def test_the_fit_is_the_aggregate_posteriors_mean_and_covariance():
    model = _model()
    images = _images()
    mean, scale_tril = fit_e_prior(model, images, batch_size=10)
    with torch.no_grad():
        posterior = model.encode_e(uint8_to_model(images))
    mu = posterior.mu.double().numpy()
    expected = np.cov(mu, rowvar=False) + np.diag(posterior.logvar.double().exp().numpy().mean(axis=0))
    assert np.allclose(mean.numpy(), mu.mean(axis=0), atol=1e-6)
    assert np.allclose((scale_tril @ scale_tril.T).numpy(), expected, rtol=1e-4, atol=1e-6)
    assert torch.equal(scale_tril, torch.tril(scale_tril))


def test_draws_of_a_fitted_prior_have_its_mean_and_covariance():
    model = with_fitted_prior(_model(), _images())
    with torch.no_grad():  # a skewed factor, so that L·noise and Lᵀ·noise differ
        model.e_prior_scale_tril.copy_(torch.tensor([[1.0, 0, 0], [2.0, 0.5, 0], [-1.0, 0.3, 0.2]]))
        draws = model.prior_e(torch.randn(200_000, 3, generator=torch.Generator().manual_seed(0)))
    L = model.e_prior_scale_tril
    assert torch.allclose(draws.mean(0), model.e_prior_mean, atol=0.02)
    assert torch.allclose(torch.cov(draws.T), L @ L.T, atol=0.05)
    standard = _model()
    noise = torch.randn(4, 3)
    assert torch.equal(standard.prior_e(noise), noise)  # the paper's N(0, I): the noise itself


def test_a_fitted_model_keeps_the_weights_and_round_trips(tmp_path):
    model = _model()
    fitted = with_fitted_prior(model, _images())
    assert fitted.config.e_prior == "fitted" and model.config.e_prior == "standard"
    x = uint8_to_model(_images(4))
    with torch.no_grad():
        assert torch.equal(fitted(x), model(x))
    loaded = load_checkpoint(save_checkpoint(fitted, tmp_path / "m"))
    assert loaded.config.e_prior == "fitted"
    assert torch.equal(loaded.e_prior_mean, fitted.e_prior_mean)
    assert torch.equal(loaded.e_prior_scale_tril, fitted.e_prior_scale_tril)


def test_a_fitted_config_without_the_fit_is_a_clear_error(tmp_path):
    folder = save_checkpoint(_model(), tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "e_prior": "fitted"}))
    with pytest.raises(CheckpointError, match="missing keys: e_prior_mean, e_prior_scale_tril"):
        load_checkpoint(folder)
    with pytest.raises(ValueError, match="e_prior must be one of"):
        ModelConfig(**TINY, e_prior="learned")


def test_the_editor_samples_from_the_fitted_prior_unless_told_otherwise():
    fitted = with_fitted_prior(_model(), _images())
    editor = Editor(fitted.to(device_under_test()))
    mean = fitted.e_prior_mean.to(editor.device)
    assert torch.allclose(editor.sample_e(5, seed=0, temperature=0.0), mean.expand(5, -1))
    standard = editor.sample_e(5, seed=0, prior="standard")
    assert torch.equal(standard, torch.randn(5, 3, generator=torch.Generator().manual_seed(0)).to(editor.device))
    assert not torch.allclose(editor.sample_e(5, seed=0), standard)
    with pytest.raises(ValueError, match="no fitted prior"):
        Editor(_model().to(device_under_test())).sample_e(5, prior="fitted")
    with pytest.raises(ValueError, match="prior must be one of"):
        editor.sample_e(5, prior="learned")


def test_sample_cli_prior_option(cli, tiny_model, tmp_path):
    from PIL import Image

    Image.fromarray(digit_image(2)).save(tmp_path / "d.png")
    args = ("sample", tmp_path / "d.png", "-n", 2, "-m", tiny_model, "--seed", 1)
    assert cli(*args, "--prior", "standard", "-o", tmp_path / "a.png").exit_code == 0
    missing = cli(*args, "--prior", "fitted", "-o", tmp_path / "b.png")
    assert missing.exit_code != 0 and "no fitted prior" in missing.stderr
    bad = cli(*args, "--prior", "learned", "-o", tmp_path / "c.png")
    assert bad.exit_code != 0 and "fitted or standard" in bad.stderr
    assert not (tmp_path / "b.png").exists() and not (tmp_path / "c.png").exists()


def test_some_images_picks_a_sorted_subset_without_repeats():
    images = np.arange(100)
    picked = some_images(images, 10)
    assert len(picked) == 10 and len(set(picked)) == 10 and np.all(np.diff(picked) > 0)
    assert some_images(images, 200) is images


def test_train_e_prior_fits_a_checkpoint_in_place(tmp_path):
    from train.config import preset

    cfg = preset("digits", image_size=8, channels=(4, 8), disc_channels=(4, 4), copies=1)
    run_config = tmp_path / "run-config.json"
    run_config.write_text(cfg.to_json())
    model = _model(extra={"preset": "digits", "data": {"seed": 0, "mnist_dir": None, "image_size": 8}})
    folder = save_checkpoint(model, tmp_path / "release", card="# card\n", dtype=torch.float16)
    assert main([str(folder), "--run-config", str(run_config), "--images", "300"]) == 0
    fitted = load_checkpoint(folder)
    assert fitted.config.e_prior == "fitted" and (folder / "README.md").read_text() == "# card\n"
    before = load_checkpoint(save_checkpoint(model, tmp_path / "half", dtype=torch.float16))
    x = uint8_to_model(_images(4))
    with torch.no_grad():
        assert torch.equal(fitted(x), before(x))  # the weights are untouched, still stored in float16
    assert not torch.equal(fitted.e_prior_scale_tril, torch.eye(3))


def test_train_e_prior_names_a_folder_that_is_no_checkpoint(tmp_path):
    with pytest.raises(SystemExit, match="no config.json"):
        main([str(tmp_path)])

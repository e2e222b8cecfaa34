"""The Table 1 probe: recovers factors from informative features, fails on noise."""

import numpy as np
import torch

from rbedit.model import ModelConfig, RbVAE
from train.probe import digit_probe, encode_images, features_of, fit_ridge, probe


def _factors(rng, n):
    colour = rng.uniform(size=(n, 3))
    colour /= colour.sum(axis=1, keepdims=True)
    return np.column_stack([colour, rng.uniform(0.5, 1.0, n), rng.integers(1, 11, n) / 10]).astype(np.float32)


def test_probe_recovers_factors_from_noisy_linear_mix():
    rng = np.random.default_rng(0)
    y_fit, y_eval = _factors(rng, 2000), _factors(rng, 2000)
    mix = rng.normal(size=(5, 16))
    noise = 0.01
    x_fit = y_fit @ mix + noise * rng.normal(size=(2000, 16))
    x_eval = y_eval @ mix + noise * rng.normal(size=(2000, 16))
    result = probe(x_fit, y_fit, x_eval, y_eval)
    assert result.mae.shape == (5,)
    assert result.average < 0.02
    assert np.all(result.mae < 0.2 * result.chance)


def test_probe_on_noise_is_at_chance():
    rng = np.random.default_rng(1)
    y_fit, y_eval = _factors(rng, 2000), _factors(rng, 2000)
    x_fit, x_eval = rng.normal(size=(2000, 32)), rng.normal(size=(2000, 32))
    result = probe(x_fit, y_fit, x_eval, y_eval)
    # Noise features: no better than predicting the mean (a little worse from overfitting).
    assert np.all(result.mae > 0.95 * result.chance)
    assert result.average > 0.1


def test_digit_probe_names_digits_that_the_features_separate_and_guesses_on_noise():
    rng = np.random.default_rng(3)
    labels_fit, labels_eval = rng.integers(0, 10, 2000), rng.integers(0, 10, 2000)
    centres = rng.normal(size=(10, 16))
    fit, held = (centres[labels] + 0.3 * rng.normal(size=(len(labels), 16)) for labels in (labels_fit, labels_eval))
    assert digit_probe(fit, labels_fit, held, labels_eval) > 0.95
    noise = digit_probe(rng.normal(size=(2000, 16)), labels_fit, rng.normal(size=(2000, 16)), labels_eval)
    assert noise < 0.15  # chance is 0.1


def test_ridge_ignores_constant_features():
    rng = np.random.default_rng(2)
    y = rng.normal(size=(100, 2))
    x = np.column_stack([y, np.ones(100)])  # a collapsed latent unit
    predict = fit_ridge(x, y)
    assert np.isfinite(predict(x)).all()
    assert np.abs(predict(x) - y).max() < 0.01


def test_encode_images_gives_posterior_means_in_batches():
    torch.manual_seed(0)
    model = RbVAE(ModelConfig(image_size=8, z_dim=3, e_dim=2, channels=(4, 4)))
    images = np.random.default_rng(0).integers(0, 256, size=(5, 8, 8, 3), dtype=np.uint8)
    latents = encode_images(model, images, batch_size=2)
    assert latents.z.shape == (5, 3) and latents.e.shape == (5, 2)
    assert features_of(latents, "all").shape == (5, 5)
    again = encode_images(model, images, batch_size=5)
    np.testing.assert_allclose(latents.e, again.e, atol=1e-5)

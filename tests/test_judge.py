"""The judge: trains for a few steps on tiny data, reads images, caches its weights."""

import dataclasses

import numpy as np
import torch

from train.data.digits import make_unlabelled
from train.judge import Judge, JudgeConfig, load_or_train_judge, read_images, score_real


def _digits(n=20, seed=0):
    rng = np.random.default_rng(seed)
    digits = np.zeros((n, 28, 28), np.uint8)
    for i in range(n):  # a filled box per "digit", its size set by the class
        c = i % 10
        digits[i, 6 : 10 + c, 8:20] = 255
    return digits, (np.arange(n) % 10).astype(np.int64), rng


def _tiny(**overrides):
    base = JudgeConfig(image_size=8, data_seed=0, copies=1, epochs=1, width=4, batch_size=8)
    return dataclasses.replace(base, **overrides)


def test_judge_outputs_in_range():
    torch.manual_seed(0)
    for size in (8, 16, 32):
        factors, logits = Judge(size, width=4)(torch.rand(3, 3, size, size) * 2 - 1)
        assert factors.shape == (3, 5) and logits.shape == (3, 10)
        assert ((factors > 0) & (factors < 1)).all()


def test_judge_trains_and_reads(tmp_path):
    torch.set_num_threads(1)
    digits, labels, _ = _digits()
    judge, info = load_or_train_judge(_tiny(), digits, labels, np.arange(10), cache_dir=tmp_path)
    assert not info["cached"]
    held_out = make_unlabelled(digits, labels, np.arange(10, 20), 8, copies=1, seed=5)
    scores = score_real(judge, held_out)
    assert np.isfinite(scores["style_mae_average"]) and 0 <= scores["digit_accuracy"] <= 1
    reading = read_images(judge, torch.zeros(4, 3, 8, 8))  # model-range tensors work too
    assert reading.factors.shape == (4, 5) and reading.digits.shape == (4,)
    assert np.isfinite(reading.factors).all()


def test_judge_cache_is_reused_and_keyed(tmp_path):
    torch.set_num_threads(1)
    digits, labels, _ = _digits()
    first, _ = load_or_train_judge(_tiny(), digits, labels, np.arange(10), cache_dir=tmp_path)
    again, info = load_or_train_judge(_tiny(), digits, labels, np.arange(10), cache_dir=tmp_path)
    assert info["cached"]
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    torch.testing.assert_close(first.eval()(x)[0], again(x)[0])
    assert _tiny().key() != _tiny(data_seed=1).key() != JudgeConfig(image_size=16, data_seed=0).key()
    _, other = load_or_train_judge(_tiny(seed=3), digits, labels, np.arange(10), cache_dir=tmp_path)
    assert not other["cached"]
    assert len(list(tmp_path.iterdir())) == 2


def test_judge_cache_sees_a_changed_protocol(tmp_path):
    torch.set_num_threads(1)
    digits, labels, _ = _digits()
    load_or_train_judge(_tiny(), digits, labels, np.arange(10), cache_dir=tmp_path)
    changed = digits.copy()
    changed[:, 2:4, 2:4] = 255  # the rendered training images differ: a stale judge must not be reused
    _, info = load_or_train_judge(_tiny(), changed, labels, np.arange(10), cache_dir=tmp_path)
    assert not info["cached"]

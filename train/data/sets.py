"""The training images of a run: (unlabelled, reference) uint8 arrays at model size."""

from __future__ import annotations

import numpy as np

from train.data.digits import load_source_digits, make_reference, make_unlabelled, split_sources


def digit_training_sets(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Unlabelled (styled) and reference (plain) digits of the training split only."""
    digits, labels = load_source_digits(cfg.mnist_dir)
    splits = split_sources(labels, seed=cfg.data_seed)
    unlabelled = make_unlabelled(digits, labels, splits.unlabelled, cfg.image_size, copies=cfg.copies, seed=cfg.data_seed)
    reference = make_reference(digits, labels, splits.reference, cfg.image_size)
    return unlabelled.images, reference.images


def training_sets(cfg) -> tuple[np.ndarray, np.ndarray]:
    """Dispatch on the preset's data: digits, synthetic faces or aligned face folders."""
    if cfg.domain == "digits":
        return digit_training_sets(cfg)
    if cfg.preset == "faces-synth":
        from train.data.faces_training import synth_training_sets

        return synth_training_sets(cfg)
    from train.data.faces_training import folder_training_sets

    return folder_training_sets(cfg)

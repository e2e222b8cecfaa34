"""The training images of a run at model size, and the face template if any."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from train.data.digits import load_source_digits, make_reference, make_unlabelled, split_sources


@dataclass
class TrainingData:
    unlabelled: np.ndarray  # (N, S, S, 3) uint8
    reference: np.ndarray  # (M, S, S, 3) uint8
    template: np.ndarray | None = None  # faces: (68, 2) landmark template in crop pixels


def digit_training_sets(cfg) -> TrainingData:
    """Unlabelled (styled) and reference (plain) digits of the training split only."""
    digits, labels = load_source_digits(cfg.mnist_dir)
    splits = split_sources(labels, seed=cfg.data_seed)
    unlabelled = make_unlabelled(digits, labels, splits.unlabelled, cfg.image_size, copies=cfg.copies, seed=cfg.data_seed)
    reference = make_reference(digits, labels, splits.reference, cfg.image_size)
    return TrainingData(unlabelled=unlabelled.images, reference=reference.images)


def training_sets(cfg) -> TrainingData:
    """Dispatch on the preset's data: digits, synthetic faces or aligned face folders."""
    if cfg.domain == "digits":
        return digit_training_sets(cfg)
    from train.data.faces_training import folder_training_sets, synth_training_sets

    return synth_training_sets(cfg) if cfg.preset == "faces-synth" else folder_training_sets(cfg)

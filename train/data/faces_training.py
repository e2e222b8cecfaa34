"""Training images for the face presets: synthetic faces, or aligned photo folders."""

from __future__ import annotations

import json
from pathlib import Path

from train.data.sets import TrainingData


def synth_training_sets(cfg) -> TrainingData:
    """faces-synth: neutral reference faces and faces with expressions, aligned with exact landmarks."""
    from train.data.faces_synth import synth_template, training_sets

    template = synth_template(cfg.image_size)
    reference, unlabelled, _, _ = training_sets(
        n_reference=cfg.synth_count, n_unlabelled=cfg.synth_count, size=cfg.image_size,
        seed=cfg.data_seed, template=template,
    )
    return TrainingData(unlabelled=unlabelled, reference=reference, template=template)


def folder_training_sets(cfg) -> TrainingData:
    """faces: align every photo of --reference and --unlabelled once, cache the crops, list what was skipped."""
    from train.data.faces_folder import folders_template, load_aligned_folder

    if not cfg.reference_dir or not cfg.unlabelled_dir:
        raise ValueError("the faces preset needs --reference NEUTRAL_DIR and --unlabelled FACES_DIR")
    folders = [Path(cfg.reference_dir), Path(cfg.unlabelled_dir)]
    for folder in folders:
        if not folder.is_dir():
            raise ValueError(f"{folder}: not a folder")
    cache = Path(cfg.run_dir) / "cache"
    template = folders_template(folders, size=cfg.image_size, cache_dir=cache, landmarks=cfg.landmarks)
    reference, ref_manifest = load_aligned_folder(
        folders[0], size=cfg.image_size, template=template, cache_dir=cache, landmarks=cfg.landmarks
    )
    unlabelled, unl_manifest = load_aligned_folder(
        folders[1], size=cfg.image_size, template=template, cache_dir=cache, landmarks=cfg.landmarks
    )
    manifest = {"reference": ref_manifest, "unlabelled": unl_manifest}
    (Path(cfg.run_dir) / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    for name, images in (("reference", reference), ("unlabelled", unlabelled)):
        if len(images) == 0:
            raise ValueError(f"no usable face in the {name} folder; see {cfg.run_dir}/manifest.json")
    return TrainingData(unlabelled=unlabelled, reference=reference, template=template)

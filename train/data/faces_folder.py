"""Real face folders for training: align each image once, cache the crops, say what was skipped.

    template = folders_template([ref_dir, unl_dir], size=64, cache_dir=c)   # or the built-in one
    ref, ref_manifest = load_aligned_folder(ref_dir, size=64, template=template, cache_dir=c)
    unl, unl_manifest = load_aligned_folder(unl_dir, size=64, template=template, cache_dir=c)

Two cached stages per folder (under cache_dir/<folder name>-<hash>/):
  landmarks.json   per image: its file fingerprint and the largest face's 68
                   landmarks, or why it was skipped (unreadable, no face, ...);
  crops-<size>-<template hash>.npy + manifest-….json   the aligned crops and
                   the manifest (kept images in array order, skipped ones with
                   reasons) for one crop size and template.
Only new or changed images are looked at again. Backend failures
(LandmarkBackendError) are not per-image problems: they stop the run.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from rbedit.align.errors import FaceTooSmallError, NoFaceError
from rbedit.align.geometry import fit_transform, transform_scale, warp_image
from rbedit.align.pipeline import DEFAULT_TRANSFORM, MAX_UPSCALE, MIN_FACE_WIDTH_PX
from rbedit.align.template import FIT_WEIGHTS, template_from_landmarks
from rbedit.atomic import atomic_file, write_atomic
from rbedit.imageio import IMAGE_EXTENSIONS, ImageError, read_image
from rbedit.landmarks import LandmarkFileError, get_backend, ibug

CACHE_VERSION = 1  # bump when what is cached changes meaning


def list_images(folder: Path) -> list[Path]:
    """Image files under `folder`, recursively, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _fingerprint(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _digest(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _folder_cache(folder: Path, cache_dir: Path, landmarks: str) -> Path:
    folder = Path(folder).resolve()
    return Path(cache_dir) / f"{folder.name}-{_digest(str(folder), landmarks, CACHE_VERSION)}"


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
    )


def folder_landmarks(folder: Path, *, cache_dir: Path, landmarks: str = "dlib", progress: bool = True) -> dict[str, dict]:
    """{relative path: {"key", "landmarks" (68 × [x, y]) | "reason"}} for every image in `folder` (cached)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder")
    store = _folder_cache(folder, cache_dir, landmarks) / "landmarks.json"
    cached = json.loads(store.read_text()) if store.is_file() else {}
    entries: dict[str, dict] = {}
    todo: list[tuple[str, Path, list[int]]] = []
    for path in list_images(folder):
        rel, key = path.relative_to(folder).as_posix(), _fingerprint(path)
        if cached.get(rel, {}).get("key") == key:
            entries[rel] = cached[rel]
        else:
            todo.append((rel, path, key))
    if todo:
        backend = get_backend(landmarks)
        with _progress(progress) as bar:
            task = bar.add_task(f"landmarks {folder.name}", total=len(todo))
            for rel, path, key in todo:
                try:
                    faces = backend.detect(read_image(path).rgb, source=path)
                    if faces:
                        largest = max(faces, key=lambda f: f.area)
                        entries[rel] = {"key": key, "landmarks": np.round(largest.landmarks, 2).tolist()}
                    else:
                        entries[rel] = {"key": key, "reason": f"no face found (landmarks: {landmarks})"}
                except (ImageError, LandmarkFileError) as exc:
                    entries[rel] = {"key": key, "reason": str(exc)}
                bar.advance(task)
        write_atomic(store, json.dumps(entries).encode())
    return dict(sorted(entries.items()))


def folders_template(folders: list[Path], *, size: int, cache_dir: Path, landmarks: str = "dlib", progress: bool = True) -> np.ndarray:
    """The Procrustes mean of all faces found in `folders`, placed in a size crop (a run's data template)."""
    shapes = [
        np.asarray(entry["landmarks"], dtype=np.float64)
        for folder in folders
        for entry in folder_landmarks(folder, cache_dir=cache_dir, landmarks=landmarks, progress=progress).values()
        if "landmarks" in entry
    ]
    if not shapes:
        raise ValueError(f"no face found in {', '.join(map(str, folders))}")
    return template_from_landmarks(np.stack(shapes), size)


def _crop_one(path: Path, points: np.ndarray, template: np.ndarray, size: int) -> np.ndarray:
    """The aligned crop of one image; FaceTooSmallError when the face is below the pipeline's minimum."""
    matrix = fit_transform(points, template, kind=DEFAULT_TRANSFORM, weights=FIT_WEIGHTS)
    template_width = float(np.ptp(template[ibug.JAW, 0]))
    width_px = template_width / transform_scale(matrix)
    needed = max(MIN_FACE_WIDTH_PX, template_width / MAX_UPSCALE)
    if width_px < needed:
        raise FaceTooSmallError(f"face is {width_px:.0f} px wide; at least {needed:.0f} px needed for a {size}×{size} crop")
    return warp_image(read_image(path).rgb, matrix, (size, size))


def load_aligned_folder(
    folder: Path,
    *,
    size: int,
    template: np.ndarray | None,
    cache_dir: Path,
    landmarks: str = "dlib",
    progress: bool = True,
) -> tuple[np.ndarray, dict]:
    """Every usable face image under `folder` aligned to `template` at size×size.

    Returns (images (N, size, size, 3) uint8, manifest): the manifest lists the
    kept images in array order ("images"), the skipped ones with reasons
    ("skipped": [{"path", "reason"}]), the template used and where the cache is.
    template None → the Procrustes mean of this folder's landmarks. A folder
    with no usable image is a ValueError naming it.
    """
    folder = Path(folder)
    entries = folder_landmarks(folder, cache_dir=cache_dir, landmarks=landmarks, progress=progress)
    found = {rel: np.asarray(e["landmarks"], dtype=np.float64) for rel, e in entries.items() if "landmarks" in e}
    if template is None:
        if not found:
            raise ValueError(f"{folder}: no face found in any of its {len(entries)} images")
        template = template_from_landmarks(np.stack(list(found.values())), size)
    template = np.asarray(template, dtype=np.float64)
    cache = _folder_cache(folder, cache_dir, landmarks)
    tag = f"{size}-{_digest(np.round(template, 3).tolist(), _digest(entries), CACHE_VERSION)}"
    crops_path, manifest_path = cache / f"crops-{tag}.npy", cache / f"manifest-{tag}.json"
    if crops_path.is_file() and manifest_path.is_file():
        return np.load(crops_path), json.loads(manifest_path.read_text())

    skipped = [{"path": rel, "reason": e["reason"]} for rel, e in entries.items() if "reason" in e]
    kept, crops = [], []
    with _progress(progress) as bar:
        task = bar.add_task(f"aligning {folder.name}", total=len(found))
        for rel, points in found.items():
            try:
                crops.append(_crop_one(folder / rel, points, template, size))
                kept.append(rel)
            except (ImageError, NoFaceError, FaceTooSmallError) as exc:
                skipped.append({"path": rel, "reason": str(exc)})
            bar.advance(task)
    if not kept:
        raise ValueError(f"{folder}: none of its {len(entries)} images gave a usable face (first reason: {skipped[0]['reason'] if skipped else 'no images'})")
    images = np.stack(crops)
    manifest = {
        "folder": str(folder.resolve()),
        "landmarks": landmarks,
        "size": size,
        "template": np.round(template, 3).tolist(),
        "images": kept,
        "skipped": sorted(skipped, key=lambda s: s["path"]),
        "cache": str(cache),
    }
    with atomic_file(crops_path) as f:
        np.save(f, images)
    write_atomic(manifest_path, json.dumps(manifest, indent=1).encode())
    return images, manifest

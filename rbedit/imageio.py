"""Reading and writing images with Pillow, per DESIGN §9.

Reading: EXIF orientation applied; palette, grey, 1-bit, 16-bit, float and
CMYK converted to 8-bit RGB; transparent images are composited onto a
background that contrasts with their content (so a black digit on a
transparent sheet stays visible) and their alpha channel is returned so the
output can keep it; decompression bombs, truncated and non-image files are
refused with a one-line `ImageError` that names the file.

Writing: atomic (temporary file in the same folder, then rename), the format
taken from the extension, and never onto an input file.
"""

from __future__ import annotations

import io
import math
import os
import struct
import warnings
import zlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from rbedit.atomic import write_atomic

# Extensions walked in folders and accepted as inputs; other files are ignored.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".pbm", ".pnm"}
)
WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}
ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
SMALL_PNG_PIXELS = 256 * 256  # PNGs up to this size are written by _png, larger ones by Pillow
SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})


class ImageError(ValueError):
    """An input file cannot be used as an image, or an output cannot be written."""


@dataclass
class Picture:
    """An image as the editor sees it: 8-bit RGB plus the alpha channel it came with."""

    rgb: np.ndarray  # (H, W, 3) uint8, alpha already composited
    alpha: np.ndarray | None = None  # (H, W) uint8, None when the input had none
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        """(width, height), like PIL."""
        return self.rgb.shape[1], self.rgb.shape[0]


def read_image(path: str | os.PathLike) -> Picture:
    """Read an image file; raises ImageError (one line, naming the file) for anything unusable."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # One read of the whole file: Pillow's own reads are many small system calls.
            with Image.open(io.BytesIO(path.read_bytes())) as img:
                ImageOps.exif_transpose(img, in_place=True)  # (our own image: no copy needed)
                return _picture(img, path)
    except ImageError:
        raise
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{path}: is a folder, not an image") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (or a format Pillow cannot read)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(
            f"{path}: refused, larger than {Image.MAX_IMAGE_PIXELS} pixels (possible decompression bomb)"
        ) from None
    except PermissionError:
        raise ImageError(f"{path}: permission denied") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as err:
        # Truncated or corrupt data: Pillow raises a zoo of types with multi-line messages.
        message = " ".join(str(err).split()) or type(err).__name__
        raise ImageError(f"{path}: truncated or corrupt image ({message})") from None


def from_pil(img: Image.Image, *, path: Path | None = None) -> Picture:
    """Convert a PIL image of any mode to a Picture (EXIF orientation applied)."""
    return _picture(ImageOps.exif_transpose(img) or img, path)


def _picture(img: Image.Image, path: Path | None) -> Picture:
    """A Picture of an upright PIL image of any mode."""
    mode = img.mode
    alpha = None
    if mode in SIXTEEN_BIT_MODES or mode == "I":
        values = np.asarray(img).astype(np.float64)
        # 16-bit data; mode "I" holding only 8-bit values is left as it is.
        full = 65535.0 if mode in SIXTEEN_BIT_MODES or values.max(initial=0) > 255 else 255.0
        rgb = _grey_to_rgb(values / full)
    elif mode == "F":
        values = np.asarray(img).astype(np.float64)
        rgb = _grey_to_rgb(values if values.max(initial=0) <= 1.0 else values / 255.0)
    elif mode in ALPHA_MODES or "transparency" in img.info:
        rgba = np.asarray(img.convert("RGBA"))
        rgb, alpha = rgba[..., :3].copy(), rgba[..., 3].copy()
    elif mode == "CMYK":
        rgb = np.array(_cmyk_to_rgb(img))
    elif mode == "RGB":
        rgb = np.array(img)  # (convert("RGB") would copy it first: a third of reading a small PNG)
    else:
        rgb = np.array(img.convert("RGB"))  # a writable copy (torch.from_numpy warns on read-only arrays)
    if alpha is not None:
        rgb = composite(rgb, alpha)
        if alpha.min() == 255:
            alpha = None  # an alpha channel that is opaque everywhere carries nothing worth keeping
    return Picture(np.ascontiguousarray(rgb, dtype=np.uint8), alpha, path)


def from_array(array: np.ndarray) -> Picture:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) array, uint8 or float in [0, 1], to a Picture."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.floating) and not np.issubdtype(arr.dtype, np.bool_):
            raise ValueError(f"image arrays must be uint8 or float in [0, 1], got {arr.dtype}")
        arr = (np.clip(arr.astype(np.float64), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"image arrays must be (H, W), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    if arr.shape[2] == 1:
        return Picture(np.repeat(arr, 3, axis=2))
    if arr.shape[2] == 4:
        alpha = arr[..., 3].copy()
        return Picture(composite(arr[..., :3], alpha), None if alpha.min() == 255 else alpha)
    return Picture(np.ascontiguousarray(arr))


def _grey_to_rgb(unit: np.ndarray) -> np.ndarray:
    grey = (np.clip(unit, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """Use the embedded ICC profile when there is one (print CMYK is not 255 − x)."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            from PIL import ImageCms

            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except Exception:  # a broken profile or no littlecms: fall back to Pillow's plain formula
            pass
    return img.convert("RGB")


def composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite (H, W, 3) over a black or white background, whichever contrasts with the content."""
    a = alpha.astype(np.float32)[..., None] / 255.0
    weight = float(a.sum())
    luminance = (rgb.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    mean = float((luminance * a).sum() / weight) if weight > 0 else 0.0
    background = 0.0 if mean > 127.5 else 255.0
    out = rgb.astype(np.float32) * a + background * (1.0 - a)
    return (out + 0.5).astype(np.uint8)


def output_format(path: str | os.PathLike) -> str:
    """Pillow format name for an output path's extension, or ImageError."""
    suffix = Path(path).suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise ImageError(f"{path}: unsupported output extension {suffix!r}; use one of {', '.join(WRITE_FORMATS)}")
    return WRITE_FORMATS[suffix]


def file_key(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of an existing file: identifies it across links and spellings."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def write_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    protected: Collection[tuple[int, int]] = frozenset(),
) -> Path:
    """Write (H, W, 3) uint8 [+ (H, W) alpha] atomically; refuse to replace a protected (input) file.

    Alpha is dropped for formats that cannot hold it (JPEG, BMP).
    """
    path = Path(path)
    fmt = output_format(path)
    key = file_key(path)
    if key is not None and key in protected:
        raise ImageError(f"{path}: refusing to overwrite an input file")
    return write_atomic(path, encode_image(rgb, alpha if fmt in ALPHA_FORMATS else None, fmt))


def encode_image(rgb: np.ndarray, alpha: np.ndarray | None, fmt: str) -> bytes:
    """The file's bytes: (H, W, 3) uint8 [+ (H, W) alpha] in Pillow format `fmt`."""
    pixels = np.ascontiguousarray(rgb if alpha is None else np.dstack([rgb, alpha]), dtype=np.uint8)
    if fmt == "PNG" and pixels.shape[0] * pixels.shape[1] <= SMALL_PNG_PIXELS:
        return _png(pixels)
    img = Image.fromarray(pixels, "RGB" if alpha is None else "RGBA")
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    return buffer.getvalue()


def _png(pixels: np.ndarray) -> bytes:
    """8-bit RGB or RGBA PNG, rows unfiltered, zlib level 6.

    Batch runs write many small images, and Pillow's PNG encoder spends
    160-230 µs on a 32×32 digit (mostly setting up its compressor) where this
    takes 60-90 µs.
    Larger pictures go to Pillow, whose row filters compress photos better.
    """
    h, w, channels = pixels.shape
    rows = np.zeros((h, 1 + w * channels), np.uint8)  # each row starts with filter type 0 (none)
    rows[:, 1:] = pixels.reshape(h, -1)
    colour_type = 2 if channels == 3 else 6  # truecolour, truecolour with alpha

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)  # 8 bits, deflate, filter method 0, not interlaced
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b"")


def resize(rgb: np.ndarray, size: int | tuple[int, int], *, alpha: np.ndarray | None = None):
    """Resize (H, W, 3) [and alpha] to size×size or (width, height): area when shrinking, Lanczos when growing."""
    width, height = (size, size) if isinstance(size, int) else size
    if (rgb.shape[1], rgb.shape[0]) == (width, height):
        return rgb, alpha
    grow = width > rgb.shape[1] or height > rgb.shape[0]
    method = Image.LANCZOS if grow else Image.BOX
    out = np.asarray(Image.fromarray(rgb).resize((width, height), method))
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha).resize((width, height), method))
    return out, alpha


def make_grid(images: Sequence[np.ndarray], *, columns: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile equally sized (S, S, 3) images into one (rows, columns) grid with black padding."""
    if not images:
        raise ValueError("make_grid needs at least one image")
    n = len(images)
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    h, w = images[0].shape[:2]
    grid = np.zeros((rows * h + (rows + 1) * pad, columns * w + (columns + 1) * pad, 3), np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        grid[top : top + h, left : left + w] = image
    return grid

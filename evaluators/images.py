"""Finding and decoding a sample's output image, safely.

A sample's ``image`` field is one of (DESIGN §3):
- a path relative to the image root (``images.root`` in genobs.yaml, by default the
  directory that holds the database file); it may not climb out of the root with ``..``;
- an absolute path or a ``file://`` URI;
- a ``data:`` URI (base64): its bytes are written once, content-addressed, under
  ``<image_root>/_blobs/sha256/<2 hex>/<sha256>.<ext>`` and read from there.

Decoding enforces a byte limit on the file and a pixel limit read from the header before
any pixel is decoded (decompression bombs). Every problem raises ImageError with the reason;
the runner turns it into an error score row for that sample and goes on.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from PIL import Image, UnidentifiedImageError

DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 * 1024  # 20 MiB on disk (genobs.yaml images.max_bytes)
DEFAULT_MAX_IMAGE_PIXELS = 40_000_000  # ~6300 x 6300 (images.max_pixels)
BLOB_DIR = "_blobs"

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[^,;]*)*?),(?P<data>.*)$", re.S)
_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/tiff": "tiff",
}


class ImageError(Exception):
    """A sample's image cannot be used; the message is the reason stored in the score row."""


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = DEFAULT_MAX_IMAGE_BYTES
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS


def store_data_uri(uri: str, blob_root: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> Path:
    """Write a base64 ``data:`` URI's bytes content-addressed under ``blob_root``; return the path.

    Writing is atomic (temp file + rename) and idempotent: the same bytes map to the same path.
    """
    match = _DATA_URI.match(uri)
    if match is None:
        raise ImageError("malformed data: URI (expected data:<mime>;base64,<data>)")
    if ";base64" not in (match.group("params") or ""):
        raise ImageError("data: URI is not base64-encoded (expected ;base64)")
    payload = match.group("data")
    if len(payload) * 3 // 4 > max_bytes:
        raise ImageError(f"data: URI image is larger than the limit of {max_bytes} bytes")
    try:
        content = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise ImageError(f"data: URI has invalid base64: {exc}") from None
    digest = hashlib.sha256(content).hexdigest()
    extension = _EXTENSIONS.get((match.group("mime") or "").lower(), "bin")
    target = blob_root / BLOB_DIR / "sha256" / digest[:2] / f"{digest}.{extension}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return target


def resolve_image_path(image: str | None, image_root: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> Path:
    """Map a sample's ``image`` field to a file on disk (see the module docstring)."""
    if image is None or not image.strip():
        raise ImageError("sample has no image")
    value = image.strip()
    if value.startswith("data:"):
        return store_data_uri(value, image_root, max_bytes)
    if value.startswith("file:"):
        parsed = urlparse(value)
        if parsed.netloc not in ("", "localhost"):
            raise ImageError(f"file URI with a remote host is not supported: {value[:200]}")
        return Path(unquote(parsed.path))
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", value):
        raise ImageError(f"unsupported image URI scheme (use a path, file:// or data:): {value[:200]}")
    path = Path(value)
    if path.is_absolute():
        return path
    root = image_root.resolve()
    resolved = (root / path).resolve()
    if not resolved.is_relative_to(root):
        raise ImageError(f"image path {value[:200]!r} points outside the image root {root}")
    return resolved


def open_image(path: Path, limits: ImageLimits = ImageLimits(), draft_size: int | None = None) -> Image.Image:
    """Decode ``path`` to an RGB PIL image within ``limits``.

    ``draft_size`` lets JPEG decoding downscale by a power of two while staying at least
    that many pixels on each side (much faster for large photos, what CLIP crops to anyway).
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"image file not found: {path}") from None
    except OSError as exc:
        raise ImageError(f"image file unreadable: {path}: {exc.strerror or exc}") from None
    if size > limits.max_bytes:
        raise ImageError(f"image file is {size} bytes, over the limit of {limits.max_bytes}: {path}")
    if size == 0:
        raise ImageError(f"image file is empty: {path}")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImageError(
                    f"image is {width}x{height} = {width * height} pixels, over the limit of "
                    f"{limits.max_pixels} (decompression-bomb guard): {path}"
                )
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            return img.convert("RGB")
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not a readable image (unknown or corrupt format): {path}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image rejected as a decompression bomb: {exc}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"image cannot be decoded: {path}: {exc}") from None


def load_sample_image(
    image: str | None,
    image_root: Path,
    limits: ImageLimits = ImageLimits(),
    draft_size: int | None = None,
) -> Image.Image:
    """Resolve and decode a sample's image field; ImageError says why it cannot be used."""
    return open_image(resolve_image_path(image, image_root, limits.max_bytes), limits, draft_size)

"""Finding and decoding a sample's output image, safely.

A sample's ``image`` field is one of (DESIGN §3):
- a path relative to the image root (``images.root`` in genobs.yaml, by default the
  directory that holds the database file);
- an absolute path or a ``file://`` URI, naming a file under the image root;
- a ``data:`` URI (base64): its bytes are written once, content-addressed, under
  ``<image_root>/_blobs/sha256/<2 hex>/<sha256>.<ext>`` and read from there.

Sample fields come from whoever can post to the collector, so a path is only read when
it lies under the image root after every symlink and ``..`` is resolved; anything else is
refused with one message that does not depend on whether the file exists, and messages
name files by their path relative to the root, never by a full path.

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


OUTSIDE_ROOT = ("image path is outside the image root (images.root in genobs.yaml): only files "
                "under it, or data: URIs, are read")


def resolve_image_path(image: str | None, image_root: Path, max_bytes: int = DEFAULT_MAX_IMAGE_BYTES) -> Path:
    """Map a sample's ``image`` field to a file under ``image_root`` (see the module docstring)."""
    if image is None or not image.strip():
        raise ImageError("sample has no image")
    value = image.strip()
    if "\x00" in value:
        raise ImageError("image path holds a NUL character")
    if value.startswith("data:"):
        return store_data_uri(value, image_root, max_bytes)
    if value.lower().startswith("file:"):
        parsed = urlparse(value)
        if parsed.netloc not in ("", "localhost"):
            raise ImageError("file URI with a remote host is not supported")
        value = unquote(parsed.path)
        if "\x00" in value:
            raise ImageError("image path holds a NUL character")
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+:", value) and not re.match(r"^[a-zA-Z]:[\\/]", value):
        raise ImageError("unsupported image URI scheme (use a path under the image root, file:// or data:)")
    root = image_root.resolve()
    try:
        # an absolute path stays itself; every symlink and ".." is resolved before the check
        resolved = (root / Path(value)).resolve()
    except (OSError, RuntimeError, ValueError):   # a symlink loop, an unusable name
        raise ImageError(OUTSIDE_ROOT) from None
    if not resolved.is_relative_to(root):
        raise ImageError(OUTSIDE_ROOT)
    return resolved


def _shown(path: Path, root: Path | None) -> str:
    """``path`` as messages name it: relative to the image root (never a full path)."""
    if root is not None:
        try:
            return str(path.relative_to(root.resolve()))
        except ValueError:
            pass
    return path.name


def open_image(path: Path, limits: ImageLimits = ImageLimits(), draft_size: int | None = None,
               root: Path | None = None) -> Image.Image:
    """Decode ``path`` to an RGB PIL image within ``limits``; messages name the file
    relative to ``root`` (or by its name alone).

    ``draft_size`` lets JPEG decoding downscale by a power of two while staying at least
    that many pixels on each side (much faster for large photos, what CLIP crops to anyway).
    """
    shown = _shown(path, root)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(f"image file not found: {shown}") from None
    except OSError as exc:
        raise ImageError(f"image file unreadable: {shown}: {exc.strerror or type(exc).__name__}") from None
    if not path.is_file():
        raise ImageError(f"not a regular file: {shown}")
    if size > limits.max_bytes:
        raise ImageError(f"image file is {size} bytes, over the limit of {limits.max_bytes}: {shown}")
    if size == 0:
        raise ImageError(f"image file is empty: {shown}")
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limits.max_pixels:
                raise ImageError(
                    f"image is {width}x{height} = {width * height} pixels, over the limit of "
                    f"{limits.max_pixels} (decompression-bomb guard): {shown}"
                )
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", (draft_size, draft_size))
            return img.convert("RGB")
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"not a readable image (unknown or corrupt format): {shown}") from None
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image rejected as a decompression bomb: {shown}") from None
    except (OSError, ValueError, SyntaxError) as exc:
        # PIL's message may hold the full path: only its kind is kept
        raise ImageError(f"image cannot be decoded: {shown}: {type(exc).__name__}") from None


def load_sample_image(
    image: str | None,
    image_root: Path,
    limits: ImageLimits = ImageLimits(),
    draft_size: int | None = None,
) -> Image.Image:
    """Resolve and decode a sample's image field; ImageError says why it cannot be used."""
    return open_image(resolve_image_path(image, image_root, limits.max_bytes), limits, draft_size, root=image_root)

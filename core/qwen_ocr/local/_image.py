"""Load an image for the local provider with the same checks as the service path (``qwen_ocr.imaging``).

The bytes are recognised by their magic numbers, refused when the service would refuse them (size, aspect ratio,
decompression bombs, multi-page files), turned upright by their EXIF orientation and flattened onto white, exactly
as :func:`qwen_ocr.imaging.prepare_image` does, but never downscaled or re-encoded: the local engine reads the
pixels of the image as you passed it in, and its boxes are in those pixels. URLs to fetch are refused: the local
provider never touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, ImageOps

from ..errors import InvalidImageError
from ..imaging import (
    ImageInput,
    PreparedImage,
    _check_size,
    _decode_data_url,
    _exif_orientation,
    _flatten,
    _read_path,
    decode_checked,
    open_checked,
)

__all__ = ["load_image"]


def load_image(image: ImageInput) -> Image.Image:
    """Decode, check and orient an image; returns an ``L`` or ``RGB`` PIL image in upright pixels.

    Raises:
        InvalidImageError: the image cannot be used (the message says why), or it is a URL to download.
    """
    if isinstance(image, PreparedImage):  # a document page or an image already prepared for sending
        return (
            _decode(_decode_data_url(image.url), "the prepared image")
            if image.url.startswith("data:")
            else (load_image(image.url))
        )
    if isinstance(image, Image.Image):
        width, height = image.size
        _check_size(width, height, "the PIL image")
        return _upright_pixels(image, "the PIL image", exif=False)
    if isinstance(image, str):
        stripped = image.strip()
        lowered = stripped[:12].lower()
        if lowered.startswith(("http://", "https://", "oss://", "file://")):
            raise InvalidImageError(
                "the local provider works offline and does not fetch URLs; pass the file's path, its bytes or a "
                "PIL image (or use provider='dashscope', which fetches http(s) and oss:// URLs itself).",
                code="UnsupportedURL",
            )
        if lowered.startswith("data:"):
            return _decode(_decode_data_url(stripped), "data: URL")
        return _decode(_read_path(Path(stripped)), stripped)
    if isinstance(image, os.PathLike):
        path = Path(os.fspath(image))
        return _decode(_read_path(path), str(path))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode(bytes(image), "bytes")
    raise InvalidImageError(
        f"cannot read an image from a {type(image).__name__}. Pass a path, a data: URL, bytes, or a PIL.Image.",
        code="UnsupportedInput",
    )


def _decode(data: bytes, source: str) -> Image.Image:
    im, fmt = open_checked(data, source)
    decode_checked(im, source, fmt)
    return _upright_pixels(im, source, exif=True)


def _upright_pixels(im: Image.Image, source: str, *, exif: bool) -> Image.Image:
    """Turned by its EXIF orientation (files only: a PIL image is taken as it is, as the service path does) and
    flattened onto white."""
    try:
        if exif and _exif_orientation(im) != 1:
            im = ImageOps.exif_transpose(im)
        return _flatten(im)
    except Exception as exc:
        raise InvalidImageError(f"{source} cannot be decoded ({exc}).", code="CorruptImage") from None

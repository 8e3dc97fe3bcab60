"""Image inputs: recognise, check, orient and downscale them before any request (CPU only, no network).

What the service accepts: BMP, JPEG, PNG, TIFF, WEBP, HEIC (JPEG or PNG only past 4K: a side over 3840 x 2160);
each side at least 10 px; aspect ratio <= 200:1; at most 10 MB = 10,000,000 bytes (also as a base64 string;
``qwen3.5-ocr`` fetches up to 20 MB from a URL). It resizes every image with ``smart_resize`` into the pixel
budget of the request, so a larger image only costs upload bytes: we downscale it here to exactly what the model
will use, remember the scale so that boxes come back in the pixels of the image you passed in, and the request
states that budget (:mod:`qwen_ocr.budget`: 2,560 tokens by default, ``resolution="high"`` or ``"max"`` for more).

Example::

    from qwen_ocr import estimate_tokens, smart_resize
    smart_resize(4000, 3000, patch=32, min_pixels=3072, max_pixels=8388608)   # (3328, 2496)
    estimate_tokens("scan.png", model="qwen-vl-ocr-latest")                   # at the default budget
    estimate_tokens("scan.png", resolution="high")                             # at the documented default
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import io
import math
import os
import stat
import struct
import sys
import warnings
from dataclasses import dataclass, replace
from typing import IO, TYPE_CHECKING, Any, Union

from ._png import ADAPTIVE_LEVEL, encode_bilevel, is_black_and_white
from .budget import Resolution, pixel_budget
from .errors import InvalidArgumentError, InvalidImageError, QwenOCRError
from .models import ModelSpec, model_spec

if TYPE_CHECKING:
    from typing import TypeAlias

    from PIL import Image
    from typing_extensions import TypeIs

__all__ = [
    "FOUR_K",
    "MAX_ASPECT_RATIO",
    "MAX_DECODED_PIXELS",
    "MAX_ENCODED_BYTES",
    "MIN_SIDE",
    "SUPPORTED_FORMATS",
    "ImageInput",
    "PreparedImage",
    "decode_checked",
    "describe_bytes",
    "estimate_tokens",
    "open_checked",
    "prepare_image",
    "smart_resize",
    "sniff_format",
]

ImageInput: TypeAlias = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, "Image.Image", "PreparedImage"]
"""What ``ocr()`` accepts: a path, an http(s)/``data:``/``oss://`` URL, raw bytes, a ``PIL.Image``, or a
:class:`PreparedImage` (e.g. ``page.prepare()`` of a document page)."""


def _is_pil(image: object) -> TypeIs[Image.Image]:
    """Whether ``image`` is a ``PIL.Image``, without importing Pillow when nothing has (then it cannot be one):
    Pillow is imported when an image is decoded, not with the client (issue 17)."""
    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(image, module.Image)


SUPPORTED_FORMATS = ("BMP", "JPEG", "PNG", "TIFF", "WEBP", "HEIC")
MIN_SIDE = 10
"""The shortest side the service reads (it refuses less than 10 px)."""
MAX_ASPECT_RATIO = 200.0
MAX_ENCODED_BYTES = 10_000_000
"""The service's limit on one image and on its base64 string, "10 MB" as 10,000,000 bytes (not 10 MiB); we keep
the ``data:`` URL under it."""
FOUR_K = (3840, 2160)
"""Past 4K (a long side over 3840 or a short side over 2160 px) the service reads JPEG and PNG only: other formats
are re-encoded before sending."""
_PAST_4K_FORMATS = ("JPEG", "PNG")
MAX_DECODED_PIXELS = 178_956_970
"""Images larger than this once decoded are refused before decoding (decompression bombs)."""

_MIME = {
    "BMP": "image/bmp",
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "TIFF": "image/tiff",
    "WEBP": "image/webp",
    "HEIC": "image/heic",
}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def sniff_format(head: bytes) -> str | None:
    """The supported image format of these leading bytes, or ``None``.

    >>> sniff_format(b"\\x89PNG\\r\\n\\x1a\\n....")
    'PNG'
    """
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head.startswith(b"BM") and len(head) >= 14:
        return "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "TIFF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "HEIC"
    return None


def describe_bytes(head: bytes) -> str:
    """A short human description of what some bytes look like, for error messages.

    >>> describe_bytes(b"%PDF-1.7")
    'a PDF document'
    """
    fmt = sniff_format(head)
    if fmt:
        return f"a {fmt} image"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if not head:
        return "an empty file"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "a GIF image"
    if head[4:8] == b"ftyp" and head[8:12] == b"avif":
        return "an AVIF image"
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in head):
        return "an SVG drawing"
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "an HTML page"
    if stripped.startswith(b"<?xml"):
        return "an XML document"
    if stripped.startswith((b"{", b"[")):
        return "JSON or other text"
    if head.startswith(b"PK\x03\x04"):
        return "a ZIP archive (or an Office document)"
    if head.startswith(b"\x1f\x8b"):
        return "a gzip archive"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data of an unknown kind"
    return "plain text"


def smart_resize(
    width: int,
    height: int,
    *,
    patch: int = 32,
    min_pixels: int = 3072,
    max_pixels: int = 8_388_608,
) -> tuple[int, int]:
    """The size the service resizes an image to: each side a multiple of ``patch``, area within the budget.

    This is the documented ``smart_resize`` (Qwen2-VL and Qwen-OCR docs): round each side to the nearest
    multiple of ``patch``; if the area is over ``max_pixels``, scale down (flooring); if under ``min_pixels``,
    scale up (ceiling); the aspect ratio is kept as closely as the rounding allows.

    >>> smart_resize(1000, 500, patch=28, min_pixels=3136, max_pixels=6422528)
    (1008, 504)
    """
    if width <= 0 or height <= 0:
        raise InvalidArgumentError(f"image size must be positive, got {width}x{height}")
    h_bar = max(patch, _round_by(height, patch))
    w_bar = max(patch, _round_by(width, patch))
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(patch, math.floor(height / beta / patch) * patch)
        w_bar = max(patch, math.floor(width / beta / patch) * patch)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / patch) * patch
        w_bar = math.ceil(width * beta / patch) * patch
    return w_bar, h_bar


def _round_by(value: float, factor: int) -> int:
    # Python's round() rounds half to even, as the reference implementation does.
    return round(value / factor) * factor


def tokens_for_size(
    width: int,
    height: int,
    *,
    model: str | ModelSpec = "qwen-vl-ocr",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    resolution: Resolution | None = None,
) -> int:
    """Image tokens for an image of this size: ``resized area / patch**2 + 2``, capped per image, at the budget of
    :func:`qwen_ocr.budget.pixel_budget` (the default ``"standard"`` level unless told otherwise).

    >>> tokens_for_size(4000, 3000), tokens_for_size(4000, 3000, resolution="high")
    (2496, 8114)
    """
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    budget = pixel_budget(spec, resolution=resolution, min_pixels=min_pixels, max_pixels=max_pixels)
    w, h = smart_resize(width, height, patch=spec.patch, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)
    return min((w * h) // (spec.patch * spec.patch), spec.max_image_tokens) + 2


def estimate_tokens(
    image: ImageInput | tuple[int, int],
    *,
    model: str | ModelSpec = "qwen-vl-ocr",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    resolution: Resolution | None = None,
) -> int:
    """Image tokens an image will cost, from its size alone (only its header is read): exactly the pixels
    :func:`prepare_image` sends for the same budget, over ``patch**2``, plus 2.

    ``image`` may be anything ``ocr()`` accepts except a URL, or a ``(width, height)`` pair. The budget: the
    ``resolution`` level (default ``"standard"``, 2,560 tokens at most) or ``max_pixels`` as given; a
    :class:`PreparedImage` is estimated at the budget it was prepared for unless one is given.

    >>> estimate_tokens((1000, 1000), model="qwen-vl-ocr-latest")
    963
    >>> estimate_tokens((4000, 3000)), estimate_tokens((4000, 3000), resolution="high")
    (2496, 8114)
    """
    if isinstance(image, tuple):
        width, height = image
    elif isinstance(image, PreparedImage) and image.sent_size is not None:
        if resolution is None and min_pixels is None and max_pixels is None and image.max_pixels is not None:
            min_pixels, max_pixels = image.min_pixels, image.max_pixels  # the budget it was prepared for
        width, height = image.sent_size
    else:
        width, height = _peek_size(image)
    return tokens_for_size(
        width, height, model=model, min_pixels=min_pixels, max_pixels=max_pixels, resolution=resolution
    )


@dataclass(frozen=True)
class PreparedImage:
    """An image ready to send.

    Attributes:
        url: what goes on the wire: the caller's http(s)/``oss://`` URL, or a ``data:`` URL we built.
        original_size: ``(width, height)`` as the caller passed it in (after EXIF rotation); ``None`` for URLs.
        sent_size: ``(width, height)`` of the image sent; ``None`` for URLs.
        scale: factors that map coordinates of the sent image back to the original.
        mime: the MIME type sent (``None`` for URLs).
        nbytes: bytes of the encoded image (before base64); 0 for URLs.
        reencoded: whether we re-encoded the image (downscaled, rotated, flattened) or sent its own bytes.
        min_pixels: the lower pixel budget the image was prepared for (``None``: not known); the request states it.
        max_pixels: the upper pixel budget the image was prepared for (``None``: not known); the request states it.
    """

    url: str
    original_size: tuple[int, int] | None = None
    sent_size: tuple[int, int] | None = None
    scale: tuple[float, float] = (1.0, 1.0)
    mime: str | None = None
    nbytes: int = 0
    reencoded: bool = False
    min_pixels: int | None = None
    max_pixels: int | None = None

    @property
    def is_remote(self) -> bool:
        """Whether the service fetches the image itself (http(s) or ``oss://`` URL)."""
        return not self.url.startswith("data:")


def prepare_image(
    image: ImageInput,
    *,
    model: str | ModelSpec = "qwen-vl-ocr",
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    resolution: Resolution | None = None,
) -> PreparedImage:
    """Check an image against the service's limits and make it ready to send.

    URLs (http, https, oss) are passed through untouched: the service fetches them. Everything else is read
    locally, checked (format by magic bytes, size, aspect ratio, decompression bombs), turned upright by its EXIF
    orientation, flattened onto white if it has transparency, and downscaled to the pixel budget (the
    ``resolution`` level, default ``"standard"``, or ``max_pixels`` as given: :func:`qwen_ocr.budget.pixel_budget`),
    never upscaled. An image that needs none of this is sent byte for byte as it came. The result carries its
    budget (``min_pixels``, ``max_pixels``), which the request states.

    Raises:
        InvalidImageError: the image cannot be used; the message says why and what to do.
        InvalidArgumentError: an unknown ``resolution``, or both ``resolution`` and ``max_pixels``.
    """
    spec = model if isinstance(model, ModelSpec) else model_spec(model)
    if isinstance(image, PreparedImage):
        return image
    budget = pixel_budget(spec, resolution=resolution, min_pixels=min_pixels, max_pixels=max_pixels)
    prepared = _prepare(image, spec, budget.min_pixels, budget.max_pixels)
    return replace(prepared, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)


def _prepare(image: ImageInput, spec: ModelSpec, min_pixels: int, max_pixels: int) -> PreparedImage:
    if isinstance(image, str):
        stripped = image.strip()
        lowered = stripped[:12].lower()
        if lowered.startswith(("http://", "https://", "oss://")):
            return PreparedImage(url=stripped)
        if lowered.startswith("data:"):
            return _prepare_bytes(_decode_data_url(stripped), spec, min_pixels, max_pixels, source="data: URL")
        if lowered.startswith("file://"):
            raise InvalidImageError(
                "file:// URLs are not read; pass the path itself (e.g. ocr('scan.png')).",
                code="UnsupportedURL",
            )
        return _prepare_bytes(_read_path(stripped), spec, min_pixels, max_pixels, source=stripped)
    if isinstance(image, os.PathLike):
        text = os.fsdecode(os.fspath(image))
        return _prepare_bytes(_read_path(text), spec, min_pixels, max_pixels, source=text)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _prepare_bytes(bytes(image), spec, min_pixels, max_pixels, source="bytes")
    if _is_pil(image):
        return _prepare_pil(image, spec, min_pixels, max_pixels)
    raise InvalidImageError(
        f"cannot read an image from a {type(image).__name__}. Pass a path, an http(s) or data: URL, bytes, or a "
        "PIL.Image.",
        code="UnsupportedInput",
    )


# --------------------------------------------------------------------------------------------------------------


def _decode_data_url(url: str) -> bytes:
    header, sep, payload = url.partition(",")
    if not sep:
        raise InvalidImageError("the data: URL has no ',' before its payload.", code="InvalidDataURL")
    if ";base64" not in header.lower():
        raise InvalidImageError(
            "only base64 data: URLs are accepted (data:image/png;base64,...).", code="InvalidDataURL"
        )
    try:
        return base64.b64decode(payload.strip(), validate=False)
    except (binascii.Error, ValueError) as exc:
        raise InvalidImageError(f"the data: URL's base64 payload is broken ({exc}).", code="InvalidDataURL") from None


def _path_problem(text: str) -> str | None:
    """Why this path can never name a file (a sentence), or ``None``: empty, or holding a NUL byte.

    >>> _path_problem("  ")
    "the path is empty ('  '); pass the path of a file"
    >>> _path_problem("scan.png") is None
    True
    """
    if not text.strip():
        return f"the path is empty ({text!r}); pass the path of a file"
    if "\x00" in text:
        return f"{text!r} holds a NUL byte (\\x00), which no file name can contain"
    return None


class _NotAFile(OSError):
    """The path names a FIFO, a device or a socket: reading it could block or never end (see :func:`_open_regular`)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path} is a {kind}, not a regular file")
        self.kind = kind


def _open_regular(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open a regular file for reading, binary. Raises ``IsADirectoryError`` for a directory and
    :class:`_NotAFile` for a FIFO, a device or a socket (checked on the open file, and without blocking on a
    FIFO that has no writer), other ``OSError`` as ``os.open`` does, and ``ValueError`` for a NUL byte."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", os.fspath(path))
        if not stat.S_ISREG(mode):
            raise _NotAFile(os.fspath(path), _file_kind(mode))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _read_regular(path: str | os.PathLike[str], limit: int, error: type[QwenOCRError], *, noun: str) -> bytes:
    """At most ``limit`` bytes of the regular file ``path``. Every way it cannot be read is an ``error`` naming it,
    with its code: ``IsADirectory`` (not ``noun``), ``NotAFile`` (a FIFO, a device, a socket), ``FileNotFound``,
    ``PermissionDenied`` or ``ReadError``."""
    text = os.fspath(path)
    try:
        if os.path.isdir(text):
            raise IsADirectoryError(errno.EISDIR, "Is a directory", text)
        with _open_regular(text) as fh:
            return fh.read(limit)
    except IsADirectoryError:
        raise error(
            f"{text} is a directory, not {noun}. Pass its files one by one, or use the loaders for folders.",
            code="IsADirectory",
        ) from None
    except _NotAFile as exc:
        raise error(f"{exc.args[0]}; only regular files are read. Copy it to a file first.", code="NotAFile") from None
    except FileNotFoundError:
        raise error(f"no such file: {text}.", code="FileNotFound") from None
    except PermissionError:
        raise error(f"no permission to read {text}.", code="PermissionDenied") from None
    except OSError as exc:
        raise error(f"cannot read {text}: {exc.strerror or exc}.", code="ReadError") from None


def _read_path(path: str | os.PathLike[str]) -> bytes:
    text = os.fspath(path)
    problem = _path_problem(text)
    if problem is not None:
        raise InvalidImageError(f"{problem}.", code="InvalidPath")
    data = _read_regular(text, MAX_ENCODED_BYTES * 5 + 1, InvalidImageError, noun="an image")
    if len(data) > MAX_ENCODED_BYTES * 5:
        raise InvalidImageError(
            f"{text} is larger than {MAX_ENCODED_BYTES * 5 // 1_000_000} MB; no single image that large can be sent. "
            "Downscale it first.",
            code="ImageTooLarge",
        )
    return data


def _check_format(data: bytes, source: str) -> str:
    fmt = sniff_format(data[:32])
    if fmt is None:
        what = describe_bytes(data[:512])
        hint = (
            " PDFs are read page by page by the documents layer (qwen_ocr.documents) and the loaders."
            if what == "a PDF document"
            else ""
        )
        raise InvalidImageError(
            f"{source} is {what}, not an image the service accepts ({', '.join(SUPPORTED_FORMATS)}).{hint}",
            code="UnsupportedFormat",
        )
    if fmt == "HEIC":
        _register_heif()
    return fmt


_heif_registered: bool | None = None


def _register_heif() -> bool:
    global _heif_registered  # one-time plugin registration, as pillow-heif documents it
    if _heif_registered is None:
        try:
            from pillow_heif import register_heif_opener  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            _heif_registered = False
        else:
            register_heif_opener()
            _heif_registered = True
    return _heif_registered


def _open(data: bytes, source: str, fmt: str) -> Image.Image:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise _bomb(source, None) from None
    except UnidentifiedImageError:
        if fmt == "HEIC" and not _register_heif():
            raise InvalidImageError(
                f"{source} is a HEIC image; reading it locally needs the 'heic' extra: pip install 'qwen-ocr[heic]'.",
                code="MissingDependency",
            ) from None
        raise InvalidImageError(
            f"{source} looks like a {fmt} image but cannot be decoded: the file is corrupt or truncated.",
            code="CorruptImage",
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidImageError(
            f"{source} looks like a {fmt} image but cannot be decoded: the file is corrupt or truncated ({exc}).",
            code="CorruptImage",
        ) from None
    return im


def _header_size(data: bytes, fmt: str) -> tuple[int, int] | None:
    """Width and height from the header alone (PNG, BMP), read before Pillow so that bombs are named as such."""
    import struct

    if fmt == "PNG" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if fmt == "BMP" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(int(width)), abs(int(height))
    return None


def _bomb(source: str, size: tuple[int, int] | None) -> InvalidImageError:
    dims = f" ({size[0]}x{size[1]})" if size else ""
    return InvalidImageError(
        f"{source}{dims} would decode to more than {MAX_DECODED_PIXELS:,} pixels; refused as a possible "
        "decompression bomb. Downscale it first.",
        code="ImageTooLarge",
    )


def _check_size(width: int, height: int, source: str) -> None:
    if width * height > MAX_DECODED_PIXELS:
        raise _bomb(source, (width, height))
    if min(width, height) < MIN_SIDE:
        raise InvalidImageError(
            f"{source} is {width}x{height} px; the service needs at least {MIN_SIDE} px on each side. Upscale it "
            "or pass a larger image.",
            code="ImageTooSmall",
        )
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        raise InvalidImageError(
            f"{source} is {width}x{height} px, an aspect ratio of {ratio:.0f}:1; the service accepts at most "
            f"{MAX_ASPECT_RATIO:.0f}:1. Split it into pieces.",
            code="BadAspectRatio",
        )


def _peek_size(image: ImageInput) -> tuple[int, int]:
    if _is_pil(image):
        return image.size
    if isinstance(image, PreparedImage):
        if image.original_size is None:
            raise InvalidArgumentError("cannot estimate tokens of a URL without downloading it.")
        return image.original_size
    if isinstance(image, str) and image.strip()[:8].lower().startswith(("http://", "https://", "oss://")):
        raise InvalidArgumentError(
            "cannot estimate tokens of a URL without downloading it; pass the file or its (width, height)."
        )
    prepared_bytes: bytes
    if isinstance(image, str) and image.strip()[:5].lower() == "data:":
        prepared_bytes = _decode_data_url(image.strip())
    elif isinstance(image, (str, os.PathLike)):
        prepared_bytes = _read_path(os.fsdecode(os.fspath(image)))
    else:
        prepared_bytes = bytes(image)
    fmt = _check_format(prepared_bytes, "image")
    im = _open(prepared_bytes, "image", fmt)
    width, height = im.size
    if _exif_swaps_sides(im):
        width, height = height, width
    return width, height


def _exif_swaps_sides(im: Image.Image) -> bool:
    try:
        orientation = im.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block must not stop OCR
        return False
    return orientation in (5, 6, 7, 8)


def _exif_orientation(im: Image.Image) -> int:
    try:
        value = im.getexif().get(0x0112, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) else 1


def open_checked(data: bytes, source: str = "image") -> tuple[Image.Image, str]:
    """Open image bytes lazily after every check that needs no pixels; returns the image and its format.

    Checks: not empty, a supported format by magic bytes, no decompression bomb (from the header, before Pillow
    reads further), each side > 10 px, aspect ratio <= 200:1, a single page or frame. Pixels are not decoded yet:
    call :func:`decode_checked` (or let a JPEG ``draft`` pick a smaller scale first).

    Raises:
        InvalidImageError: naming the problem and what to do.
    """
    if not data:
        raise InvalidImageError(f"{source} is empty (0 bytes).", code="EmptyImage")
    fmt = _check_format(data, source)
    header = _header_size(data, fmt)
    if header is not None and header[0] * header[1] > MAX_DECODED_PIXELS:
        raise _bomb(source, header)
    im = _open(data, source, fmt)
    _check_size(im.size[0], im.size[1], source)
    if fmt in ("TIFF", "WEBP") and _has_more_frames(im, source, fmt):
        if fmt == "TIFF":
            pages = _count_tiff_pages(io.BytesIO(data), _MAX_COUNTED)
            count = f"{pages:,} pages" if pages <= _MAX_COUNTED else f"more than {_MAX_COUNTED:,} pages"
        else:
            count = f"{getattr(im, 'n_frames', 2)} frames"  # read from the WEBP header
        raise InvalidImageError(
            f"{source} is a {fmt} with {count}; ocr() reads one image. Read a multi-page file page by page with "
            "the documents layer (qwen_ocr.documents) or the loaders.",
            code="MultiPageImage",
        )
    return im, fmt


_MAX_COUNTED = 1_000
"""Pages of a multi-page TIFF counted for the message that refuses it."""


def _has_more_frames(im: Image.Image, source: str, fmt: str) -> bool:
    """Whether the image has a second frame, in constant time: Pillow's ``n_frames`` reads every directory of a
    TIFF, in time that grows with the square of their number (7 s for 40,000), just to say "more than one"."""
    if not getattr(im, "is_animated", False):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            im.seek(1)
    except Exception as exc:  # a broken second directory: Pillow raises TypeError, KeyError, struct.error...
        raise InvalidImageError(
            f"{source} looks like a {fmt} image but its list of pages is corrupt ({type(exc).__name__}: {exc}).",
            code="CorruptImage",
        ) from None
    return True


def _count_tiff_pages(fh: IO[bytes], limit: int) -> int:
    """The pages of a TIFF (classic or BigTIFF): the directories of its chain, each followed once (a link back to
    one already seen ends the chain, as it does for Pillow), counted up to ``limit + 1`` at most.

    One read per directory, in time linear in their number. A directory that cannot be read ends the count: the
    pages after it cannot be reached. A directory that can be reached but not parsed is still a page; using it
    raises a ``PageRenderError`` for that page alone.
    """
    position = fh.tell()
    pages = 0
    try:
        fh.seek(0)
        head = fh.read(16)
        order = "<" if head[:2] == b"II" else ">"
        if len(head) >= 16 and struct.unpack(order + "H", head[2:4])[0] == 43:  # BigTIFF: 8-byte offsets
            count_fmt, entry_size, offset_fmt = "Q", 20, "Q"
            offset = struct.unpack(order + "Q", head[8:16])[0]
        else:
            count_fmt, entry_size, offset_fmt = "H", 12, "I"
            offset = struct.unpack(order + "I", head[4:8])[0]
        count_size, offset_size = struct.calcsize(count_fmt), struct.calcsize(offset_fmt)
        seen: set[int] = set()
        while offset and offset not in seen and pages <= limit:
            seen.add(offset)
            fh.seek(offset)
            raw = fh.read(count_size)
            if len(raw) < count_size:
                break
            entries = struct.unpack(order + count_fmt, raw)[0]
            pages += 1
            fh.seek(offset + count_size + entries * entry_size)
            raw = fh.read(offset_size)
            if len(raw) < offset_size:
                break
            offset = struct.unpack(order + offset_fmt, raw)[0]
    except (OSError, ValueError, OverflowError, struct.error):
        pass  # a link to where nothing can be read: the chain ends there
    finally:
        with contextlib.suppress(Exception):
            fh.seek(position)
    return max(1, pages)


def _prepare_bytes(
    data: bytes, spec: ModelSpec, min_pixels: int | None, max_pixels: int | None, *, source: str
) -> PreparedImage:
    im, fmt = open_checked(data, source)
    raw_w, raw_h = im.size
    orientation = _exif_orientation(im)
    width, height = (raw_h, raw_w) if orientation in (5, 6, 7, 8) else (raw_w, raw_h)
    target = _target_size(width, height, spec, min_pixels, max_pixels)
    needs_pixels = (
        orientation != 1
        or target != (width, height)
        or _has_alpha(im)
        or im.mode not in ("1", "L", "P", "RGB")  # a palette image without transparency goes as it is
        or fmt in ("BMP", "TIFF")  # uncompressed or exotic: a PNG is smaller and always understood
        or (fmt not in _PAST_4K_FORMATS and past_4k(width, height))  # WEBP or HEIC past 4K: refused as they are
        or len(data) * 4 / 3 > MAX_ENCODED_BYTES
    )
    if not needs_pixels:
        decode_checked(im, source, fmt)  # a truncated file must be refused here, not billed and garbled there
        return PreparedImage(
            url=_data_url(data, _MIME[fmt]),
            original_size=(width, height),
            sent_size=(width, height),
            mime=_MIME[fmt],
            nbytes=len(data),
        )
    if target != (width, height) and fmt == "JPEG" and orientation == 1:
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when that is still above the target: much faster.
        im.draft("RGB", target)
    decode_checked(im, source, fmt)
    from PIL import ImageOps

    upright = ImageOps.exif_transpose(im) if orientation != 1 else im
    return _encode(upright, (width, height), target, prefer_jpeg=fmt == "JPEG", source_bytes=None)


def past_4k(width: int, height: int) -> bool:
    """Whether an image is past 4K (:data:`FOUR_K`), where the service reads only JPEG and PNG.

    >>> past_4k(3840, 2160), past_4k(3841, 100), past_4k(2200, 2200)
    (False, True, True)
    """
    return max(width, height) > FOUR_K[0] or min(width, height) > FOUR_K[1]


def decode_checked(im: Image.Image, source: str, fmt: str) -> None:
    """Decode the pixels of an image from :func:`open_checked`; a corrupt or truncated file is a clear error."""
    try:
        im.load()
    except Exception as exc:
        raise InvalidImageError(
            f"{source} looks like a {fmt} image but cannot be decoded: the file is corrupt or truncated ({exc}).",
            code="CorruptImage",
        ) from None


def _prepare_pil(im: Image.Image, spec: ModelSpec, min_pixels: int | None, max_pixels: int | None) -> PreparedImage:
    width, height = im.size
    _check_size(width, height, "the PIL image")
    target = _target_size(width, height, spec, min_pixels, max_pixels)
    return _encode(im, (width, height), target, prefer_jpeg=im.format == "JPEG", source_bytes=None)


def _target_size(
    width: int, height: int, spec: ModelSpec, min_pixels: int | None, max_pixels: int | None
) -> tuple[int, int]:
    """The size to send: the model's own resize when that shrinks the image, else the image as it is (never
    upscaled: the service does that itself, for the same tokens). ``None``: the default budget's bound."""
    budget = pixel_budget(spec, min_pixels=min_pixels, max_pixels=max_pixels)
    w, h = smart_resize(width, height, patch=spec.patch, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)
    if w * h < width * height:
        return w, h
    return width, height


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (im.mode == "P" and "transparency" in im.info)


def _flatten(im: Image.Image) -> Image.Image:
    from PIL import Image

    if _has_alpha(im):
        if im.mode == "La":  # premultiplied: Pillow converts it to nothing but LA
            im = im.convert("LA")
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if im.mode in ("1", "L", "RGB"):
        return im
    if im.mode.startswith("I;16"):
        # Every 16-bit layout (little-, big-endian, native) to 32-bit first: Pillow's point() handles only some.
        im = im.convert("I")
    if im.mode == "I":
        return im.point(lambda v: v / 256).convert("L")
    return im.convert("RGB")


def _palette_kind(im: Image.Image) -> str:
    """What a palette image really is, from its palette alone (no pass over the pixels): ``"1"`` when every entry
    is pure black or pure white (a 1-bit scan stored as PNG), ``"L"`` when every entry is grey, else ``"RGB"``."""
    palette = im.getpalette() or []
    if im.palette is not None and im.palette.mode != "RGB":
        return "RGB"  # RGBA or other palette layouts: leave them to Pillow's conversion
    entries = [tuple(palette[i : i + 3]) for i in range(0, len(palette) - 2, 3)]
    if not entries or any(r != g or g != b for r, g, b in entries):
        return "RGB"
    if all(r in (0, 255) for r, _, _ in entries):
        return "1"
    return "L"


def _upload_pixels(im: Image.Image, target: tuple[int, int]) -> Image.Image:
    """The pixels we send of a decoded, upright image: flattened onto white, in the leanest mode that loses
    nothing (``"1"`` for black and white, ``"L"`` for grey, else ``"RGB"``: a palette, 1-bit or greyscale file makes
    no RGB detour), at ``target``. Black-and-white pixels are resized with NEAREST, so a 1-bit scan stays 1-bit
    (an eighth of the bytes of 8-bit grey, a fraction of the CPU); everything else with LANCZOS."""
    from PIL import Image

    if im.mode == "P" and not _has_alpha(im):
        kind = _palette_kind(im)
        if kind == "1":
            small = im.resize(target, Image.Resampling.NEAREST) if im.size != target else im  # indices: no blending
            return small.convert("L").convert("1", dither=Image.Dither.NONE)
        flat = im.convert(kind)
    elif im.mode == "LA":
        flat = Image.new("L", im.size, 255)
        flat.paste(im.getchannel("L"), mask=im.getchannel("A"))
    else:
        flat = _flatten(im)
    if flat.size != target:
        if flat.mode == "L" and is_black_and_white(flat):
            flat = flat.convert("1", dither=Image.Dither.NONE)
        resample = Image.Resampling.NEAREST if flat.mode == "1" else Image.Resampling.LANCZOS
        flat = flat.resize(target, resample, reducing_gap=None if flat.mode == "1" else 3.0)
    return flat


def _encode(
    im: Image.Image,
    original: tuple[int, int],
    target: tuple[int, int],
    *,
    prefer_jpeg: bool,
    source_bytes: bytes | None,
) -> PreparedImage:
    del source_bytes
    try:
        flat = _upload_pixels(im, target)
    except Exception as exc:
        raise InvalidImageError(f"the image cannot be decoded ({exc}).", code="CorruptImage") from None
    return _encode_pixels(flat, original, prefer_jpeg=prefer_jpeg)


def _encode_pixels(flat: Image.Image, original: tuple[int, int], *, prefer_jpeg: bool) -> PreparedImage:
    """Encode pixels from :func:`_upload_pixels`: a 1-bit PNG (run-length deflate) for black and white, JPEG at
    quality 95 for a JPEG source, else PNG (zlib level :data:`~qwen_ocr._png.ADAPTIVE_LEVEL`); JPEG at 90, then 80
    while over the service's limit."""
    from PIL import Image

    if is_black_and_white(flat):
        bits = flat if flat.mode == "1" else flat.convert("1", dither=Image.Dither.NONE)
        data = encode_bilevel(bits)
        if _fits(data):
            return _prepared(data, "PNG", flat.size, original)
        flat = flat.convert("L")  # JPEG has no 1-bit mode (never needed in practice: a 1-bit PNG is tiny)
    attempts: list[tuple[str, dict[str, Any]]] = (
        [("JPEG", {"quality": 95})] if prefer_jpeg else [("PNG", {"optimize": False, "compress_level": ADAPTIVE_LEVEL})]
    )
    attempts += [("JPEG", {"quality": 90}), ("JPEG", {"quality": 80})]
    for fmt, params in attempts:
        buf = io.BytesIO()
        flat.save(buf, format=fmt, **params)
        data = buf.getvalue()
        if _fits(data):
            return _prepared(data, fmt, flat.size, original)
    raise InvalidImageError(
        f"the image is still over {MAX_ENCODED_BYTES:,} bytes as a base64 string after re-encoding; "
        "pass a smaller max_pixels.",
        code="ImageTooLarge",
    )


def _fits(data: bytes) -> bool:
    return len(data) * 4 / 3 + 32 <= MAX_ENCODED_BYTES


def _prepared(data: bytes, fmt: str, sent: tuple[int, int], original: tuple[int, int]) -> PreparedImage:
    scale = (original[0] / sent[0], original[1] / sent[1])
    return PreparedImage(
        url=_data_url(data, _MIME[fmt]),
        original_size=original,
        sent_size=sent,
        scale=scale,
        mime=_MIME[fmt],
        nbytes=len(data),
        reencoded=True,
    )


INLINE_PIXELS = 65_536
"""Images of at most this many pixels are prepared on the event loop by the async client (well under a millisecond
of decoding and encoding: less than a hop to a worker thread and back)."""
INLINE_BODY_BYTES = 1 << 20
"""Request bodies for images up to this many encoded bytes are built on the event loop; larger ones in a thread."""


def cheap_to_prepare(image: object) -> bool:
    """Whether preparing ``image`` (:func:`prepare_image`) is cheap enough to run on an event loop: no file to read
    and at most :data:`INLINE_PIXELS` pixels (a URL, a prepared image, a small ``PIL.Image``, small image bytes or
    ``data:`` URL, judged from the header). Paths and large images go to a worker thread.

    >>> cheap_to_prepare("https://example.com/a.png"), cheap_to_prepare("scan.png")
    (True, False)
    >>> from PIL import Image
    >>> cheap_to_prepare(Image.new("L", (200, 100))), cheap_to_prepare(Image.new("L", (2000, 1000)))
    (True, False)
    """
    if isinstance(image, PreparedImage):
        return True
    if _is_pil(image):
        return image.width * image.height <= INLINE_PIXELS
    if isinstance(image, str):
        head = image.lstrip()[:12].lower()
        if head.startswith(("http://", "https://", "oss://")):
            return True
        if not head.startswith("data:") or len(image) > INLINE_BODY_BYTES:
            return False  # a path: file I/O
        try:
            data = _decode_data_url(image.strip())
        except InvalidImageError:
            return True  # refused at once, on the loop
        return _small_image_bytes(data)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _small_image_bytes(bytes(image[:65_536]) if len(image) > INLINE_BODY_BYTES else image)
    return False


def _small_image_bytes(data: bytes | bytearray | memoryview) -> bool:
    if len(data) > INLINE_BODY_BYTES:
        return False
    raw = bytes(data)
    fmt = sniff_format(raw[:32])
    if fmt is None:
        return True  # refused at once by the format check, on the loop
    size = _header_size(raw, fmt)
    if size is None:
        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with Image.open(io.BytesIO(raw)) as im:  # the header only: no pixels decoded
                    size = im.size
        except Exception:
            return True  # refused at once as corrupt, on the loop
    return size[0] * size[1] <= INLINE_PIXELS


def large_body(nbytes: int) -> bool:
    """Whether a request carrying an image of ``nbytes`` encoded bytes is built off the event loop (base64 and JSON
    of a large image take milliseconds).

    >>> large_body(3_000), large_body(5_000_000)
    (False, True)
    """
    return nbytes > INLINE_BODY_BYTES


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"

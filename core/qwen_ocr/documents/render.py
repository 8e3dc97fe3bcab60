"""How big to render a page, whether it has colour, and how to encode it for upload (CPU only, no PDF I/O).

**Size.** A PDF page is rendered straight at the size the model will use: its size in points at ``dpi`` (300 by
default, the resolution the vendor's documents suggest; a page that is a scan uses the scan's own resolution, so a
150-dpi scan is not blown up to 300 dpi and a 2400-dpi scan on a 2-inch page is not thrown away at 300 dpi), put
through :func:`qwen_ocr.imaging.smart_resize` with the model's patch and the request's pixel budget
(:mod:`qwen_ocr.budget`: 2,560 tokens by default, so a Letter page lands at about 170 dpi). So the service never
resizes our image again (each side is a multiple of the patch and the area is within the budget), a large page is
rendered at the budget directly (at the dpi that lands on it) instead of at 300 dpi and then shrunk, and a small
page is not blown up to millions of pixels that carry no information.

**Colour.** A page whose pixels are all grey (no channel spread over :data:`COLOUR_SPREAD` in more than
:data:`COLOUR_SHARE` of a quarter-size thumbnail; in any pixel of a small image) is sent as 8-bit greyscale: a
third of the raw bytes, and nothing the model could read is lost. Any colour at all keeps the page in RGB. A PDF
page is judged on a quarter-size RGB thumbnail rendered first (about a millisecond; the page's images are decoded
once for both renders), then rendered by PDFium straight in greyscale: 3-5x faster than an RGB render and its
conversion, with crisper anti-aliasing and fewer bytes.

**Encoding**, the cheapest lossless path per page kind (figures in ``benchmarks/PERFORMANCE.md``):

- *black and white* (a 1-bit scan rendered without smoothing, any page or image with only pure black and white):
  a 1-bit PNG, run-length deflated (:data:`~qwen_ocr._png.BILEVEL_STRATEGY`): an eighth of the raw bytes, 2-4x
  faster than an 8-bit PNG and smaller;
- *drawn* pages in grey (text and vector graphics, images over less than a quarter of the page): PNG with
  unfiltered rows at zlib level :data:`TEXT_PNG_LEVEL` (:mod:`qwen_ocr._png`): on anti-aliased text on white, row
  filters gain nothing, and choosing them was most of Pillow's time;
- everything else (scans, photos, colour pages): Pillow's PNG, rows filtered adaptively, at zlib level
  :data:`PNG_LEVEL`. Crisp text is never JPEG'd. The one exception is a *photographic colour scan*: a page that is
  a picture of a page (an image over half of it, no visible text, hardly any vector drawing), in colour, whose
  pixels measure as continuous-tone (:func:`is_photographic`). PNG compresses such a page badly (3-5 MB, over a
  second of CPU); JPEG at quality :data:`SCAN_JPEG_QUALITY` is 3-4 times smaller and 50-75 times faster to
  encode, with no loss the model could see in a resampled photograph. Greyscale scans, charts and palette images
  stay PNG: there PNG was the smaller.

A page still over the service's 10 MB limit falls back to lossless WEBP, then to JPEG at quality 95, then 90.

Example::

    >>> from qwen_ocr.models import model_spec
    >>> pdf_render_size(612, 792, spec=model_spec("qwen-vl-ocr"))      # US Letter at the default budget: ~167 dpi
    (1408, 1824)
    >>> pdf_render_size(612, 792, spec=model_spec("qwen-vl-ocr"), max_pixels=8_388_608)   # 300 dpi, within it
    (2528, 3264)
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._png import (
    ADAPTIVE_LEVEL,
    TEXT_LEVEL,
    encode_bilevel,
    encode_unfiltered,
    encode_unfiltered_rows,
    is_black_and_white,
)
from ..budget import pixel_budget
from ..imaging import MAX_ASPECT_RATIO, MAX_DECODED_PIXELS, MAX_ENCODED_BYTES, smart_resize
from ..models import ModelSpec

if TYPE_CHECKING:  # Pillow is imported when a page is rendered (issue 17: a light import)
    from PIL import Image

__all__ = [
    "COLOUR_SHARE",
    "COLOUR_SPREAD",
    "DEFAULT_DPI",
    "MAX_DPI",
    "PHOTO_RATIO",
    "PNG_LEVEL",
    "SCAN_JPEG_QUALITY",
    "TEXT_PNG_LEVEL",
    "EncodedPage",
    "aspect_ratio_problem",
    "encode_page",
    "has_colour",
    "is_bilevel",
    "is_photographic",
    "pdf_render_size",
    "render_pixels_ok",
    "thumbnail_has_colour",
    "to_upload_mode",
]

DEFAULT_DPI = 300.0
"""Rendering resolution of PDF pages before the pixel budget caps it."""
MAX_DPI = 2400.0
"""The highest rendering resolution asked for or taken from a page's scan."""
COLOUR_SPREAD = 24
"""A thumbnail pixel whose RGB channels differ by more than this (of 255) is coloured."""
COLOUR_SHARE = 0.0002
"""A page is in colour when more than this share of thumbnail pixels (at least 4) is coloured."""
PNG_LEVEL = ADAPTIVE_LEVEL
"""zlib level of page PNGs with adaptively filtered rows (scans, photos, colour pages): see :mod:`qwen_ocr._png`."""
TEXT_PNG_LEVEL = TEXT_LEVEL
"""zlib level of drawn greyscale pages, rows unfiltered: see :mod:`qwen_ocr._png`."""
SCAN_JPEG_QUALITY = 95
"""JPEG quality of colour scans (pages that are pictures of pages, with no crisp text of their own)."""
PHOTO_RATIO = 2.0
"""A scan is photographic when PNG takes more than this many times the bytes of JPEG (see :func:`is_photographic`)."""

_FALLBACKS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("WEBP", {"lossless": True, "quality": 50, "method": 4}),
    ("JPEG", {"quality": 95}),
    ("JPEG", {"quality": 90}),
)
_MIME = {"PNG": "image/png", "WEBP": "image/webp", "JPEG": "image/jpeg"}


@dataclass(frozen=True)
class EncodedPage:
    """One page encoded for upload: the bytes, their MIME type, and the format name."""

    data: bytes
    mime: str
    format: str


def pdf_render_size(
    width_pt: float,
    height_pt: float,
    *,
    spec: ModelSpec,
    dpi: float = DEFAULT_DPI,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> tuple[int, int]:
    """The pixel size to render a page of this size (in points, as displayed) at: ``dpi``, within the budget.

    Each side is a multiple of the model's patch and the area lies within ``[min_pixels, max_pixels]`` (the default
    budget of :func:`qwen_ocr.budget.pixel_budget` when not given), exactly as
    :func:`~qwen_ocr.imaging.smart_resize` would resize a ``dpi`` render.

    >>> from qwen_ocr.models import model_spec
    >>> pdf_render_size(595.28, 841.89, spec=model_spec("qwen-vl-ocr"))   # A4: 300 dpi is over budget
    (1344, 1920)
    >>> pdf_render_size(595.28, 841.89, spec=model_spec("qwen-vl-ocr"), dpi=100)
    (832, 1184)
    """
    scale = dpi / 72.0
    width = max(1, round(width_pt * scale))
    height = max(1, round(height_pt * scale))
    budget = pixel_budget(spec, min_pixels=min_pixels, max_pixels=max_pixels)
    return smart_resize(width, height, patch=spec.patch, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)


def aspect_ratio_problem(width: float, height: float) -> str | None:
    """Why a page of this size can never be sent, or ``None``: zero area, or an aspect ratio over 200:1.

    >>> aspect_ratio_problem(612, 792) is None
    True
    >>> aspect_ratio_problem(20000, 50)
    'an aspect ratio of 400:1; the service accepts at most 200:1'
    """
    if not (width > 0 and height > 0):
        return "no area"
    ratio = max(width, height) / min(width, height)
    if ratio > MAX_ASPECT_RATIO:
        return f"an aspect ratio of {ratio:.0f}:1; the service accepts at most {MAX_ASPECT_RATIO:.0f}:1"
    return None


def render_pixels_ok(width: int, height: int) -> bool:
    """Whether a render of this many pixels is allowed (under the decompression-bomb limit)."""
    return width * height <= MAX_DECODED_PIXELS


def has_colour(im: Image.Image) -> bool:
    """Whether an RGB image has any colour worth keeping (see the module doc); other modes answer by mode.

    >>> from PIL import Image
    >>> has_colour(Image.new("RGB", (64, 64), (200, 200, 200)))
    False
    >>> has_colour(Image.new("RGB", (64, 64), (200, 20, 20)))
    True
    """
    if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
        return False
    if im.mode != "RGB":
        return True
    return thumbnail_has_colour(im.reduce(4) if min(im.size) >= 256 else im)


def thumbnail_has_colour(small: Image.Image) -> bool:
    """:func:`has_colour` of a page from its quarter-size thumbnail (an RGB image; taken as it is, not reduced)."""
    if small.mode != "RGB":
        return has_colour(small)
    from PIL import ImageChops

    r, g, b = small.split()
    spread = ImageChops.lighter(
        ImageChops.lighter(ImageChops.difference(r, g), ImageChops.difference(g, b)), ImageChops.difference(r, b)
    )
    coloured = sum(spread.histogram()[COLOUR_SPREAD + 1 :])
    pixels = small.size[0] * small.size[1]
    # On a small image every pixel counts; on a page, a few stray ones (JPEG fringes) do not.
    return coloured > (max(4, COLOUR_SHARE * pixels) if pixels >= 20_000 else 0)


def to_upload_mode(im: Image.Image) -> Image.Image:
    """The image in the mode we send: ``L`` when it has no colour, else ``RGB``."""
    if im.mode == "L":
        return im
    if im.mode == "RGB":
        return im if has_colour(im) else im.convert("L")
    return im.convert("RGB") if has_colour(im) else im.convert("L")


def encode_page(
    im: Image.Image,
    *,
    scanned: bool = False,
    drawn: bool = False,
    limit: int = MAX_ENCODED_BYTES,
    rows: bytearray | None = None,
) -> EncodedPage | None:
    """Encode a rendered page for upload: PNG (1-bit when black and white; rows unfiltered when ``drawn``); JPEG at
    quality 95 for a colour scan; a fallback when over ``limit``. See the module doc.

    Args:
        im: the page, in ``L`` or ``RGB`` (or ``1``).
        scanned: the page is a picture of a page (no visible text or drawing of its own); in colour, it goes as JPEG.
        drawn: the page is drawn (text, vector graphics; images cover less than a quarter of it): in grey, its rows
            go unfiltered (:data:`TEXT_PNG_LEVEL`).
        limit: the most base64 characters allowed.
        rows: ``im``'s pixels as a PNG's unfiltered rows when the renderer drew them so
            (:func:`qwen_ocr._png.unfiltered_rows`): a drawn grey page is deflated from them, without a copy.

    Returns ``None`` when even the last fallback is over the limit.

    >>> from PIL import Image
    >>> page = encode_page(Image.new("L", (64, 64), 255))
    >>> page.format, page.mime
    ('PNG', 'image/png')
    >>> photo = Image.merge("RGB", [Image.effect_noise((256, 256), sigma) for sigma in (20, 30, 40)])
    >>> encode_page(photo, scanned=True).format, encode_page(photo).format
    ('JPEG', 'PNG')
    """
    if is_black_and_white(im):  # 1 bit per pixel says exactly the same in an eighth of the bytes
        from PIL import Image

        bits = im if im.mode == "1" else im.convert("1", dither=Image.Dither.NONE)
        data = encode_bilevel(bits)
        if _base64_len(len(data)) <= limit:
            return EncodedPage(data=data, mime="image/png", format="PNG")
        im = im.convert("L")
    elif drawn and im.mode == "L":
        if rows is not None:
            data = encode_unfiltered_rows(rows, im.width, im.height, level=TEXT_PNG_LEVEL)
        else:
            data = encode_unfiltered(im, level=TEXT_PNG_LEVEL)
        if _base64_len(len(data)) <= limit:
            return EncodedPage(data=data, mime="image/png", format="PNG")
    first: tuple[tuple[str, dict[str, Any]], ...] = (
        (("JPEG", {"quality": SCAN_JPEG_QUALITY}),)
        if scanned and im.mode == "RGB" and is_photographic(im)
        else (("PNG", {"compress_level": PNG_LEVEL}),)
    )
    attempts = first + _FALLBACKS
    for fmt, params in attempts:
        buf = io.BytesIO()
        im.save(buf, format=fmt, **params)
        data = buf.getvalue()
        if _base64_len(len(data)) <= limit:
            return EncodedPage(data=data, mime=_MIME[fmt], format=fmt)
    return None


def is_bilevel(im: Image.Image) -> bool:
    """Whether a greyscale image holds only pure black and pure white (a 1-bit scan rendered without smoothing).

    >>> from PIL import Image
    >>> is_bilevel(Image.new("L", (8, 8), 255)), is_bilevel(Image.new("L", (8, 8), 128))
    (True, False)
    """
    return im.mode == "L" and is_black_and_white(im)


def is_photographic(im: Image.Image) -> bool:
    """Whether an image is continuous-tone (a photograph, a colour scan) rather than flat graphics, by measurement.

    The middle eighth of the image is encoded both ways: it is photographic when PNG (zlib 1) takes more than
    :data:`PHOTO_RATIO` times the bytes of JPEG at quality 95 and over a quarter byte per pixel. Charts, palette
    images and screenshots compress well as PNG and stay PNG. About 1/8 of one PNG encode in cost.

    >>> from PIL import Image
    >>> is_photographic(Image.new("RGB", (256, 256), "white"))
    False
    >>> is_photographic(Image.merge("RGB", [Image.effect_noise((256, 256), sigma) for sigma in (20, 30, 40)]))
    True
    """
    width, height = im.size
    band = im.crop((0, height * 7 // 16, width, max(height * 9 // 16, height * 7 // 16 + 1)))
    png, jpeg = io.BytesIO(), io.BytesIO()
    band.save(png, format="PNG", compress_level=1)
    band.save(jpeg, format="JPEG", quality=SCAN_JPEG_QUALITY)
    pixels = band.width * band.height
    return png.tell() > PHOTO_RATIO * jpeg.tell() and png.tell() > pixels / 4


def _base64_len(n: int) -> int:
    return 4 * ((n + 2) // 3) + 32  # plus the data: URL's header

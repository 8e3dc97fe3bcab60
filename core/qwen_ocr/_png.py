"""A minimal PNG writer for the two kinds of page that dominate OCR work: black-and-white and greyscale text (pure).

Pillow's PNG encoder picks a row filter per row by trying all five, which is most of its time on a page of text
(about 10 ms of a 2.5 MP page before any compression); on such pages, anti-aliased glyphs on white or 1-bit scans,
unfiltered rows compress as well or better. So :func:`encode_unfiltered` writes rows with filter type 0 ("None")
and deflates them with the zlib level and strategy the caller chose (``Z_RLE`` for 1-bit pages: runs of white),
in one C call that releases the GIL. A 1-bit page (:func:`encode_bilevel`) has every row filtered "Up" instead,
which a run-length deflate packs about as small as Pillow's best choice per row. The output is a plain, standard PNG
(IHDR, one IDAT, IEND): bit depth 1 for mode ``"1"`` (0 black, 1 white, as Pillow packs it), 8 for mode ``"L"``.

Example::

    >>> from PIL import Image
    >>> import io
    >>> data = encode_unfiltered(Image.new("1", (20, 10), 1), level=1)
    >>> Image.open(io.BytesIO(data)).getextrema()
    (255, 255)
"""

from __future__ import annotations

import struct
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow is imported when a page is encoded (issue 17: the client's import stays light)
    from PIL import Image

__all__ = [
    "ADAPTIVE_LEVEL",
    "BILEVEL_LEVEL",
    "BILEVEL_STRATEGY",
    "TEXT_LEVEL",
    "encode_bilevel",
    "encode_unfiltered",
    "encode_unfiltered_rows",
    "is_black_and_white",
    "unfiltered_rows",
]

ADAPTIVE_LEVEL = 2
"""zlib level of Pillow's PNG encoder (rows filtered adaptively) for scans, photos and colour pages. Measured on the
corpus (``benchmarks/PERFORMANCE.md``): 0.35x the CPU of level 6 for 3% more bytes; levels 3-6 cost 1.3-3x the CPU
of level 2 for 1-3% fewer bytes."""
TEXT_LEVEL = 2
"""zlib level of unfiltered greyscale rows (:func:`encode_unfiltered`) for drawn pages (text, vector graphics):
0.4x the CPU of Pillow at level 6 for about 15% more bytes (levels 4-6 take back the bytes at 1.3-2x the CPU)."""
BILEVEL_LEVEL = 1
BILEVEL_STRATEGY = zlib.Z_RLE
"""1-bit pages: rows filtered "Up", then run-length deflate (runs of zeros), at any level: smaller than Pillow's
default at level 6 and several times as fast (:func:`encode_bilevel`)."""

_NOT_BLACK_OR_WHITE = [0] + [255] * 254 + [0]
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_DEPTH = {"1": 1, "L": 8}
_PAD = {"1": 8, "L": 1}  # pixels of filter-byte padding in front of each row: one byte of 0 = filter type None
_UP = 2  # the PNG filter type "Up"


def unfiltered_rows(width: int, height: int) -> tuple[bytearray, int]:
    """A white greyscale canvas laid out as a PNG's unfiltered image data, and the offset of its first pixel: each
    row is one filter byte of 0 ("None") and then ``width`` pixels of 255, rows back to back (stride ``width + 1``).

    A renderer that draws into it from the offset with that stride (PDFium does) leaves the buffer ready for
    :func:`encode_unfiltered_rows`: no copy of the pixels between rendering and deflating.

    >>> rows, first = unfiltered_rows(3, 2)
    >>> bytes(rows), first
    (b'\\x00\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\x00', 1)
    """
    stride = width + 1
    rows = bytearray(b"\xff") * (stride * height + 1)  # + 1: the last row's pixels end one byte before the end
    rows[0::stride] = bytes(height + 1)  # the filter bytes (and the spare last byte)
    return rows, 1


def encode_unfiltered_rows(
    rows: bytes | bytearray | memoryview,
    width: int,
    height: int,
    *,
    level: int,
    strategy: int = zlib.Z_DEFAULT_STRATEGY,
) -> bytes:
    """An 8-bit greyscale PNG of ``rows`` as laid out by :func:`unfiltered_rows` (its first ``(width + 1) *
    height`` bytes), deflated at ``level``/``strategy`` in place: the same bytes as :func:`encode_unfiltered` of
    the same pixels.

    Raises:
        ValueError: ``rows`` too short, or a row's filter byte is not 0.
    """
    stride = width + 1
    view = memoryview(rows)[: stride * height]
    if len(view) != stride * height or any(view[0::stride]):
        raise ValueError("rows must hold height rows of one 0 filter byte and width pixels")
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    data = compressor.compress(view) + compressor.flush()
    return _png(width, height, 8, data)


def encode_unfiltered(im: Image.Image, *, level: int, strategy: int = zlib.Z_DEFAULT_STRATEGY) -> bytes:
    """``im`` (mode ``"1"`` or ``"L"``) as a greyscale PNG with unfiltered rows, deflated at ``level``/``strategy``.

    Raises:
        ValueError: another mode.
    """
    depth = _DEPTH.get(im.mode)
    if depth is None:
        raise ValueError(f"encode_unfiltered takes mode '1' or 'L', not {im.mode!r}")
    width, height = im.size
    pad = _PAD[im.mode]
    # Each row of the canvas starts with one byte of zeros (8 black pixels in mode "1", one in "L"): the filter
    # byte of a PNG row, so the canvas's raw bytes are the PNG's uncompressed data as they are, with no copying
    # row by row in Python.
    from PIL import Image

    canvas = Image.new(im.mode, (width + pad, height), 0)
    canvas.paste(im, (pad, 0))
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, strategy)
    data = compressor.compress(canvas.tobytes()) + compressor.flush()
    return _png(width, height, depth, data)


def _png(width: int, height: int, depth: int, data: bytes) -> bytes:
    """A greyscale PNG of deflated image data: deflate, the standard filter set, no interlace."""
    header = struct.pack(">IIBBBBB", width, height, depth, 0, 0, 0, 0)
    return b"".join((_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")))


def encode_bilevel(im: Image.Image) -> bytes:
    """``im`` (mode ``"1"``) as a 1-bit PNG: every row filtered "Up" (its bytes minus the row above's, which turns
    the white between lines and the strokes that go on from row to row into runs of zeros), deflated run-length
    (:data:`BILEVEL_STRATEGY`).

    On 1-bit scans this is about as small as Pillow's encoder, which tries all five filters on every row (67.5 KiB a
    page on average for both over cardinal.pdf's four pages at 1408x1824: 6% more on its portrait pages, 4% less on
    its landscape ones), in three quarters of its CPU (6.9 ms instead of 9.0). Choosing None or Up row by row (as
    Pillow's heuristic would) makes no smaller file on average. The rows are packed by Pillow; the filter is one
    ``subtract_modulo`` of the packed page and itself shifted a row.

    >>> import io
    >>> from PIL import Image
    >>> page = Image.new("1", (20, 3), 1)
    >>> page.putpixel((3, 1), 0)
    >>> again = Image.open(io.BytesIO(encode_bilevel(page)))
    >>> again.mode, again.size, [again.getpixel((x, 1)) for x in range(2, 5)]
    ('1', (20, 3), [255, 0, 255])
    """
    from PIL import Image, ImageChops

    if im.mode != "1":
        raise ValueError(f"encode_bilevel takes mode '1', not {im.mode!r}")
    width, height = im.size
    packed = Image.frombytes("L", ((width + 7) // 8, height), im.tobytes())  # 8 pixels a byte, as a PNG row holds
    if height > 1:
        above = Image.new("L", packed.size, 0)  # the row above the first is all zeros
        above.paste(packed.crop((0, 0, packed.width, height - 1)), (0, 1))
        packed = ImageChops.subtract_modulo(packed, above)
    canvas = Image.new("L", (packed.width + 1, height), _UP)  # one filter byte in front of each row
    canvas.paste(packed, (1, 0))
    compressor = zlib.compressobj(BILEVEL_LEVEL, zlib.DEFLATED, 15, 9, BILEVEL_STRATEGY)
    return _png(width, height, 1, compressor.compress(canvas.tobytes()) + compressor.flush())


def is_black_and_white(im: Image.Image) -> bool:
    """Whether a greyscale image holds only pure black and pure white (mode ``"1"`` always does).

    >>> from PIL import Image
    >>> is_black_and_white(Image.new("L", (8, 8), 255)), is_black_and_white(Image.new("L", (8, 8), 128))
    (True, False)
    """
    if im.mode == "1":
        return True
    if im.mode != "L":
        return False
    # Every value but 0 and 255 mapped to 255, then "is anything non-zero": two fast passes (a histogram is 5x slower).
    # A band across the middle first: on a page of anti-aliased text it holds grey, and the answer costs a sixteenth.
    width, height = im.size
    if height >= 64:
        band = im.crop((0, height * 15 // 32, width, height * 17 // 32))
        if band.point(_NOT_BLACK_OR_WHITE).getbbox() is not None:
            return False
    return im.point(_NOT_BLACK_OR_WHITE).getbbox() is None


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

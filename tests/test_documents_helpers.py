"""Builders of small test documents (PDFs written by hand, PNG/TIFF/JPEG bytes), shared by the documents tests.

Imported by the other ``test_documents*`` modules as ``tests.test_documents_helpers``; its own tests check that
what it builds is what it claims to be, read by PDFium and Pillow directly.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw

CORPUS = Path(__file__).parent / "data" / "corpus"

PROSE = (
    "The quick brown fox jumps over the lazy dog.\n"
    "Pack my box with five dozen liquor jugs.\n"
    "Sphinx of black quartz, judge my vow.\n"
    "How vexingly quick daft zebras jump."
)
"""Clean English text: a good text layer."""

JUNK = "¬§±ÃÂ ¬¬§ ±±Ã Â§¬ ÃÃ±§ ¬Â± Ã¬§± ÂÂ¬ ±§Ã\n" * 3
"""Noise like a broken font encoding or a bad OCR layer writes (all of it encodable in WinAnsi)."""


def build_pdf(objects: list[bytes], *, root: int = 1) -> bytes:
    """A PDF whose object ``i + 1`` is ``objects[i]``, with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    return bytes(out)


def pdf_stream(data: bytes, extra: bytes = b"") -> bytes:
    """A stream object's body."""
    return b"<< /Length %d %s>>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def _pdf_string(line: str) -> bytes:
    raw = line.encode("cp1252")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def text_pdf(
    pages: list[str],
    *,
    size: tuple[int, int] = (612, 792),
    render_mode: int = 0,
    full_page_image: bool = False,
    page_labels: bytes | None = None,
    rotate: int = 0,
) -> bytes:
    """A PDF with one page per string, each line drawn in Helvetica.

    Args:
        render_mode: the text render mode; 3 draws it invisibly (what OCR layers use).
        full_page_image: put a grey noise image under the text, covering the whole page (a "scan").
        page_labels: the /Nums array of a /PageLabels tree, e.g. ``b"0 << /S /r >>"``.
        rotate: /Rotate of every page.
    """
    objects: list[bytes] = [
        b"",
        b"",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    kids = []
    for text in pages:
        resources = b"/Font << /F1 3 0 R >>"
        content = b""
        if full_page_image:
            pixels = bytes((x * 7 + y * 13) % 256 for y in range(64) for x in range(64))
            objects.append(
                pdf_stream(
                    zlib.compress(pixels),
                    b"/Type /XObject /Subtype /Image /Width 64 /Height 64 /ColorSpace /DeviceGray "
                    b"/BitsPerComponent 8 /Filter /FlateDecode ",
                )
            )
            resources += b" /XObject << /Im1 %d 0 R >>" % len(objects)
            content += b"q %d 0 0 %d 0 0 cm /Im1 Do Q\n" % size
        lines = b" ".join(_pdf_string(line) + b" Tj T*" for line in text.split("\n"))
        content += b"BT /F1 11 Tf 14 TL %d Tr 50 %d Td " % (render_mode, size[1] - 60) + lines + b" ET"
        objects.append(pdf_stream(content))
        contents = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Rotate %d /Resources << %s >> /Contents %d 0 R >>"
            % (size[0], size[1], rotate, resources, contents)
        )
        kids.append(len(objects))
    labels = b" /PageLabels << /Nums [" + page_labels + b"] >>" if page_labels else b""
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R" + labels + b" >>"
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids)
    return build_pdf(objects)


def zero_page_pdf() -> bytes:
    """A well-formed PDF with an empty page tree."""
    return build_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])


def many_pages_pdf(count: int, seed_pdf: bytes | Path | None = None) -> bytes:
    """A PDF of ``count`` pages made by PDFium importing a seed's pages over and over, one import per round, so
    that every round carries its own copy of the seed's fonts (like a PDF merged from many files). The seed is 4
    generated text pages by default."""
    seed = pdfium.PdfDocument(seed_pdf or text_pdf([f"Page {n}\n{PROSE}" for n in range(1, 5)]))
    n_seed = len(seed)
    out = pdfium.PdfDocument.new()
    while len(out) < count:
        take = min(n_seed, count - len(out))
        out.import_pages(seed, list(range(take)))
    buf = io.BytesIO()
    out.save(buf)
    out.close()
    seed.close()
    return buf.getvalue()


def png_bytes(size: tuple[int, int] = (300, 200), mode: str = "RGB", *, noise: bool = False) -> bytes:
    """A PNG of this size; ``noise`` makes it incompressible so that truncating it cuts into the pixel data."""
    if noise:
        im = Image.effect_noise(size, 60).convert(mode)
    else:
        im = Image.new(mode, size, "white")
        ImageDraw.Draw(im).text((10, 10), "Hello", fill="black")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (320, 320)) -> bytes:
    """A noisy JPEG whose size is a multiple of 32, so that it would be sent byte for byte."""
    buf = io.BytesIO()
    Image.effect_noise(size, 60).convert("RGB").save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int = 60000, height: int = 60000) -> bytes:
    """A PNG header claiming ``width`` x ``height`` grey pixels (valid CRCs), with no pixel data at all."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def tiff_pages(count: int = 3, size: tuple[int, int] = (120, 160)) -> bytes:
    """A multi-page greyscale TIFF (uncompressed), each page a different shade with a page number."""
    frames = []
    for n in range(count):
        im = Image.new("L", size, 255 - 40 * n)
        ImageDraw.Draw(im).text((10, 10), f"page {n + 1}", fill=0)
        frames.append(im)
    buf = io.BytesIO()
    frames[0].save(buf, format="TIFF", save_all=True, append_images=frames[1:])
    return buf.getvalue()


def tiff_with_broken_page(count: int = 3, broken: int = 1) -> bytes:
    """:func:`tiff_pages` whose page ``broken`` (0-based) has its pixel data pointed past the end of the file."""
    data = bytearray(tiff_pages(count))
    im = Image.open(io.BytesIO(bytes(data)))
    im.seek(broken)
    offset = im.tag_v2[273][0]
    entry = struct.pack("<HHII", 273, 4, 1, offset)  # StripOffsets, LONG, 1 value
    at = data.find(entry)
    assert at > 0, "StripOffsets entry not found"
    data[at + 8 : at + 12] = struct.pack("<I", 50_000_000)
    return bytes(data)


# --------------------------------------------------------------------------------------------------------------
# The builders' own checks.


def test_text_pdf_is_read_by_pdfium() -> None:
    pdf = pdfium.PdfDocument(text_pdf([PROSE, "second"], page_labels=b"0 << /S /r >>"))
    assert len(pdf) == 2
    assert pdf.get_page_label(1) == "ii"
    page = pdf[0]
    assert "lazy dog" in page.get_textpage().get_text_bounded()
    pdf.close()


def test_many_pages_pdf_has_the_pages() -> None:
    pdf = pdfium.PdfDocument(many_pages_pdf(10))
    assert len(pdf) == 10
    pdf.close()


def test_png_bomb_claims_its_size() -> None:
    assert png_bomb()[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png_bomb()[16:24]) == (60000, 60000)
    assert zlib.crc32(png_bomb()[12:29]) == struct.unpack(">I", png_bomb()[29:33])[0]


def test_tiff_with_broken_page_breaks_only_that_page() -> None:
    im = Image.open(io.BytesIO(tiff_with_broken_page()))
    assert getattr(im, "n_frames", 1) == 3
    im.seek(0)
    im.load()
    im.seek(1)
    try:
        im.load()
    except OSError:
        pass
    else:  # pragma: no cover - the builder failed to break it
        raise AssertionError("page 2 decoded")

"""Inputs that try to make the client read what it should not, or spend what it should not.

- Local files named in chat messages (``file://`` URLs, absolute and relative paths, ``..``) are refused unless an
  ``allowed_dir`` is given, before anything is read or sent; ``ocr()`` refuses ``file://`` URLs outright.
- Decompression bombs in every accepted format are refused from their headers, before any pixel is decoded, as
  images and as pages of documents; a page of a multi-page TIFF that is a bomb fails alone.
- Huge PDF pages (the format's largest, 200 x 200 inches; a page whose embedded scan is 20,000 x 20,000 px) are
  rendered straight at the model's pixel budget, in a fraction of a second and a bounded amount of memory.

(The OCR text placed into prompts is escaped and delimited as data: ``tests/langchain/test_image_reader.py``
``test_injected_closing_tag_is_escaped`` and ``tests/langchain/test_image_reader_parts.py``. The allowed_dir rules
one by one, symlinks included: ``test_image_reader_parts.py``.)
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from qwen_ocr import InvalidImageError, QwenOCR, open_document, prepare_image
from qwen_ocr.documents import PageSizeError
from qwen_ocr.models import model_spec
from qwen_ocr.testing import Emulator
from tests.conftest import make_image

SECRET = b"root:x:0:0:TOP-SECRET-CONTENT"


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    (allowed / "scan.png").write_bytes(make_image())
    secret = tmp_path / "secret.png"
    secret.write_bytes(SECRET)
    (allowed / "escape.png").symlink_to(secret)
    return {"allowed": allowed, "secret": secret}


def chat_with(url: str) -> list[object]:
    from langchain_core.messages import HumanMessage

    return [HumanMessage(content=[{"type": "image_url", "image_url": {"url": url}}, "What does it say?"])]


def test_local_files_in_chat_messages_are_refused_unless_allowed(layout: dict[str, Path]) -> None:
    from langchain_qwen_ocr import ImageReader

    secret = layout["secret"]
    attempts = [
        f"file://{secret}",
        str(secret),
        "../secret.png",
        "escape.png",  # a symlink inside the allowed directory, pointing out of it
        "file:///etc/passwd",
        "/etc/passwd",
    ]
    with Emulator() as emu:
        plain = ImageReader(api_key="k", base_url=emu.base_url)
        confined = ImageReader(api_key="k", base_url=emu.base_url, allowed_dir=layout["allowed"])
        for reader in (plain, confined):
            for url in attempts:
                (message,) = reader.invoke(chat_with(url))
                text = json.dumps(message.content)
                assert "could not be read" in text, (url, text)
                assert "TOP-SECRET" not in text and "root:" not in text
        assert emu.stats.requests == 0  # nothing was read, so nothing was sent
        (message,) = confined.invoke(chat_with("scan.png"))
        assert "could not be read" not in json.dumps(message.content)
        assert emu.stats.requests == 1


def test_the_tool_reads_no_local_file_unless_allowed(layout: dict[str, Path]) -> None:
    from langchain_qwen_ocr import QwenOCRTool

    with Emulator() as emu:
        tool = QwenOCRTool(api_key="k", base_url=emu.base_url)  # failures are answered to the model as text
        for image in (str(layout["secret"]), f"file://{layout['secret']}", str(layout["allowed"] / "scan.png")):
            answer = tool.invoke({"image": image})
            assert "cannot read the image" in answer and "allowed_dir" in answer, answer
            assert "TOP-SECRET" not in answer
        assert emu.stats.requests == 0
        confined = QwenOCRTool(api_key="k", base_url=emu.base_url, allowed_dir=layout["allowed"])
        assert "cannot read the image" in confined.invoke({"image": str(layout["secret"])})
        assert "cannot read the image" not in confined.invoke({"image": "scan.png"})
        assert emu.stats.requests == 1


def test_ocr_refuses_file_urls() -> None:
    with Emulator() as emu, QwenOCR(api_key="k", base_url=emu.base_url) as client:
        with pytest.raises(InvalidImageError) as info:
            client.ocr("file:///etc/passwd")
        assert info.value.code == "UnsupportedURL"
        assert emu.stats.requests == 0


# ----------------------------------------------------------------------------------------------------------------
# Decompression bombs, in every format: a small file whose header claims a huge image


def _patch_tiff_size(data: bytes, width: int, height: int, ifd_index: int = 0) -> bytes:
    out = bytearray(data)
    ifd = int.from_bytes(out[4:8], "little")
    for _ in range(ifd_index):
        count = int.from_bytes(out[ifd : ifd + 2], "little")
        ifd = int.from_bytes(out[ifd + 2 + 12 * count : ifd + 6 + 12 * count], "little")
    for entry in range(int.from_bytes(out[ifd : ifd + 2], "little")):
        at = ifd + 2 + 12 * entry
        tag = int.from_bytes(out[at : at + 2], "little")
        if tag in (256, 257):
            kind = int.from_bytes(out[at + 2 : at + 4], "little")
            value = width if tag == 256 else height
            out[at + 8 : at + 12] = value.to_bytes(4, "little") if kind == 4 else value.to_bytes(2, "little") + b"\0\0"
    return bytes(out)


def jpeg_bomb() -> bytes:
    data = bytearray(make_image((64, 48), fmt="JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = (60000).to_bytes(2, "big") + (60000).to_bytes(2, "big")  # height, width
    return bytes(data)


def bmp_bomb() -> bytes:
    data = bytearray(make_image((64, 48), fmt="BMP"))
    data[18:26] = (60000).to_bytes(4, "little", signed=True) + (60000).to_bytes(4, "little", signed=True)
    return bytes(data)


def webp_bomb() -> bytes:
    data = bytearray(make_image((64, 48), fmt="WEBP", lossless=False))
    start = data.index(b"\x9d\x01\x2a")  # the VP8 key frame's start code, then 14-bit width and height
    data[start + 3 : start + 7] = (16383).to_bytes(2, "little") + (16383).to_bytes(2, "little")
    return bytes(data)


def png_bomb() -> bytes:
    data = bytearray(make_image((64, 48)))
    data[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    ihdr = data[12:29]
    data[29:33] = zlib.crc32(ihdr).to_bytes(4, "big")
    return bytes(data)


BOMBS = {
    "PNG": png_bomb(),
    "JPEG": jpeg_bomb(),
    "BMP": bmp_bomb(),
    "TIFF": _patch_tiff_size(make_image((64, 48), fmt="TIFF"), 60000, 60000),
    "WEBP": webp_bomb(),
}


def read_every_page(data: bytes) -> None:
    with open_document(data) as doc:
        for page in doc:
            page.prepare()


@pytest.mark.parametrize("fmt", list(BOMBS))
def test_bombs_are_refused_from_the_header(fmt: str) -> None:
    data = BOMBS[fmt]
    assert len(data) < 50_000
    started = time.monotonic()
    with pytest.raises(InvalidImageError) as as_image:
        prepare_image(data)
    with pytest.raises(InvalidImageError) as as_document:
        read_every_page(data)
    assert time.monotonic() - started < 5  # refused, not decoded (60000 x 60000 would take GBs and minutes)
    assert as_image.value.code == "ImageTooLarge", as_image.value
    assert as_document.value.code == "ImageTooLarge", as_document.value
    assert "decompression bomb" in as_image.value.message


def test_a_bomb_page_of_a_tiff_fails_alone() -> None:
    buf = io.BytesIO()
    frames = [Image.new("L", (80, 40), 255), Image.new("L", (80, 40), 0), Image.new("L", (80, 40), 128)]
    frames[0].save(buf, "TIFF", save_all=True, append_images=frames[1:])
    data = _patch_tiff_size(buf.getvalue(), 60000, 60000, ifd_index=1)
    outcomes: list[str] = []
    with open_document(data) as doc:
        assert doc.page_count == 3
        for page in doc:
            try:
                page.prepare()
                outcomes.append("ok")
            except PageSizeError as exc:
                outcomes.append(exc.code)
    assert outcomes == ["ok", "ImageTooLarge", "ok"]


# ----------------------------------------------------------------------------------------------------------------
# Huge PDF pages


def huge_page_pdf() -> bytes:
    pdf = pdfium.PdfDocument.new()
    pdf.new_page(14400, 14400)  # 200 x 200 inches, the largest page PDF allows: 60,000 px a side at 300 dpi
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def giant_scan_pdf(side: int = 20000) -> bytes:
    """A Letter page showing one 1-bit scan of ``side`` x ``side`` px (400 Mpx), Flate-compressed to ~50 KB."""
    row = bytes((side + 7) // 8)
    packer = zlib.compressobj(9)
    image = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    content = b"q 612 0 0 792 0 0 cm /Im0 Do Q"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /Im0 5 0 R >> >> "
        b"/Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "
        b"/Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (side, side, len(image), image),
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


@pytest.mark.parametrize("make", [huge_page_pdf, giant_scan_pdf], ids=["200-inch page", "400 Mpx scan"])
def test_huge_pdf_pages_render_at_the_pixel_budget(make: object) -> None:
    data = make()  # type: ignore[operator]
    budget = model_spec("qwen-vl-ocr").max_pixels
    started = time.monotonic()
    with open_document(data) as doc:
        (page,) = list(doc)
        prepared = page.prepare()
    assert time.monotonic() - started < 20
    assert prepared.sent_size is not None
    width, height = prepared.sent_size
    assert width * height <= budget
    assert len(base64.b64decode(prepared.url.split(",", 1)[1])) == prepared.nbytes


MEASURE = """
import base64, resource, sys
from qwen_ocr import open_document
data = base64.b64decode(sys.stdin.read())
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with open_document(data) as doc:
    for page in doc:
        page.prepare()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss is in KiB on Linux")
def test_a_giant_scan_costs_bounded_memory() -> None:
    # In a fresh process, so that the peak is this page's: 400 Mpx would be 400 MB even at one byte a pixel.
    done = subprocess.run(
        [sys.executable, "-c", MEASURE],
        input=base64.b64encode(giant_scan_pdf()).decode(),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    grown_mib = int(done.stdout.strip())
    assert grown_mib < 250, f"rendering the page grew the process by {grown_mib} MiB"

"""A catalogue of bad inputs to the documents layer, each generated here, each with the error it must raise.

Every input is opened and every page prepared; the table says at which stage it fails ("open", or "page" when
the document opens and a page raises when it is rendered), with which exception class and code, and a phrase the
message must contain. No other exception may escape, and nothing may hang (each case runs under an alarm).
"""

from __future__ import annotations

import gzip
import io
import os
import signal
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from qwen_ocr.documents import (
    CorruptDocumentError,
    DocumentError,
    DocumentReadError,
    EmptyDocumentError,
    NoPagesError,
    PageRenderError,
    PageSizeError,
    UnsupportedDocumentError,
    open_document,
)
from qwen_ocr.errors import InvalidArgumentError, InvalidImageError, QwenOCRError
from tests.test_documents_helpers import (
    PROSE,
    jpeg_bytes,
    png_bomb,
    png_bytes,
    text_pdf,
    tiff_with_broken_page,
    zero_page_pdf,
)

SMALL_BUDGET = 250_000  # pixels: the catalogue is about failing, not about sharp renders


@pytest.fixture(autouse=True)
def _no_hang() -> Iterator[None]:
    """Fail any case that takes longer than 20 s instead of hanging the suite."""
    if not hasattr(signal, "SIGALRM"):  # pragma: no cover - Windows
        yield
        return

    def _timeout(signum: int, frame: Any) -> None:
        raise TimeoutError("a bad input hung the documents layer")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def process(source: Any, **kwargs: Any) -> tuple[str, int]:
    """Open ``source`` and prepare every page; return ``("ok", pages)`` or raise with the stage noted."""
    stage = "open"
    try:
        with open_document(source, max_pixels=SMALL_BUDGET, **kwargs) as doc:
            stage = "page"
            for page in doc:
                page.prepare()
            return "ok", doc.page_count
    except QwenOCRError as exc:
        exc.stage = stage  # type: ignore[attr-defined]
        raise


@dataclass(frozen=True)
class Case:
    """One bad input: how to make it, and what must happen."""

    make: Callable[[Path], Any]
    error: type[QwenOCRError]
    code: str
    stage: str
    says: str


def _write(name: str, data: bytes) -> Callable[[Path], Path]:
    def make(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(data)
        return path

    return make


def _truncated_png() -> bytes:
    data = png_bytes((400, 400), noise=True)
    return data[: len(data) // 2]


def _truncated_jpeg() -> bytes:
    data = jpeg_bytes((320, 320))  # 320 = 10 patches: it would be sent byte for byte if we did not check it
    return data[: len(data) // 2]


def _gif() -> bytes:
    buf = io.BytesIO()
    Image.new("P", (64, 64)).save(buf, format="GIF")
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<w:document/>")
    return buf.getvalue()


def _pdf_with_broken_xref() -> bytes:
    data = text_pdf([PROSE])
    return data[: data.rfind(b"startxref")] + b"startxref\n999999\n%%EOF\n"


def _pdf_with_broken_page() -> bytes:
    data = text_pdf([PROSE, PROSE, PROSE])
    first = data.find(b"/Type /Page /Parent")
    second = data.find(b"/Type /Page /Parent", first + 1)
    return data[:second] + b"/Type /Garbage /Foo" + data[second + len(b"/Type /Page /Parent") :]


def _directory(tmp: Path) -> Path:
    path = tmp / "scans.pdf"
    path.mkdir()
    return path


CASES: dict[str, Case] = {
    "zero bytes": Case(_write("empty.pdf", b""), EmptyDocumentError, "EmptyFile", "open", "empty (0 bytes)"),
    "random bytes": Case(
        _write("noise.bin", bytes((i * 7919 + 13) % 256 for i in range(4096))),
        UnsupportedDocumentError,
        "UnsupportedFormat",
        "open",
        "binary data",
    ),
    "text file": Case(
        _write("notes.txt", b"Meeting notes\nbuy milk\n"),
        UnsupportedDocumentError,
        "UnsupportedFormat",
        "open",
        "plain text",
    ),
    "HTML saved as .png": Case(
        _write("page.png", b"<!DOCTYPE html><html><body>Not an image</body></html>"),
        UnsupportedDocumentError,
        "UnsupportedFormat",
        "open",
        "HTML page",
    ),
    "SVG": Case(
        _write("logo.svg", b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>'),
        UnsupportedDocumentError,
        "UnsupportedFormat",
        "open",
        "SVG drawing",
    ),
    "GIF": Case(_write("anim.gif", _gif()), UnsupportedDocumentError, "UnsupportedFormat", "open", "GIF image"),
    "ZIP (a .docx)": Case(_write("report.docx", _zip()), UnsupportedDocumentError, "UnsupportedFormat", "open", "ZIP"),
    "gzip": Case(
        _write("scan.pdf.gz", gzip.compress(text_pdf([PROSE]))),
        UnsupportedDocumentError,
        "UnsupportedFormat",
        "open",
        "gzip",
    ),
    "JSON": Case(_write("data.json", b'{"pages": 3}'), UnsupportedDocumentError, "UnsupportedFormat", "open", "JSON"),
    "PNG cut to its signature": Case(
        _write("cut.png", png_bytes()[:20]), CorruptDocumentError, "CorruptDocument", "open", "corrupt or truncated"
    ),
    "truncated PNG": Case(_write("half.png", _truncated_png()), PageRenderError, "CorruptPage", "page", "truncated"),
    "truncated JPEG": Case(_write("half.jpg", _truncated_jpeg()), PageRenderError, "CorruptPage", "page", "truncated"),
    "5x5 image": Case(_write("dot.png", png_bytes((5, 5))), PageSizeError, "ImageTooSmall", "open", "5x5 px"),
    "1x400 strip": Case(_write("strip.png", png_bytes((1, 400))), PageSizeError, "ImageTooSmall", "open", "1x400 px"),
    "12x3000 strip (250:1)": Case(
        _write("ribbon.png", png_bytes((12, 3000))), PageSizeError, "BadAspectRatio", "open", "aspect ratio of 250:1"
    ),
    "60000x60000 header-only PNG bomb": Case(
        _write("bomb.png", png_bomb()), PageSizeError, "ImageTooLarge", "open", "decompression bomb"
    ),
    "TIFF with a broken second page": Case(
        _write("fax.tif", tiff_with_broken_page()), PageRenderError, "CorruptPage", "page", "page 2"
    ),
    "PDF header and nothing else": Case(
        _write("stub.pdf", b"%PDF-1.4\n%%EOF\n"),
        CorruptDocumentError,
        "CorruptDocument",
        "open",
        "corrupt or truncated",
    ),
    "PDF truncated in the middle": Case(
        _write("half.pdf", text_pdf([PROSE, PROSE])[:700]),
        CorruptDocumentError,
        "CorruptDocument",
        "open",
        "corrupt or truncated",
    ),
    "PDF with zero pages": Case(_write("none.pdf", zero_page_pdf()), NoPagesError, "NoPages", "open", "no pages"),
    "PDF with a broken second page": Case(
        _write("broken.pdf", _pdf_with_broken_page()), PageRenderError, "CorruptPage", "page", "page 2"
    ),
    "PDF page of 360:1": Case(
        _write("banner.pdf", text_pdf([PROSE], size=(14400, 40))), PageSizeError, "BadAspectRatio", "page", "360:1"
    ),
    "a directory": Case(_directory, DocumentReadError, "IsADirectory", "open", "is a directory"),
    "a missing path": Case(lambda tmp: tmp / "nowhere.pdf", DocumentReadError, "FileNotFound", "open", "no such file"),
    "a URL": Case(
        lambda tmp: "https://example.com/scan.pdf", DocumentReadError, "UnsupportedURL", "open", "Download it first"
    ),
    "a file object in text mode": Case(
        lambda tmp: io.StringIO("%PDF-1.7"), DocumentReadError, "TextModeFile", "open", "binary mode"
    ),
    "an int": Case(
        lambda tmp: 42, InvalidArgumentError, "InvalidArgument", "open", "cannot open a document from a int"
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_its_typed_error(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    source = case.make(tmp_path)
    with pytest.raises(QwenOCRError) as info:
        process(source)
    err = info.value
    assert type(err) is case.error, f"{name}: {type(err).__name__}: {err}"
    assert err.code == case.code, f"{name}: code {err.code}"
    assert err.stage == case.stage, f"{name}: failed at {err.stage}"  # type: ignore[attr-defined]
    assert case.says in err.message, f"{name}: {err.message!r} should say {case.says!r}"


def test_catalogue_has_at_least_twenty_cases() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if issubclass(c.error, DocumentError)])
def test_document_errors_are_invalid_image_errors(name: str) -> None:
    # One `except InvalidImageError` handles "this input cannot be used", image or document.
    assert issubclass(CASES[name].error, InvalidImageError)


def test_pages_before_a_broken_tiff_page_still_come_back() -> None:
    with open_document(tiff_with_broken_page(count=3, broken=1)) as doc:
        assert doc.page_count == 3
        results: list[str] = []
        for page in doc:
            try:
                page.prepare()
                results.append("ok")
            except PageRenderError as exc:
                results.append(f"broken {exc.page_index}")
    assert results == ["ok", "broken 1", "ok"]


def test_pages_around_a_broken_pdf_page_still_come_back() -> None:
    with open_document(_pdf_with_broken_page(), max_pixels=SMALL_BUDGET) as doc:
        assert doc.page_count == 3
        results = []
        for page in doc:
            try:
                page.prepare()
                results.append("ok")
            except PageRenderError:
                results.append("broken")
    assert results == ["ok", "broken", "ok"]


def test_pdf_with_a_broken_xref_is_repaired() -> None:
    # PDFium rebuilds a broken cross-reference table by scanning the file: the document reads normally.
    assert process(_pdf_with_broken_xref()) == ("ok", 1)
    with open_document(_pdf_with_broken_xref()) as doc:
        assert doc.page(0).has_good_text_layer


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.pdf"
    path.write_bytes(text_pdf([PROSE]))
    if os.name == "posix" and os.geteuid() != 0:
        path.chmod(0)
        try:
            with pytest.raises(DocumentReadError) as info:
                open_document(path)
        finally:
            path.chmod(0o600)
    else:
        # Running as root (a container), every file is readable: make the open itself fail as it would.
        real_open = Path.open

        def deny(self: Path, *args: Any, **kwargs: Any) -> Any:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_open(self, *args, **kwargs)

        real_os_open = os.open

        def deny_fd(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:  # files are opened through os.open
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(file))
            return real_os_open(file, flags, *args, **kwargs)

        monkeypatch.setattr(Path, "open", deny)
        monkeypatch.setattr(os, "open", deny_fd)
        with pytest.raises(DocumentReadError) as info:
            open_document(path)
    assert info.value.code == "PermissionDenied"
    assert "no permission to read" in info.value.message


def test_html_message_names_what_it_looks_like_and_what_is_supported(tmp_path: Path) -> None:
    path = _write("page.png", b"<html><body>hi</body></html>")(tmp_path)
    with pytest.raises(UnsupportedDocumentError) as info:
        open_document(path)
    message = info.value.message
    assert "an HTML page" in message
    for fmt in ("PDF", "JPEG", "PNG", "TIFF"):
        assert fmt in message


def test_bytes_and_file_objects_fail_the_same_way() -> None:
    for source in (b"", io.BytesIO(b"")):
        with pytest.raises(EmptyDocumentError):
            open_document(source)
    for source in (png_bomb(), io.BytesIO(png_bomb())):
        with pytest.raises(PageSizeError):
            open_document(source)


def test_invalid_arguments_are_typed() -> None:
    data = text_pdf([PROSE])
    with pytest.raises(InvalidArgumentError, match="dpi"):
        open_document(data, dpi=0)
    with pytest.raises(InvalidArgumentError, match="max_pixels"):
        open_document(data, max_pixels=-5)

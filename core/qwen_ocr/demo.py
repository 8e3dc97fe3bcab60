"""``make demo`` / ``python -m qwen_ocr.demo``: read the bundled samples offline with the local provider, no API key.

It reads the sample scan (``delivery-note.jpg``) and the two-page scanned PDF (``report.pdf``) shipped in
``qwen_ocr.samples`` with :class:`qwen_ocr.local.LocalEngine` (RapidOCR, models inside the ``rapidocr`` wheel) and
prints, for each page, a short header, the text in reading order, a few lines with their boxes, and how close the
reading is to the sample's known text. Nothing is sent anywhere.

Then, when ``langchain-core`` is installed (the ``langchain`` extra), it shows ``ImageReader`` at work: a chat
message holding the two samples as ``data:`` URLs (the scan, and the PDF's first page as a JPEG), before and after
``ImageReader(client=QwenOCR(provider="local"))``: each image part becomes a quoted text part a text-only model can
take. Without ``langchain-core`` that part is skipped with a one-line note.

Pass your own files to read them instead: ``python -m qwen_ocr.demo invoice.png report.pdf``.

Example output (abridged)::

    == delivery-note.jpg: 1275 x 1200 px, 17 lines, 0.8 s ==
    NORTHWIND TRADING COMPANY
    Warehouse 4, 118 Harbour Road, Portsmouth PO1 3AX
    ...
    lines with boxes (location: corners clockwise from top-left; rotate_rect: cx, cy, w, h, angle)
    "NORTHWIND TRADING COMPANY"  location=(139, 129, 747, 120, 748, 161, 140, 169)  rotate_rect=(443, 145, 41, 608, 90)
    matches the sample's known text with a character error rate of 0.2%
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from . import __version__
from .errors import QwenOCRError
from .local import LocalEngine, cer, get_engine
from .results import OCRResult
from .samples import PDF_PAGE_SEPARATOR, SAMPLE_PDF, SAMPLE_SCAN, known_text, read_sample

__all__ = ["PDF_DPI", "SHOWN_LINES", "image_reader_demo", "main", "pdf_pages"]

PDF_DPI = 150
"""Resolution PDF pages are rendered at for the demo: the samples' own (150 dpi); enough for print-size text."""
SHOWN_LINES = 4
"""How many lines of each page are shown with their boxes."""


def pdf_pages(data: bytes, *, dpi: float = PDF_DPI) -> Iterator[tuple[int, int, Image.Image]]:
    """Render a PDF's pages: ``(page number, page count, image)`` for each, with :mod:`qwen_ocr.documents`."""
    from .documents import open_document

    with open_document(data, dpi=dpi) as doc:
        count = len(doc)
        for page in doc:
            yield page.number, count, page.render(dpi=dpi)


def _format_line(text: str, width: int = 40) -> str:
    shown = text if len(text) <= width else text[: width - 3] + "..."
    return '"' + shown + '"'


def _report(title: str, result: OCRResult, seconds: float, reference: str | None) -> None:
    width, height = result.image_size or (0, 0)
    print(f"== {title}: {width} x {height} px, {len(result.lines)} lines, {seconds:.1f} s ==")
    print(result.text if result.text else "(no text found)")
    if result.lines:
        print()
        print("  lines with boxes (location: corners clockwise from top-left; rotate_rect: cx, cy, w, h, angle)")
        for line in result.lines[:SHOWN_LINES]:
            rect = tuple(round(v) for v in line.rotate_rect)
            score = f"{line.score:.2f}" if line.score is not None else "-"
            print(f"  {_format_line(line.text)}  location={line.location}  rotate_rect={rect}  score={score}")
    if reference is not None:
        print(f"  matches the sample's known text with a character error rate of {cer(result.text, reference):.1%}")
    if result.metadata.get("orientation") == 180:
        print("  (the page was upside down; it was read turned by 180 degrees)")
    print()


def _read_pdf(engine: LocalEngine, name: str, data: bytes, references: Sequence[str] | None) -> int:
    pages = 0
    for number, count, image in pdf_pages(data):
        started = time.perf_counter()
        result = engine.ocr(image)
        reference = references[number - 1] if references is not None and number <= len(references) else None
        _report(f"{name}, page {number} of {count} (rendered at {PDF_DPI} dpi)", result, _since(started), reference)
        pages += 1
    return pages


def _since(started: float) -> float:
    return time.perf_counter() - started


def _read_samples(engine: LocalEngine) -> int:
    started = time.perf_counter()
    result = engine.ocr(read_sample(SAMPLE_SCAN))
    _report(SAMPLE_SCAN, result, _since(started), known_text(SAMPLE_SCAN))
    references = known_text(SAMPLE_PDF).split(PDF_PAGE_SEPARATOR)
    return 1 + _read_pdf(engine, SAMPLE_PDF, read_sample(SAMPLE_PDF), references)


def _read_files(engine: LocalEngine, paths: Sequence[str]) -> int:
    pages = 0
    for name in paths:
        path = Path(name)
        try:
            with path.open("rb") as fh:
                is_pdf = fh.read(5) == b"%PDF-"
            if is_pdf:
                pages += _read_pdf(engine, path.name, path.read_bytes(), None)
            else:
                started = time.perf_counter()
                result = engine.ocr(path)
                _report(path.name, result, _since(started), None)
                pages += 1
        except (OSError, QwenOCRError) as exc:
            print(f"== {name}: cannot be read: {exc}", file=sys.stderr)
    return pages


def _data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _show_part(position: int, part: Any, body_lines: int = 3) -> None:
    """One content part, short: base64 cut, OCR blocks cut to their first lines."""
    if isinstance(part, str):
        part = {"type": "text", "text": part}
    kind = part.get("type", "?")
    if kind == "image_url":
        url = str(part["image_url"]["url"])
        print(f"  [{position}] image_url: {url[:40]}... ({len(url):,} characters)")
        return
    if kind != "text":
        print(f"  [{position}] {kind}")
        return
    lines = str(part["text"]).splitlines() or [""]
    if len(lines) > body_lines + 3 and lines[1].startswith("<image_text"):
        hidden = len(lines) - body_lines - 3
        lines = [*lines[: body_lines + 2], f"... ({hidden} more line{'s' if hidden != 1 else ''})", lines[-1]]
    print(f"  [{position}] text: {lines[0]}")
    for line in lines[1:]:
        print(f"            {line}")


def image_reader_demo() -> bool:
    """Show a chat message with the two samples as images, before and after ``ImageReader``; ``False`` if skipped."""
    try:
        from langchain_core.messages import HumanMessage

        from langchain_qwen_ocr.image_reader import ImageReader
    except ImportError:
        print("(ImageReader part skipped: it needs langchain-core, pip install 'qwen-ocr[langchain]'.)")
        return False
    from . import QwenOCR

    _, _, first_page = next(pdf_pages(read_sample(SAMPLE_PDF)))
    buffer = io.BytesIO()
    first_page.convert("RGB").save(buffer, format="JPEG", quality=90)
    question = "What was delivered, and what is the report about?"
    message = HumanMessage(
        [
            {"type": "text", "text": question},
            {"type": "image_url", "image_url": {"url": _data_url(read_sample(SAMPLE_SCAN), "image/jpeg")}},
            {"type": "image_url", "image_url": {"url": _data_url(buffer.getvalue(), "image/jpeg")}},
        ]
    )
    print("== ImageReader: a chat message with two images, before and after ==")
    print(f"before: {len(message.content)} parts; a text-only chat model refuses the image parts")
    for position, part in enumerate(message.content):
        _show_part(position, part)
    started = time.perf_counter()
    with QwenOCR(provider="local") as client:
        [after] = ImageReader(client=client).invoke([message])
    print(f"after ImageReader(client=QwenOCR(provider='local')), {_since(started):.1f} s: text parts only")
    for position, part in enumerate(after.content):
        _show_part(position, part)
    print()
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo; returns the exit status (0 when every page was read)."""
    parser = argparse.ArgumentParser(
        prog="python -m qwen_ocr.demo",
        description="Read the bundled samples (or your files) offline with the local provider; no API key.",
    )
    parser.add_argument("files", nargs="*", help="images or PDFs to read instead of the bundled samples")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a console without UTF-8 must not stop the demo
    engine = get_engine()
    print(f"qwen_ocr {__version__} offline demo: the local provider, no API key, nothing leaves this machine.")
    started = time.perf_counter()
    try:
        engine.load()
    except QwenOCRError as exc:
        print(f"The local provider is not available: {exc.message}", file=sys.stderr)
        return 1
    print(f"Engine: {engine.model} (models loaded in {_since(started):.1f} s)")
    print()
    started = time.perf_counter()
    pages = _read_files(engine, args.files) if args.files else _read_samples(engine)
    print(f"Read {pages} page{'s' if pages != 1 else ''} in {_since(started):.1f} s.")
    print()
    shown_reader = not args.files and image_reader_demo()
    print("In your code: QwenOCR(provider='local').ocr('scan.png', task='advanced_recognition') reads offline;")
    print("tables, fields and LaTeX need Qwen-OCR itself: set DASHSCOPE_API_KEY and use provider='dashscope'.")
    if shown_reader:
        print("ImageReader() | llm lets any text-only chat model read the images in its messages (LangChain).")
    return 0 if pages else 1


if __name__ == "__main__":
    sys.exit(main())

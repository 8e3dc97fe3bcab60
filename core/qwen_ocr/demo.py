"""``make demo`` / ``python -m qwen_ocr.demo``: read the bundled samples offline with the local provider, no API key.

It reads the sample scan (``delivery-note.jpg``) and the two-page scanned PDF (``report.pdf``) shipped in
``qwen_ocr.samples`` with :class:`qwen_ocr.local.LocalEngine` (RapidOCR, models inside the ``rapidocr`` wheel) and
prints, for each page, a short header, the text in reading order, a few lines with their boxes, and how close the
reading is to the sample's known text. Nothing is sent anywhere.

The LangChain half of the demo (``ImageReader`` turning the images of a chat message into text) lives with the
adapter, in :mod:`langchain_qwen_ocr.demo`, so that the core never imports a framework; ``make demo`` runs both.

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
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image

from . import __version__
from .errors import QwenOCRError
from .local import LocalEngine, cer, get_engine
from .results import OCRResult
from .samples import PDF_PAGE_SEPARATOR, SAMPLE_PDF, SAMPLE_SCAN, known_text, read_sample

__all__ = ["PDF_DPI", "SHOWN_LINES", "main", "pdf_pages"]

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
    print("In your code: QwenOCR(provider='local').ocr('scan.png', task='advanced_recognition') reads offline;")
    print("tables, fields and LaTeX need Qwen-OCR itself: set DASHSCOPE_API_KEY and use provider='dashscope'.")
    return 0 if pages else 1


if __name__ == "__main__":
    sys.exit(main())

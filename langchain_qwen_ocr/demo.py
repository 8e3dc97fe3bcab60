"""``python -m langchain_qwen_ocr.demo`` (the second half of ``make demo``): ``ImageReader`` at work, offline.

A chat message holding the two bundled samples as ``data:`` URLs (the scan, and the PDF's first page as a JPEG) is
shown before and after ``ImageReader(client=QwenOCR(provider="local"))``: each image part becomes a quoted text part
that a text-only chat model can take. Nothing is sent anywhere and no API key is needed.
"""

from __future__ import annotations

import base64
import io
import sys
import time
from typing import Any

from langchain_core.messages import HumanMessage

from qwen_ocr import QwenOCR
from qwen_ocr.demo import pdf_pages
from qwen_ocr.samples import SAMPLE_PDF, SAMPLE_SCAN, read_sample

from .image_reader import ImageReader

__all__ = ["image_reader_demo", "main"]


def _since(started: float) -> float:
    return time.perf_counter() - started


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


def image_reader_demo() -> None:
    """Show a chat message with the two samples as images, before and after ``ImageReader``."""
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


def main() -> int:
    """Run the ImageReader demo; returns the exit status."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a console without UTF-8 must not stop the demo
    image_reader_demo()
    print("ImageReader() | llm lets any text-only chat model read the images in its messages (LangChain).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""QwenOCRLoader on a scanned PDF against the loopback emulator (200 ms per request): pipelined vs sequential.

Run from the repository root::

    .venv/bin/python benchmarks/bench_loader.py              # 50 pages; also 150 pages for the memory check
    .venv/bin/python benchmarks/bench_loader.py --quick      # 20 pages, no 150-page run

What it measures, each run in a fresh process (so that peak RSS belongs to that run alone), against the emulator
started as a separate process (``python -m qwen_ocr.testing.emulator --latency 0.2``), so that the measured
process is only the loader:

- ``lazy_load()`` with ``max_concurrency=8`` and with ``max_concurrency=1`` (sequential), and ``alazy_load()``
  with ``max_concurrency=8``: seconds, pages per second, the sequential time divided by this one, seconds to the
  first Document, and whether the Documents came in page order; once with pages sent at the model's full pixel
  budget (rendering and PNG-encoding a 300-dpi Letter page costs about 0.4 s of CPU, so two cores bound the
  rate), once at ``max_pixels=1,000,000`` (little CPU: the 200 ms per request dominate);
- the same three runs on a directory of 50 single-page JPEG scans (one window of pages in flight across files);
- memory: the highest RSS seen (sampled at each Document) over the first and over the second half of the
  Documents, and the peak (``VmHWM``), for 50 and for 150 pages.

The PDF is built on the fly: 10 different Letter pages of typed text rendered with Pillow at 300 dpi and stored as
JPEG images (a scan: no text layer, so every page is OCR'd), repeated to the page count with PDFium.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _emulator import emulator_process
from _rss import peak_rss_kib

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 0.2
SMALL_PIXELS = 1_000_000
FULL = "full budget (2528x3264)"
SMALL = "max_pixels=1,000,000"
FOLDER = "a directory of single-page JPEG scans (1275x1650)"

__all__ = ["build_scanned_pdf", "main"]


def build_scanned_pdf(pages: int, target: Path) -> None:
    """A scanned-looking PDF of ``pages`` Letter pages at 300 dpi (10 distinct pages of text, repeated)."""
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=42)
    images = []
    for n in range(min(10, pages)):
        im = Image.new("L", (2550, 3300), 250)
        draw = ImageDraw.Draw(im)
        draw.text((200, 200), f"Quarterly report - sheet {n + 1}", fill=0, font=ImageFont.load_default(size=72))
        for row in range(40):
            line = f"{row + 1:>2}. Item {n * 40 + row:04d}: the quick brown fox jumps over the lazy dog {row * 7 % 13}"
            draw.text((200, 400 + row * 70), line, fill=20, font=font)
        images.append(im)
    buffer = io.BytesIO()
    images[0].save(buffer, format="PDF", save_all=True, append_images=images[1:], resolution=300)
    seed = pdfium.PdfDocument(buffer.getvalue())
    out = pdfium.PdfDocument.new()
    while len(out) < pages:
        out.import_pages(seed, list(range(min(len(seed), pages - len(out)))))
    out.save(str(target))
    out.close()
    seed.close()


def build_image_directory(count: int, target: Path) -> None:
    """``count`` single-page JPEG scans (Letter at 150 dpi, 1275x1650) in the directory ``target``."""
    from PIL import Image, ImageDraw, ImageFont

    target.mkdir(parents=True, exist_ok=True)
    font = ImageFont.load_default(size=22)
    for n in range(count):
        im = Image.new("L", (1275, 1650), 248)
        draw = ImageDraw.Draw(im)
        draw.text((100, 100), f"Receipt {n + 1:03d}", fill=0, font=ImageFont.load_default(size=40))
        for row in range(30):
            line = f"{row + 1:>2}. article {n * 30 + row:05d} .......... {row * 3 % 17}.99"
            draw.text((100, 200 + row * 45), line, fill=10, font=font)
        im.save(target / f"receipt-{n:03d}.jpg", format="JPEG", quality=85)


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        resident = int(fh.read().split()[1])
    return resident * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(path: str, base_url: str, concurrency: int, use_async: bool, max_pixels: int | None) -> None:
    """In a fresh process: load every page; print one JSON line of timings, order and memory."""
    from langchain_qwen_ocr.document_loaders import QwenOCRLoader

    loader = QwenOCRLoader(
        path,
        api_key="bench",
        base_url=base_url,
        provider="dashscope",
        max_concurrency=concurrency,
        ocr_options={"max_pixels": max_pixels} if max_pixels else None,
    )
    order: list[tuple[str, int]] = []
    rss: list[float] = []
    first = 0.0
    started = time.perf_counter()

    def seen(metadata: dict[str, Any]) -> None:
        nonlocal first
        order.append((str(metadata["source"]), int(metadata["page"])))
        rss.append(_rss_mib())
        if len(order) == 1:
            first = time.perf_counter() - started

    if use_async:

        async def run() -> None:
            async for doc in loader.alazy_load():
                seen(doc.metadata)

        asyncio.run(run())
    else:
        for doc in loader.lazy_load():
            seen(doc.metadata)
    seconds = time.perf_counter() - started
    half = len(rss) // 2
    record = {
        "pages": len(order),
        "in_order": order == sorted(order),  # page order within a file, file names (zero-padded) across files
        "seconds": seconds,
        "first": first,
        "rss_first_half": max(rss[:half]),
        "rss_second_half": max(rss[half:]),
        "peak": peak_rss_kib() / 1024,
    }
    print(json.dumps(record))


def _run(pdf: Path, base_url: str, concurrency: int, use_async: bool, max_pixels: int | None) -> dict[str, float]:
    mode = "async" if use_async else "sync"
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(pdf), base_url, str(concurrency), mode, str(max_pixels or 0)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    record: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="20 pages, no 150-page run")
    args = parser.parse_args(argv)
    pages = 20 if args.quick else 50
    runs: list[tuple[str, str, int, dict[str, float]]] = []
    with emulator_process("--latency", str(LATENCY)) as base_url, tempfile.TemporaryDirectory() as tmp:
        pdf = Path(tmp) / f"scan-{pages}.pdf"
        build_scanned_pdf(pages, pdf)
        plan = [
            (FULL, "lazy_load", 8, False, None),
            (FULL, "lazy_load", 1, False, None),
            (FULL, "alazy_load", 8, True, None),
            (SMALL, "lazy_load", 8, False, SMALL_PIXELS),
            (SMALL, "lazy_load", 1, False, SMALL_PIXELS),
            (SMALL, "alazy_load", 8, True, SMALL_PIXELS),
        ]
        folder = Path(tmp) / "receipts"
        build_image_directory(pages, folder)
        images = [
            (FOLDER, "lazy_load", 8, False, None),
            (FOLDER, "lazy_load", 1, False, None),
            (FOLDER, "alazy_load", 8, True, None),
        ]
        for budget, method, concurrency, use_async, max_pixels in plan + images:
            source = folder if budget == FOLDER else pdf
            record = _run(source, base_url, concurrency, use_async, max_pixels)
            runs.append((budget, f"{method}, max_concurrency={concurrency}", pages, record))
            print(f"{runs[-1][:2]}, {pages} pages: {record}", file=sys.stderr)
        if not args.quick:
            big = Path(tmp) / "scan-150.pdf"
            build_scanned_pdf(150, big)
            record = _run(big, base_url, 8, False, None)
            runs.append((FULL, "lazy_load, max_concurrency=8", 150, record))
            print(f"{runs[-1][:2]}, 150 pages: {record}", file=sys.stderr)
    command = "benchmarks/bench_loader.py" + (" --quick" if args.quick else "")
    print(f"Produced by: .venv/bin/python {command}")
    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"emulator latency {LATENCY * 1000:.0f} ms per request, in its own process.\n"
    )
    print(
        "| input | run | pages | seconds | pages/s | sequential / this | first Document | in order "
        "| RSS, 1st half | RSS, 2nd half | peak RSS |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    sequential = {budget: r["seconds"] for budget, name, n, r in runs if name.endswith("=1") and n == pages}
    for budget, name, n, r in runs:
        speedup = f"{sequential[budget] / r['seconds']:.1f}x" if n == pages else "-"
        print(
            f"| {budget} | {name} | {n} | {r['seconds']:.1f} | {r['pages'] / r['seconds']:.1f} | {speedup} | "
            f"{r['first']:.2f} s | {'yes' if r['in_order'] else 'NO'} | {r['rss_first_half']:.0f} MiB | "
            f"{r['rss_second_half']:.0f} MiB | {r['peak']:.0f} MiB |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "async", int(sys.argv[6]) or None)
    else:
        main()

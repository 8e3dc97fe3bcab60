"""Benchmark of the offline ``local`` provider: accuracy (CER) and seconds per image for a few detector limits.

Run from the repository root::

    .venv/bin/python benchmarks/bench_local.py                 # detector limits 960 (default) and 1280
    .venv/bin/python benchmarks/bench_local.py --limits 640 960 1280 1920 --repeat 5

For each detector limit it reads ``tests/data/local/linn.png`` (a dense two-column Letter scan, 2550 x 3300) upright
and turned upside down, the bundled sample scan and each page of the bundled sample PDF (rendered at 150 dpi), and
prints a Markdown table: character error rate against the known text, and wall-clock seconds per image (the best
and the median of ``--repeat`` runs, after one warm-up; model loading is timed separately) and CPU seconds (all
threads; less disturbed than wall-clock time when other work shares the machine). Offline.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from qwen_ocr.demo import PDF_DPI, pdf_pages
from qwen_ocr.local import DEFAULT_DET_LIMIT, LocalEngine, cer
from qwen_ocr.results import OCRResult
from qwen_ocr.samples import PDF_PAGE_SEPARATOR, SAMPLE_PDF, SAMPLE_SCAN, known_text, read_sample

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
LINN = ROOT / "tests" / "data" / "local" / "linn.png"


def _timed(read: Callable[[], OCRResult], repeat: int) -> tuple[OCRResult, list[float], list[float]]:
    """The last result, wall-clock seconds and CPU seconds (all threads of this process) of each run."""
    result = read()  # warm-up (first use of each input shape)
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = read()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return result, wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limits", type=int, nargs="+", default=[DEFAULT_DET_LIMIT, 1280])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from importlib.metadata import version

    print(
        f"Python {platform.python_version()}, rapidocr {version('rapidocr')}, onnxruntime {version('onnxruntime')}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
    )
    with Image.open(LINN) as im:
        linn = im.convert("RGB")
    linn_turned = linn.rotate(180)
    linn_ref = (LINN.parent / "linn.txt").read_text(encoding="utf-8")
    scan = read_sample(SAMPLE_SCAN)
    pages = [image for _, _, image in pdf_pages(read_sample(SAMPLE_PDF), dpi=PDF_DPI)]
    page_refs = known_text(SAMPLE_PDF).split(PDF_PAGE_SEPARATOR)
    with Image.open(io.BytesIO(scan)) as im:
        scan_size = im.size

    cases: list[tuple[str, Callable[[LocalEngine], OCRResult], str]] = [
        ("linn.png (2550x3300)", lambda e: e.ocr(linn), linn_ref),
        ("linn.png upside down", lambda e: e.ocr(linn_turned), linn_ref),
        (f"{SAMPLE_SCAN} ({scan_size[0]}x{scan_size[1]})", lambda e: e.ocr(scan), known_text(SAMPLE_SCAN)),
    ]
    for i, (page, ref) in enumerate(zip(pages, page_refs, strict=True), 1):
        cases.append((f"{SAMPLE_PDF} p.{i} ({page.width}x{page.height})", lambda e, p=page: e.ocr(p), ref))

    print()
    print("| detector limit | image | CER | s/image best | s/image median | CPU s/image | lines |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for limit in args.limits:
        started = time.perf_counter()
        engine = LocalEngine(det_limit=limit).load()
        load = time.perf_counter() - started
        for name, read, ref in cases:
            result, wall, cpu = _timed(functools.partial(read, engine), args.repeat)
            print(
                f"| {limit} | {name} | {cer(result.text, ref):.2%} | {min(wall):.2f} | "
                f"{statistics.median(wall):.2f} | {statistics.median(cpu):.2f} | {len(result.lines)} |"
            )
        print(f"| {limit} | (model loading) | | {load:.2f} | | | |")
        sys.stdout.flush()
    print()
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()

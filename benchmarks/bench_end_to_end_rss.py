"""Peak RSS of reading an N-page scanned PDF end to end: render at the budget, encode, send to a loopback stub.

Each page count runs in a fresh process (so peaks do not mix), against the loopback emulator started as a separate
process (``python -m qwen_ocr.testing.emulator``), so the measured process is only the client side.

    .venv/bin/python benchmarks/bench_end_to_end_rss.py            # 50, 300 pages (about 2 minutes on 2 cores)
    .venv/bin/python benchmarks/bench_end_to_end_rss.py 50 300 1000

The scanned page is cardinal.pdf from the test corpus (tests/data/corpus/SOURCES.md), repeated.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _emulator import emulator_process

ROOT = Path(__file__).resolve().parents[1]
SCAN = ROOT / "tests" / "data" / "corpus" / "ocrmypdf" / "cardinal.pdf"


def build_pdf(pages: int, target: Path) -> None:
    import pypdfium2 as pdfium

    source = pdfium.PdfDocument(str(SCAN))
    out = pdfium.PdfDocument.new()
    n = len(source)
    while len(out) < pages:
        out.import_pages(source, list(range(min(n, pages - len(out)))))
    out.save(str(target))


def child(path: str, base_url: str) -> None:
    """Run in a fresh process: read every page through the client; print peak RSS and timings as JSON."""
    from qwen_ocr import QwenOCR
    from qwen_ocr.reading import read_document

    started = time.perf_counter()
    ok = failed = 0
    with QwenOCR(api_key="bench", base_url=base_url, provider="dashscope") as client:
        for page in read_document(client, path, max_concurrency=8):
            if page.ok:
                ok += 1
            else:
                failed += 1
    from _rss import peak_rss_kib

    peak_kib = peak_rss_kib()
    print(
        json.dumps({"ok": ok, "failed": failed, "seconds": time.perf_counter() - started, "peak_mib": peak_kib / 1024})
    )


def main(counts: list[int]) -> None:
    rows = []
    with emulator_process("--latency", "0.05") as base_url, tempfile.TemporaryDirectory() as tmp:
        for count in counts:
            pdf = Path(tmp) / f"scan-{count}.pdf"
            build_pdf(count, pdf)
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(pdf), base_url],
                capture_output=True,
                text=True,
                check=True,
            )
            record = json.loads(out.stdout.strip().splitlines()[-1])
            rows.append((count, record))
            print(f"{count} pages: {record}", file=sys.stderr)
    print("Produced by: .venv/bin/python benchmarks/bench_end_to_end_rss.py " + " ".join(map(str, counts)))
    print(f"Machine: {platform.machine()}, 2 cores, Python {platform.python_version()}; emulator latency 50 ms.\n")
    print("| pages | pages read | failed | seconds | pages/s | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- |")
    for count, r in rows:
        rate = r["ok"] / r["seconds"] if r["seconds"] else 0.0
        print(f"| {count} | {r['ok']} | {r['failed']} | {r['seconds']:.1f} | {rate:.1f} | {r['peak_mib']:.0f} MiB |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main([int(a) for a in sys.argv[1:]] or [50, 300])

"""Throughput at the rate limit, bytes on the wire, client CPU, memory, tokens and the cache, side by side.

Everything runs against the loopback emulator in a separate process (``baselines.EmulatorProcess``), so the
client's CPU time is its own. One command::

    make bench                                   # = .venv/bin/python benchmarks/bench_performance.py
    .venv/bin/python benchmarks/bench_performance.py --pages 200 --baseline-pages 40 --rss 50,300,1000

Sections (each printed as a Markdown table and written to ``benchmarks/PERFORMANCE.md``):

1. pages/s for an N-page scanned PDF at latency 300 ms and RPM 1,200 (also enforced per second, RPM/60, as the
   service may), concurrency 8 and 32, paced and unpaced, against the bound ``min(concurrency / latency, RPM/60)``
   and against the baselines of ``baselines.py`` (run on fewer pages: they are sequential, their rate is steady);
2. bytes uploaded and client CPU ms per page, born-digital and scanned, against baseline (a);
3. peak RSS against page count (a fresh process per count, ``bench_end_to_end_rss.py``);
4. tokens per page and price per 1,000 pages, ``text_layer="auto"`` against ``"never"``;
5. a second run with the cache: requests sent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from baselines import BASELINES, EmulatorProcess, build_scanned_pdf  # noqa: E402
from bench_end_to_end_rss import build_pdf  # noqa: E402

from qwen_ocr import QwenOCR, estimate_document  # noqa: E402
from qwen_ocr.reading import read_document  # noqa: E402

BORN_DIGITAL = ROOT / "tests" / "data" / "corpus" / "py-pdf" / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"
SCAN = ROOT / "tests" / "data" / "corpus" / "ocrmypdf" / "cardinal.pdf"


def repeat_pdf(source: Path, pages: int, target: Path) -> Path:
    """``source``'s pages repeated up to ``pages``."""
    import pypdfium2 as pdfium

    src = pdfium.PdfDocument(str(source))
    out = pdfium.PdfDocument.new()
    while len(out) < pages:
        out.import_pages(src, list(range(min(len(src), pages - len(out)))))
    out.save(str(target))
    return target


def run_ours(
    pdf: Path,
    base_url: str,
    *,
    concurrency: int,
    rpm: float | None,
    text_layer: str = "never",
    cache: Path | None = None,
) -> dict[str, Any]:
    """Read every page with ``read_document``; measure time, requests, bytes, CPU and 429s seen by the client."""
    sent = {"requests": 0, "bytes": 0, "429": 0}

    def on_request(request: httpx.Request) -> None:
        sent["requests"] += 1
        sent["bytes"] += len(request.content)

    def on_response(response: httpx.Response) -> None:
        if response.status_code == 429:
            sent["429"] += 1

    http = httpx.Client(
        timeout=60,
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=None),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    client = QwenOCR(
        api_key="bench", base_url=base_url, rpm=rpm, max_concurrency=concurrency, cache=cache, http_client=http
    )
    ok = failed = 0
    started, cpu = time.perf_counter(), time.process_time()
    for page in read_document(client, pdf, max_concurrency=concurrency, text_layer=text_layer):  # type: ignore[arg-type]
        ok += page.ok
        failed += not page.ok
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    http.close()
    pages = ok + failed
    return {
        "pages": pages,
        "ok": ok,
        "failed": failed,
        "seconds": round(seconds, 2),
        "pages_per_s": round(ok / seconds, 2) if seconds else None,
        "http_requests": sent["requests"],
        "responses_429": sent["429"],
        "bytes_per_page": round(sent["bytes"] / pages) if pages else None,
        "cpu_ms_per_page": round(cpu_s * 1000 / pages, 1) if pages else None,
        "pacer_waited_s": round(client.pacer.stats.waited, 1) if client.pacer else None,
    }


def client_ceiling(pdf: Path, concurrency: int) -> float:
    """Pages/s of the client alone (no network wait): what this machine's CPU allows for this document."""
    with EmulatorProcess(latency=0.0) as emu:
        return float(run_ours(pdf, emu.base_url, concurrency=concurrency, rpm=None)["pages_per_s"] or 0.0)


def section_throughput(args: argparse.Namespace, tmp: Path, out: list[str]) -> None:
    pdf = build_scanned_pdf(args.pages, tmp / f"scan-{args.pages}.pdf")
    ceiling = client_ceiling(pdf, 8)
    rows = []
    # At the RPM, and at a quarter of it: a limit this machine's CPU can outrun, where pacing shows.
    for rpm in (args.rpm, args.rpm // 4):
        for concurrency in (8, 32):
            bound = min(concurrency / args.latency, rpm / 60)
            for paced in (True, False):
                with EmulatorProcess(latency=args.latency, rpm=rpm, per_second=True) as emu:
                    result = run_ours(pdf, emu.base_url, concurrency=concurrency, rpm=rpm if paced else None)
                    stats = emu.stats()
                name = f"qwen_ocr, RPM {rpm}, concurrency {concurrency}, {'paced' if paced else 'unpaced'}"
                rows.append((name, result, stats, bound))
                print(f"  {name}: {result}", file=sys.stderr, flush=True)
    baseline_pdf = build_scanned_pdf(args.baseline_pages, tmp / f"scan-{args.baseline_pages}.pdf")
    for key in args.baselines:
        with EmulatorProcess(latency=args.latency, rpm=args.rpm, per_second=True) as emu:
            print(f"  running baseline {key} ...", file=sys.stderr, flush=True)
            result = BASELINES[key](baseline_pdf, emu.base_url, args.baseline_pages)
            stats = emu.stats()
        in_flight = 10 if key == "zerox" else 1  # zerox sends 10 at once; the others one page after the other
        rows.append((result["baseline"], result, stats, min(in_flight / args.latency, args.rpm / 60)))
    out.append(f"### 1. Throughput: {args.pages}-page scan, latency {args.latency * 1000:.0f} ms, RPM {args.rpm}\n")
    out.append(
        f"Bound = min(concurrency / latency, RPM / 60) = {args.rpm / 60:.1f} pages/s at both concurrencies "
        f"({args.rpm // 4 / 60:.1f} at RPM {args.rpm // 4}); the emulator refuses over RPM/60 in any second. "
        f"This machine's client-side ceiling for these pages (render + encode + parse with no network wait, "
        f"{os.cpu_count()} cores) is **{ceiling:.1f} pages/s**.\n"
    )
    out.append("| reader | pages | seconds | pages/s | bound | % of bound | requests | 429s (emulator) | % 429 |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r, stats, bound in rows:
        throttled = int(stats.get("throttled", 0))
        requests = int(stats.get("requests", 0)) or 1
        rate = r.get("pages_per_s") or 0.0
        out.append(
            f"| {name} | {r.get('pages')} | {r.get('seconds')} | {rate} | {bound:.1f} | {100 * rate / bound:.0f}% | "
            f"{stats.get('requests')} | {throttled} | {100 * throttled / requests:.1f}% |"
        )
    out.append("")


def section_bytes_cpu(args: argparse.Namespace, tmp: Path, out: list[str]) -> None:
    n = args.cpu_pages
    docs = {
        "born-digital (pdflatex)": repeat_pdf(BORN_DIGITAL, n, tmp / "born.pdf"),
        "scanned (1-bit, cardinal)": repeat_pdf(SCAN, n, tmp / "scanned.pdf"),
    }
    out.append(f"### 2. Bytes uploaded and client CPU per page ({n} pages each, latency 0)\n")
    out.append("| document | reader | KiB uploaded/page | client CPU ms/page | vs baseline (a) bytes | vs (a) CPU |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    for label, pdf in docs.items():
        with EmulatorProcess(latency=0.0) as emu:
            base = BASELINES["vendor"](pdf, emu.base_url, n) if "vendor" in BASELINES else None
            ours = run_ours(pdf, emu.base_url, concurrency=8, rpm=None)
            auto = run_ours(pdf, emu.base_url, concurrency=8, rpm=None, text_layer="auto")
        base_bytes = (base or {}).get("bytes_per_page") or 0
        base_cpu = (base or {}).get("cpu_ms_per_page") or 0
        for reader, r in (("qwen_ocr, OCR every page", ours), ('qwen_ocr, text_layer="auto"', auto)):
            kib = (r["bytes_per_page"] or 0) / 1024
            share_b = f"{100 * (r['bytes_per_page'] or 0) / base_bytes:.0f}%" if base_bytes else "–"
            share_c = f"{100 * (r['cpu_ms_per_page'] or 0) / base_cpu:.0f}%" if base_cpu else "–"
            out.append(f"| {label} | {reader} | {kib:.0f} | {r['cpu_ms_per_page']} | {share_b} | {share_c} |")
        if base:
            out.append(
                f"| {label} | (a) vendor SDK, 300 dpi PNG | {base_bytes / 1024:.0f} | {base_cpu} | 100% | 100% |"
            )
    out.append("")


def section_rss(args: argparse.Namespace, tmp: Path, out: list[str]) -> None:
    counts = [int(c) for c in args.rss.split(",") if c]
    if not counts:
        return
    rows = []
    with EmulatorProcess(latency=0.0) as emu:
        for count in counts:
            pdf = tmp / f"rss-{count}.pdf"
            build_pdf(count, pdf)
            done = subprocess.run(
                [sys.executable, str(HERE / "bench_end_to_end_rss.py"), "--child", str(pdf), emu.base_url],
                capture_output=True,
                text=True,
                check=True,
            )
            record = json.loads(done.stdout.strip().splitlines()[-1])
            rows.append((count, record))
            print(f"  rss {count}: {record}", file=sys.stderr, flush=True)
            pdf.unlink()
    out.append("### 3. Peak RSS against page count (scanned pages, concurrency 8, a fresh process each)\n")
    out.append("| pages | read | failed | seconds | peak RSS | vs first |")
    out.append("| --- | --- | --- | --- | --- | --- |")
    first = rows[0][1]["peak_mib"]
    for count, r in rows:
        out.append(
            f"| {count} | {r['ok']} | {r['failed']} | {r['seconds']:.0f} | {r['peak_mib']:.0f} MiB | "
            f"{100 * (r['peak_mib'] / first - 1):+.0f}% |"
        )
    out.append("")


def section_tokens(args: argparse.Namespace, tmp: Path, out: list[str]) -> None:
    out.append("### 4. Tokens per page and price per 1,000 pages (estimate before sending, qwen-vl-ocr)\n")
    out.append("| document | text_layer | pages sent to the model | input tokens/page | USD per 1,000 pages |")
    out.append("| --- | --- | --- | --- | --- |")
    for label, pdf in (("born-digital (pdflatex)", BORN_DIGITAL), ("scanned (cardinal)", SCAN)):
        for mode in ("never", "auto"):
            est = estimate_document(pdf, text_layer=mode)  # type: ignore[arg-type]
            per_page = est.input_tokens / est.pages
            out.append(
                f"| {label} | {mode} | {est.pages_to_ocr} of {est.pages} | {per_page:.0f} | "
                f"{1000 * est.price_usd / est.pages:.2f} |"
            )
    out.append("")


def distinct_scan_pdf(pages: int, target: Path) -> Path:
    """``pages`` different 1-bit pages (Letter at 150 dpi, a line of text and the page number each)."""
    from PIL import Image, ImageDraw

    images = []
    for n in range(pages):
        im = Image.new("1", (1275, 1650), 1)
        draw = ImageDraw.Draw(im)
        for row in range(40):
            draw.text((100, 100 + row * 36), f"page {n + 1}, line {row + 1}: the quick brown fox", fill=0)
        images.append(im)
    images[0].save(target, save_all=True, append_images=images[1:], resolution=150)
    return target


def section_cache(args: argparse.Namespace, tmp: Path, out: list[str]) -> None:
    pdf = distinct_scan_pdf(args.cache_pages, tmp / "cache.pdf")
    cache = tmp / "ocr-cache"
    runs = []
    with EmulatorProcess(latency=0.05) as emu:
        for _ in range(2):
            emu.reset()
            result = run_ours(pdf, emu.base_url, concurrency=8, rpm=None, cache=cache)
            runs.append((result, emu.stats()))
    out.append(f"### 5. The cache: the same {args.cache_pages}-page job (all pages different) twice\n")
    out.append("| run | pages read | requests received by the emulator | seconds |")
    out.append("| --- | --- | --- | --- |")
    for i, (r, stats) in enumerate(runs, 1):
        out.append(f"| {i} | {r['ok']} | {stats['requests']} | {r['seconds']} |")
    out.append("")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n", 1)[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--baseline-pages", type=int, default=40)
    parser.add_argument("--baselines", default="vendor,langchain,zerox")
    parser.add_argument("--cpu-pages", type=int, default=20)
    parser.add_argument("--rss", default="50,300,1000", help="page counts for the memory section ('' to skip)")
    parser.add_argument("--cache-pages", type=int, default=50)
    parser.add_argument("--sections", default="1,2,3,4,5")
    parser.add_argument("--out", type=Path, default=HERE / "PERFORMANCE.md")
    args = parser.parse_args(argv)
    args.baselines = [b for b in args.baselines.split(",") if b in BASELINES]
    sections = {
        "1": section_throughput,
        "2": section_bytes_cpu,
        "3": section_rss,
        "4": section_tokens,
        "5": section_cache,
    }
    load_before = os.getloadavg()[0]
    out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for key in args.sections.split(","):
            print(f"section {key} ...", file=sys.stderr, flush=True)
            sections[key](args, Path(tmp), out)
    command = "python benchmarks/bench_performance.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = [
        "# Performance (generated)\n",
        f"Produced by: `{command.strip()}`\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after. The emulator runs in "
        "its own process.\n",
    ]
    text = "\n".join(header + out)
    print(text)
    args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

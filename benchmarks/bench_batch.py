"""Peak RSS of a batch job's two halves, for N pages: building and sending it (pages rendered, lines and the manifest
written, files uploaded, batches created), and following it to its end and reading every result back.

Each half of each page count runs in a fresh process (so peaks do not mix), against the loopback emulator started
as a separate process (``python -m qwen_ocr.testing.emulator``, its Batch File API), so the measured process is the
client side only. The pages are N small generated PNG images in one folder (distinct pixels each, about 3 kB:
a line is about 5 kB); 5% of the lines
fail their first try and go out again in a follow-up batch.

    .venv/bin/python benchmarks/bench_batch.py                  # 1,000 and 10,000 pages (a few minutes on 2 cores)
    .venv/bin/python benchmarks/bench_batch.py 500 2000
"""

from __future__ import annotations

import io
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _emulator import emulator_process

ROOT = Path(__file__).resolve().parents[1]


def make_images(count: int, folder: Path) -> None:
    import random

    from PIL import Image, ImageDraw

    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        im = Image.new("L", (160, 48), 255)
        ImageDraw.Draw(im).text((4, 6), f"p{i}", fill=0)
        im.paste(Image.frombytes("L", (48, 48), rng.randbytes(48 * 48)), (112, 0))  # ~2 kB that does not compress
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        (folder / f"img{i:06d}.png").write_bytes(buf.getvalue())


def child(step: str, folder: str, job_dir: str, base_url: str) -> None:
    """Run in a fresh process: one half of the job; print peak RSS and timings as JSON."""
    from qwen_ocr import QwenOCR
    from qwen_ocr.batch import BatchJob

    started = time.perf_counter()
    record: dict[str, object] = {}
    with QwenOCR(api_key="bench", base_url=base_url) as client:
        if step == "submit":
            job = client.batch.submit(folder, job_dir=job_dir)
            status = job.status(refresh=False)
            record = {"pages": status.pages, "batches": len(status.batches)}
        else:
            job = BatchJob.open(job_dir, client=client)
            status = job.wait(poll_interval=0.2, timeout=600)
            ok = failed = chars = 0
            for page in job.results():
                ok += page.ok
                failed += not page.ok
                chars += len(page.text)
            record = {"ok": ok, "failed": failed, "chars": chars, "batches": len(status.batches)}
    from _rss import peak_rss_kib

    record["seconds"] = time.perf_counter() - started
    record["peak_mib"] = peak_rss_kib() / 1024
    print(json.dumps(record))


def _run(step: str, folder: Path, job_dir: Path, base_url: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, str(folder), str(job_dir), base_url],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(counts: list[int]) -> None:
    rows = []
    with (
        emulator_process("--batch-in-progress", "0.5", "--batch-fail-share", "0.05") as base_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        for count in counts:
            folder = Path(tmp) / f"scans-{count}"
            make_images(count, folder)
            job_dir = Path(tmp) / f"job-{count}"
            submit = _run("submit", folder, job_dir, base_url)
            print(f"{count} pages, submit: {submit}", file=sys.stderr)
            results = _run("results", folder, job_dir, base_url)
            print(f"{count} pages, results: {results}", file=sys.stderr)
            sizes = {
                "pages.jsonl": (job_dir / "pages.jsonl").stat().st_size,
                "lines": sum(p.stat().st_size for p in (job_dir / "lines").glob("*.jsonl")),
                "out": sum(p.stat().st_size for p in (job_dir / "out").glob("*.jsonl")),
            }
            rows.append((count, submit, results, sizes))
    print("Produced by: .venv/bin/python benchmarks/bench_batch.py " + " ".join(map(str, counts)))
    print(f"Machine: {platform.machine()}, 2 cores, Python {platform.python_version()}; emulator in its own process.\n")
    print("| pages | submit: s | submit: peak RSS | results: s | pages read | failed | results: peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for count, s, r, _ in rows:
        print(
            f"| {count:,} | {s['seconds']:.1f} | {s['peak_mib']:.0f} MiB | {r['seconds']:.1f} | {r['ok']:,} | "
            f"{r['failed']} | {r['peak_mib']:.0f} MiB |"
        )
    print("\n| pages | pages.jsonl | input lines | downloaded output | batches |")
    print("| --- | --- | --- | --- | --- |")
    for count, _, r, sizes in rows:
        print(
            f"| {count:,} | {sizes['pages.jsonl'] / 1e6:.1f} MB | {sizes['lines'] / 1e6:.1f} MB | "
            f"{sizes['out'] / 1e6:.1f} MB | {r['batches']:.0f} |"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        main([int(a) for a in sys.argv[1:]] or [1000, 10000])

"""One measurement of ``bench_performance.py``, run in a fresh interpreter against one version of the library.

``bench_performance.py`` runs this file with ``PYTHONPATH`` pointing at the version to measure (the working tree,
or an older commit extracted from git), so the same measurement runs on the old code and the new one, interleaved,
in one run. It uses only what every measured version has (``QwenOCR``, ``AsyncQwenOCR``, ``read_document``,
``estimate_document``). Usage::

    PYTHONPATH=<tree>/core:<tree> python benchmarks/_perf_worker.py '<json: {"task": ..., ...}>'

The result is printed as one JSON line (the last line of stdout).
"""

from __future__ import annotations

import asyncio
import gc
import io
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


def _rss_mib() -> float:
    """The resident set size now, in MiB (Linux /proc; the peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class _Sampler:
    """The highest RSS seen while a block runs, sampled every 20 ms."""

    def __init__(self) -> None:
        self.peak = _rss_mib()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _rss_mib())

    def __enter__(self) -> _Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mib())


def _client(base_url: str, *, concurrency: int, rpm: float | None, sent: dict[str, int]) -> Any:
    import httpx

    from qwen_ocr import QwenOCR

    def on_request(request: httpx.Request) -> None:
        sent["requests"] += 1
        sent["bytes"] += len(request.content)

    def on_response(response: httpx.Response) -> None:
        if response.status_code == 429:
            sent["429"] += 1

    http = httpx.Client(
        timeout=120,
        limits=httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=None),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    return QwenOCR(api_key="bench", base_url=base_url, rpm=rpm, max_concurrency=concurrency, http_client=http)


def read(args: dict[str, Any]) -> dict[str, Any]:
    """Every page of a PDF through ``read_document``: time, CPU, bytes, requests and 429s seen by the client."""
    from qwen_ocr.reading import read_document

    sent = {"requests": 0, "bytes": 0, "429": 0}
    concurrency = int(args["concurrency"])
    client = _client(args["base_url"], concurrency=concurrency, rpm=args.get("rpm"), sent=sent)
    ok = failed = 0
    started, cpu = time.perf_counter(), time.process_time()
    kwargs: dict[str, Any] = {"max_concurrency": concurrency, "text_layer": args.get("text_layer", "never")}
    for page in read_document(client, args["pdf"], **kwargs):
        ok += page.ok
        failed += not page.ok
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    pages = ok + failed
    return {
        "pages": pages,
        "ok": ok,
        "seconds": seconds,
        "pages_per_s": ok / seconds if seconds else None,
        "cpu_ms_per_page": cpu_s * 1000 / pages if pages else None,
        "bytes_per_page": sent["bytes"] / pages if pages else None,
        "requests": sent["requests"],
        "client_429": sent["429"],
        "pacer_waited_s": client.pacer.stats.waited if getattr(client, "pacer", None) else None,
    }


def _small_pngs(n: int) -> list[bytes]:
    from PIL import Image, ImageDraw

    out = []
    for index in range(n):
        im = Image.new("L", (96, 32), 255)
        ImageDraw.Draw(im).text((4, 10), f"p{index}", fill=0)
        im.putpixel((95, 31), index % 251)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        out.append(buf.getvalue())
    return out


def small(args: dict[str, Any]) -> dict[str, Any]:
    """``ocr_many`` over small PNGs (3 KB), sync or async: images per second and client CPU per image."""
    from qwen_ocr import AsyncQwenOCR, QwenOCR

    images = _small_pngs(int(args["n"]))
    concurrency = int(args["concurrency"])
    base_url = args["base_url"]
    if args["mode"] == "sync":
        with QwenOCR(api_key="bench", base_url=base_url, rpm=None, tpm=None, max_concurrency=concurrency) as client:
            client.ocr_many(images[:concurrency])  # warm: connections, imports
            started, cpu = time.perf_counter(), time.process_time()
            client.ocr_many(images)
            seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    else:

        async def run() -> tuple[float, float]:
            async with AsyncQwenOCR(
                api_key="bench", base_url=base_url, rpm=None, tpm=None, max_concurrency=concurrency
            ) as client:
                await client.ocr_many(images[:concurrency])
                started, cpu = time.perf_counter(), time.process_time()
                await client.ocr_many(images)
                return time.perf_counter() - started, time.process_time() - cpu

        seconds, cpu_s = asyncio.run(run())
    return {"images_per_s": len(images) / seconds, "cpu_ms_per_image": cpu_s * 1000 / len(images)}


def paced(args: dict[str, Any]) -> dict[str, Any]:
    """``ocr_many`` over small PNGs through the paced client (``rpm``): seconds, requests and 429s seen by the
    client. The images cost next to no CPU, so what is measured is the pacing alone."""
    from qwen_ocr import QwenOCR

    images = _small_pngs(int(args["n"]))
    sent = {"requests": 0, "bytes": 0, "429": 0}
    concurrency = int(args["concurrency"])
    with _client(args["base_url"], concurrency=concurrency, rpm=args["rpm"], sent=sent) as client:
        assert isinstance(client, QwenOCR)
        started = time.perf_counter()
        results = client.ocr_many(images, return_exceptions=True)
        seconds = time.perf_counter() - started
    return {
        "images": len(images),
        "ok": sum(not isinstance(r, Exception) for r in results),
        "seconds": seconds,
        "per_s": len(images) / seconds,
        "requests": sent["requests"],
        "client_429": sent["429"],
    }


def sequential(args: dict[str, Any]) -> dict[str, Any]:
    """``ocr()`` of one small PNG after the other: milliseconds per request (the emulator's latency is 0)."""
    from qwen_ocr import QwenOCR

    images = _small_pngs(int(args["n"]) + 1)
    with QwenOCR(api_key="bench", base_url=args["base_url"], rpm=None, tpm=None) as client:
        client.ocr(images[-1])
        started = time.perf_counter()
        for image in images[:-1]:
            client.ocr(image)
        seconds = time.perf_counter() - started
    return {"ms_per_request": seconds * 1000 / int(args["n"])}


def memory(args: dict[str, Any]) -> dict[str, Any]:
    """``ocr_many`` over N small PIL images made by a generator: RSS before, at its peak while running, with the
    results held, and after they are dropped."""
    from PIL import Image

    from qwen_ocr import QwenOCR

    n = int(args["n"])

    def images() -> Iterator[Image.Image]:
        for index in range(n):
            yield Image.new("RGB", (160, 120), (index % 256, 200, 255))

    gc.collect()
    with QwenOCR(api_key="bench", base_url=args["base_url"], rpm=None, tpm=None, max_concurrency=8) as client:
        client.ocr_many(images_small := [Image.new("RGB", (16, 16))] * 8)  # warm: imports, connections
        del images_small
        gc.collect()
        start = _rss_mib()
        started = time.perf_counter()
        with _Sampler() as sampler:
            results = client.ocr_many(images())
        seconds = time.perf_counter() - started
        held = _rss_mib()
        count = len(results)
        del results
        gc.collect()
        after = _rss_mib()
    return {
        "n": count,
        "seconds": seconds,
        "rss_start_mib": start,
        "rss_peak_mib": sampler.peak,
        "rss_held_mib": held,
        "rss_after_mib": after,
    }


def estimate(args: dict[str, Any]) -> dict[str, Any]:
    """Input tokens per page that ``estimate_document`` gives for each PDF (``text_layer="never"``)."""
    from qwen_ocr import estimate_document

    out = {}
    for label, pdf in args["pdfs"].items():
        est = estimate_document(pdf, text_layer="never")
        out[label] = {"pages": est.pages, "input_tokens_per_page": est.input_tokens / est.pages}
    return out


TASKS = {
    "read": read,
    "small": small,
    "paced": paced,
    "sequential": sequential,
    "memory": memory,
    "estimate": estimate,
}


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(TASKS[arguments.pop("task")](arguments)), flush=True)

"""Crash and resume: a job killed mid-way (SIGKILL) and run again with the same cache loses no page and does not
pay again for the pages it had read.

A subprocess reads a 40-page PDF with ``QwenOCR(cache=dir)`` against the emulator of this process (150 ms a page,
4 pages in flight), printing each page as it is yielded; the test kills it once about half the pages are out, then
reads the document again in-process with the same cache directory. Cache entries are written atomically (a
temporary file renamed into place), so the kill leaves whole entries or none.

What is asserted: every page comes back, in order; every page the first run had printed is a cache hit and was
billed exactly once; the re-run sends exactly the pages without an entry; a page is billed twice only when the kill
fell between the service's reply and the cache write (at most the 4 in flight).
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import OCRCache, OCRResult, QwenOCR, open_document, read_document
from qwen_ocr.cache import request_key
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest

PAGES = 40
WINDOW = 4
KILL_AFTER = PAGES // 2
GUARD = 60.0

SCRIPT = """
import sys
from qwen_ocr import QwenOCR, read_document

base_url, pdf, cache = sys.argv[1:4]
with QwenOCR(api_key="k", base_url=base_url, cache=cache, max_concurrency={window}, rpm=None, tpm=None) as client:
    for page in read_document(client, pdf):
        print(page.index, "ok" if page.ok else "error", flush=True)
print("done", flush=True)
"""

FIGURES: dict[str, Any] = {}


@pytest.fixture(scope="module")
def pdf_40(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    pages = []
    for i in range(PAGES):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"folio {i + 1}", fill=0)
        pages.append(im)
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    path = tmp_path_factory.mktemp("pdf40") / "forty.pdf"
    path.write_bytes(buf.getvalue())
    with open_document(path) as doc:
        keys = [image_digest(page.prepare().url) or "" for page in doc]
    assert len(set(keys)) == PAGES
    return path, keys


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_killed_job_resumes_from_the_cache(tmp_path: Path, pdf_40: tuple[Path, list[str]]) -> None:
    pdf, keys = pdf_40
    cache_dir = tmp_path / "cache"
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(window=WINDOW))
    with Emulator(latency=0.15) as emu:
        process = subprocess.Popen(
            [sys.executable, str(script), emu.base_url, str(pdf), str(cache_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        guard = threading.Timer(GUARD, process.kill)  # a hang guard: the job itself takes a few seconds
        guard.start()
        printed: list[int] = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                index, status = line.split()
                assert status == "ok", line
                printed.append(int(index))
                if len(printed) >= KILL_AFTER:
                    os.kill(process.pid, signal.SIGKILL)
                    break
            process.wait(timeout=GUARD)
        finally:
            guard.cancel()
            process.kill()
            if process.stderr is not None:
                stderr = process.stderr.read()
                process.stderr.close()
            if process.stdout is not None:
                process.stdout.close()
        assert process.returncode == -signal.SIGKILL, stderr
        assert printed == list(range(KILL_AFTER))  # in order, and the job was cut short
        billed_before = emu.stats.successes_by_image
        requests_before = emu.stats.requests

        cache = OCRCache(cache_dir)
        cached_at_kill = len(cache)
        assert KILL_AFTER <= cached_at_kill < PAGES
        leftovers = [p.name for p in cache_dir.glob("??/.tmp-*")]

        with QwenOCR(api_key="k", base_url=emu.base_url, cache=cache, max_concurrency=WINDOW) as client:
            client.pacer = None
            started = time.monotonic()
            pages = list(read_document(client, pdf))
            seconds = time.monotonic() - started
        billed = emu.stats.successes_by_image
        resent = emu.stats.requests - requests_before

    assert [page.index for page in pages] == list(range(PAGES))  # no page lost
    assert all(page.ok and isinstance(page.result, OCRResult) for page in pages)
    for index in printed:  # done before the kill: served from the cache, not paid for again
        assert pages[index].result is not None and pages[index].result.metadata.get("cache") == "hit"
        assert billed[keys[index]] == 1
    assert resent == PAGES - cached_at_kill  # exactly the pages without an entry were sent again
    assert cache.hits == cached_at_kill
    assert set(billed) == set(keys)
    twice = [key for key in keys if billed[key] == 2]
    assert max(billed.values()) <= 2
    assert len(twice) <= WINDOW  # only replies that arrived after the last cache write were lost
    assert len(cache) == PAGES
    FIGURES.update(
        pages=PAGES,
        printed_before_kill=len(printed),
        cached_at_kill=cached_at_kill,
        billed_before_kill=sum(billed_before.values()),
        resent=resent,
        billed_twice=len(twice),
        pages_lost=0,
        temp_files_left=len(leftovers),
        rerun_seconds=round(seconds, 2),
    )
    print(f"\n[reliability] crash and resume: {FIGURES}")


def test_a_temporary_file_left_by_a_killed_write_breaks_nothing(tmp_path: Path) -> None:
    # A kill between mkstemp and the rename leaves ".tmp-*.json" next to the entries.
    cache = OCRCache(tmp_path)
    key = request_key("/x", b"{}")
    shard = tmp_path / key[:2]
    shard.mkdir()
    (shard / ".tmp-abc123.json").write_bytes(b'{"text": "half wri')
    assert len(cache) == 0  # not an entry
    assert cache.get(key) is None
    cache.put(key, OCRResult(text="whole"))
    got = cache.get(key)
    assert got is not None and got.text == "whole"
    assert len(cache) == 1
    cache.clear()
    assert not list(shard.iterdir())  # the leftover goes with the entries

"""A 500-page job against the emulator with 20% transient faults of every kind: nothing lost, nothing billed twice.

Faults (``TRANSIENT_FAULTS``): 429 without and with ``Retry-After``, 500, 503, a dropped connection, a read timeout
(the emulator holds the request past the client's timeout), a garbled JSON body, a stream cut mid-way and an error
frame mid-stream. The last two exist only for streamed requests; the non-streamed passes (``ocr_many``, the loaders)
draw from the other seven at the same 20% rate, and a streaming pass draws from all nine.

Each pass asserts: every page comes back exactly once and in order (the reply in slot *i* is the emulator's answer
to image *i*, matched by request id), each page is billed once (``stats.successes_by_image`` is 1 for every image:
faults never count, see the emulator's docstring), every fault cost exactly one more request and nothing else did,
retries are bounded (per image and in all), and the pass finishes well within a generous wall-clock guard.

Sizes: ``ocr_many`` (sync and async) reads 500 images, the streaming pass 150, the loaders (LangChain's
``QwenOCRLoader`` with ``on_error="mark"``, LlamaIndex's ``QwenOCRReader``) a 200-page PDF each: they yield pages in
order, so a page held by a "timeout" fault holds the window behind it for the client's timeout, and 500 pages would
take half a minute per loader. The client retries without waiting (``JOB_POLICY``) and is not paced, so that the job
stays quick; the emulator's latency is 2 ms. Faults are drawn from a seeded RNG in arrival order: the same faults
each run, but which image meets which depends on thread timing; the checks do not depend on it.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import AsyncQwenOCR, OCRResult, QwenOCR, QwenOCRError, open_document
from qwen_ocr.errors import is_retryable
from qwen_ocr.testing import TRANSIENT_FAULTS, Emulator, load_recording
from qwen_ocr.testing._wire import image_digest

from ._support import JOB_POLICY, RETRIES, digest, numbered_png

PAGES = 500
LOADER_PAGES = 200  # the loaders read in page order: a page held by a timeout fault holds the window behind it
FAULT_RATE = 0.2
CONCURRENCY = 16
CLIENT_TIMEOUT = 1.0  # a normal request takes milliseconds; a "timeout" fault holds its request for STALL seconds
STALL = 1.5
WALL_CLOCK_GUARD = 120.0  # seconds per pass: a hang guard, not a benchmark (a pass takes a few seconds)
NON_STREAM_FAULTS = [kind for kind in TRANSIENT_FAULTS if not kind.startswith("stream_")]

PLAIN = load_recording("cnblogs/multimodal-generation-vl-ocr-nosse.response.body.txt")
PLAIN_TEXT: str = PLAIN["output"]["choices"][0]["message"]["content"][0]["text"]

FIGURES: dict[str, Any] = {}
"""What each pass saw (faults by kind, requests, seconds): printed at the end of the module for the README."""


@pytest.fixture(scope="module", autouse=True)
def _report_figures() -> Iterator[None]:
    yield
    for name, figures in FIGURES.items():
        print(f"\n[reliability] {name}: {figures}")


def faulty_emulator(kinds: Sequence[str] = TRANSIENT_FAULTS, seed: int = 2025) -> Emulator:
    return Emulator(latency=0.002, faults=list(kinds), fault_rate=FAULT_RATE, seed=seed, stall=STALL)


def job_client(emu: Emulator) -> QwenOCR:
    client = QwenOCR(
        api_key="k",
        base_url=emu.base_url,
        retry=JOB_POLICY,
        timeout=CLIENT_TIMEOUT,
        max_concurrency=CONCURRENCY,
        rpm=None,
        tpm=None,
    )
    client.pacer = None  # pacing is not under test here
    return client


def check_billing_and_retries(emu: Emulator, expected: Sequence[str], name: str, seconds: float) -> dict[str, Any]:
    """Every image billed once, every fault cost one request and nothing else did, retries bounded."""
    stats = emu.stats
    log = [entry for entry in emu.request_log if entry.method == "POST"]
    faults = sum(stats.faults.values())
    assert stats.successes_by_image == dict.fromkeys(expected, 1), "a page was billed twice, or not at all"
    assert len(log) == stats.requests
    assert stats.requests == len(expected) + faults, "a request was sent that no fault explains"
    per_image = Counter(entry.image for entry in log)
    assert set(per_image) == set(expected)
    assert max(per_image.values()) <= 1 + RETRIES
    assert stats.requests <= len(expected) * (1 + RETRIES)
    # 20% of the requests fail, so about pages / 0.8 requests are sent (binomial: far inside these bounds).
    assert 0.12 < faults / stats.requests < 0.28, stats.faults
    assert stats.abandoned <= stats.faults.get("timeout", 0)  # only a stalled request is ever hung up on
    assert seconds < WALL_CLOCK_GUARD
    figures = {
        "pages": len(expected),
        "requests": stats.requests,
        "faults": dict(sorted(stats.faults.items())),
        "faults_total": faults,
        "pages_lost": 0,
        "seconds": round(seconds, 1),
    }
    FIGURES[name] = figures
    return figures


def image_of(emu: Emulator) -> dict[str, str | None]:
    """Request id -> image key, from the emulator's log."""
    return {entry.request_id: entry.image for entry in emu.request_log if entry.request_id is not None}


# ----------------------------------------------------------------------------------------------------------------
# ocr_many, sync and async


def test_ocr_many_500_pages_with_20_percent_transient_faults() -> None:
    images = [numbered_png(i) for i in range(PAGES)]
    expected = [digest(image) for image in images]
    assert len(set(expected)) == PAGES
    with faulty_emulator(NON_STREAM_FAULTS) as emu, job_client(emu) as client:
        started = time.monotonic()
        results = client.ocr_many(images, return_exceptions=True)
        seconds = time.monotonic() - started
        answered = image_of(emu)
        figures = check_billing_and_retries(emu, expected, "ocr_many (sync, 500 pages)", seconds)
    assert len(results) == PAGES
    failures = [(i, r) for i, r in enumerate(results) if not isinstance(r, OCRResult)]
    assert failures == []
    assert [answered[r.request_id] for r in results if isinstance(r, OCRResult)] == expected  # in order, each once
    assert all(isinstance(r, OCRResult) and r.text == PLAIN_TEXT for r in results)
    assert set(figures["faults"]) == set(NON_STREAM_FAULTS)  # every kind was met (about 18 of each)


def test_async_ocr_many_500_pages_with_20_percent_transient_faults() -> None:
    images = [numbered_png(i) for i in range(PAGES)]
    expected = [digest(image) for image in images]

    async def job(emu: Emulator) -> list[OCRResult | QwenOCRError]:
        async with AsyncQwenOCR(
            api_key="k", base_url=emu.base_url, retry=JOB_POLICY, timeout=CLIENT_TIMEOUT, max_concurrency=CONCURRENCY
        ) as client:
            client.pacer = None
            return await client.ocr_many(images, return_exceptions=True)

    with faulty_emulator(NON_STREAM_FAULTS, seed=7) as emu:
        started = time.monotonic()
        results = asyncio.run(asyncio.wait_for(job(emu), WALL_CLOCK_GUARD))
        seconds = time.monotonic() - started
        answered = image_of(emu)
        figures = check_billing_and_retries(emu, expected, "ocr_many (async, 500 pages)", seconds)
    assert all(isinstance(r, OCRResult) for r in results)
    assert [answered[r.request_id] for r in results if isinstance(r, OCRResult)] == expected
    assert set(figures["faults"]) == set(NON_STREAM_FAULTS)


# ----------------------------------------------------------------------------------------------------------------
# Streaming: every kind, including the two that only a stream can have


def read_stream(client: QwenOCR, image: bytes, attempts: int) -> tuple[str, int]:
    """One page's text by streaming; the whole stream is read again after an in-stream failure (the client retries
    everything before the first chunk itself, but cannot take back text it already gave out)."""
    for attempt in range(1, attempts + 1):
        parts: list[str] = []
        try:
            for chunk in client.stream(image):
                parts.append(chunk.text)
        except QwenOCRError as exc:
            if not is_retryable(exc) or attempt == attempts:
                raise
            continue
        return "".join(parts), attempt
    raise AssertionError("unreachable")


STREAM_PAGES = 150


def test_streaming_pass_with_every_fault_kind() -> None:
    images = [numbered_png(i) for i in range(STREAM_PAGES)]
    expected = [digest(image) for image in images]
    with faulty_emulator(TRANSIENT_FAULTS, seed=11) as emu, job_client(emu) as client:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            outcomes = list(pool.map(lambda image: read_stream(client, image, attempts=4), images))
        seconds = time.monotonic() - started
        stats = emu.stats
        log = [entry for entry in emu.request_log if entry.method == "POST"]
    assert [text for text, _ in outcomes] == [PLAIN_TEXT] * STREAM_PAGES  # whole, in order, no text doubled
    assert stats.successes_by_image == dict.fromkeys(expected, 1)  # a cut or failed stream is not billed
    faults = sum(stats.faults.values())
    assert stats.requests == STREAM_PAGES + faults
    restarts = sum(attempt - 1 for _, attempt in outcomes)
    assert restarts == stats.faults.get("stream_error", 0) + stats.faults.get("stream_cut", 0)
    assert max(Counter(entry.image for entry in log).values()) <= 4 * (1 + RETRIES)
    assert {"stream_error", "stream_cut"} <= set(stats.faults)
    assert seconds < WALL_CLOCK_GUARD
    FIGURES["stream (sync, 150 pages)"] = {
        "pages": STREAM_PAGES,
        "requests": stats.requests,
        "faults": dict(sorted(stats.faults.items())),
        "faults_total": faults,
        "stream_restarts_by_caller": restarts,
        "pages_lost": 0,
        "seconds": round(seconds, 1),
    }


# ----------------------------------------------------------------------------------------------------------------
# The loaders, on one 200-page PDF


@pytest.fixture(scope="module")
def long_pdf(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A PDF of small pages, each with its number drawn on it, and each page's image key as it is sent."""
    pages = []
    for i in range(LOADER_PAGES):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"page {i + 1}", fill=0)
        pages.append(im)
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    path = tmp_path_factory.mktemp("long") / "long.pdf"
    path.write_bytes(buf.getvalue())
    keys = []
    with open_document(path) as doc:
        for page in doc:
            key = image_digest(page.prepare().url)
            assert key is not None
            keys.append(key)
    assert len(set(keys)) == LOADER_PAGES
    return path, keys


def test_langchain_loader_long_pdf_with_faults(long_pdf: tuple[Path, list[str]]) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    path, expected = long_pdf
    with faulty_emulator(NON_STREAM_FAULTS, seed=3) as emu, job_client(emu) as client:
        loader = QwenOCRLoader(str(path), client=client, on_error="mark", text_layer="never")
        started = time.monotonic()
        docs = list(loader.lazy_load())
        seconds = time.monotonic() - started
        answered = image_of(emu)
        check_billing_and_retries(emu, expected, "QwenOCRLoader (200-page PDF)", seconds)
    assert [doc.metadata["page"] for doc in docs] == list(range(LOADER_PAGES))
    assert [doc.metadata.get("error") for doc in docs] == [None] * LOADER_PAGES
    assert [answered[doc.metadata["request_id"]] for doc in docs] == expected
    assert all(doc.page_content == PLAIN_TEXT for doc in docs)


def test_llamaindex_reader_long_pdf_with_faults(long_pdf: tuple[Path, list[str]]) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    path, expected = long_pdf
    with faulty_emulator(NON_STREAM_FAULTS, seed=5) as emu, job_client(emu) as client:
        reader = QwenOCRReader(client=client, on_error="mark", task=None)
        started = time.monotonic()
        docs = reader.load_data(path)
        seconds = time.monotonic() - started
        answered = image_of(emu)
        check_billing_and_retries(emu, expected, "QwenOCRReader (200-page PDF)", seconds)
    assert [doc.metadata["page"] for doc in docs] == list(range(LOADER_PAGES))
    assert all("error" not in doc.metadata for doc in docs)
    assert [answered[doc.metadata["request_id"]] for doc in docs] == expected

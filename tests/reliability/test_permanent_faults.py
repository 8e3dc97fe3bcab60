"""Permanent faults fail fast: one request, the typed error, no retry; in batch and loader modes the other pages
still come back (here with 20% transient faults around them as well).

Kinds (the emulator's ``PERMANENT_FAULTS``): HTTP 400 ``InvalidParameter``, 401 ``InvalidApiKey``, 403
``AccessDenied``, 400 ``DataInspectionFailed``, 400 ``Arrearage``. The LangChain loader raises the errors that
would fail every page alike (a wrong key, no access, an exhausted quota) whatever ``on_error`` says, by design
(``is_fatal``); it marks the others.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import (
    AsyncQwenOCR,
    AuthenticationError,
    BadRequestError,
    BatchOCRError,
    ContentFilteredError,
    OCRResult,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCR,
    QwenOCRError,
    RetryPolicy,
    open_document,
)
from qwen_ocr.testing import PERMANENT_FAULTS, Emulator
from qwen_ocr.testing._wire import image_digest

from ._support import JOB_POLICY, digest, numbered_png

ERRORS: dict[str, type[QwenOCRError]] = {
    "400": BadRequestError,
    "401": AuthenticationError,
    "403": PermissionDeniedError,
    "DataInspectionFailed": ContentFilteredError,
    "Arrearage": QuotaExceededError,
}
SLOW_RETRY = RetryPolicy(max_retries=5, initial_delay=5.0, max_delay=5.0, jitter=0.0)
"""A retry would wait 5 s: a permanent fault must come back long before that."""


def test_every_permanent_kind_is_covered() -> None:
    assert set(ERRORS) == set(PERMANENT_FAULTS)


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


def client_for(emu: Emulator, retry: RetryPolicy = SLOW_RETRY, **kwargs: object) -> QwenOCR:
    client = QwenOCR(api_key="k", base_url=emu.base_url, retry=retry, **kwargs)  # type: ignore[arg-type]
    client.pacer = None
    return client


@pytest.mark.parametrize("kind", list(ERRORS))
def test_one_request_then_the_typed_error(emu: Emulator, kind: str) -> None:
    with client_for(emu) as client:
        for call in (client.ocr, lambda image: list(client.stream(image))):
            emu.inject(kind)
            started = time.monotonic()
            with pytest.raises(QwenOCRError) as info:
                call(numbered_png(1))
            assert type(info.value) is ERRORS[kind]
            assert time.monotonic() - started < 4.0  # no back-off wait (a retry would wait 5 s)
    assert emu.stats.requests == 2  # one per call: never retried
    assert emu.stats.successes == 0


@pytest.mark.parametrize("kind", list(ERRORS))
async def test_one_request_then_the_typed_error_async(emu: Emulator, kind: str) -> None:
    emu.inject(kind)
    async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=SLOW_RETRY) as client:
        client.pacer = None
        with pytest.raises(QwenOCRError) as info:
            await asyncio.wait_for(client.ocr(numbered_png(1)), timeout=4.0)
    assert type(info.value) is ERRORS[kind]
    assert emu.stats.requests == 1


BATCH = 60
BAD = {7: "400", 13: "401", 21: "403", 34: "DataInspectionFailed", 55: "Arrearage"}


def test_ocr_many_returns_the_others_around_permanent_failures() -> None:
    images = [numbered_png(i) for i in range(BATCH)]
    with Emulator(faults=["500", "503", "429", "drop", "garbled"], fault_rate=0.2, seed=9) as emu:
        for index, kind in BAD.items():
            emu.inject_for(images[index], kind)
        with client_for(emu, retry=JOB_POLICY, max_concurrency=8) as client:
            results = client.ocr_many(images, return_exceptions=True)
            for index, kind in BAD.items():  # again, without return_exceptions: raised after all finished
                emu.inject_for(images[index], kind)
            with pytest.raises(BatchOCRError) as info:
                client.ocr_many(images)
        log = [entry for entry in emu.request_log if entry.method == "POST"]
    for index, result in enumerate(results):
        if index in BAD:
            assert type(result) is ERRORS[BAD[index]], (index, result)
        else:
            assert isinstance(result, OCRResult), (index, result)
    assert [i for i, _ in info.value.errors] == sorted(BAD)
    assert sum(isinstance(r, OCRResult) for r in info.value.results) == BATCH - len(BAD)
    per_image = Counter(entry.image for entry in log)
    for index in BAD:  # one request per run for each permanently failing image: never retried
        assert per_image[digest(images[index])] == 2
    assert emu.stats.successes_by_image == {digest(images[i]): 2 for i in range(BATCH) if i not in BAD}


@pytest.fixture(scope="module")
def pdf_20(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    pages = []
    for i in range(20):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"sheet {i + 1}", fill=0)
        pages.append(im)
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    path = tmp_path_factory.mktemp("pdf20") / "twenty.pdf"
    path.write_bytes(buf.getvalue())
    with open_document(path) as doc:
        keys = [image_digest(page.prepare().url) or "" for page in doc]
    return path, keys


MARKED = {3: "400", 11: "DataInspectionFailed"}


def test_langchain_loader_marks_a_bad_page_and_returns_the_others(pdf_20: tuple[Path, list[str]]) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    path, keys = pdf_20
    with Emulator(faults=["500", "429", "drop"], fault_rate=0.2, seed=4) as emu:
        for index, kind in MARKED.items():
            emu.inject_for(keys[index], kind)
        with client_for(emu, retry=JOB_POLICY) as client:
            docs = list(QwenOCRLoader(str(path), client=client, on_error="mark", text_layer="never").lazy_load())
        per_image = Counter(entry.image for entry in emu.request_log if entry.method == "POST")
    assert [doc.metadata["page"] for doc in docs] == list(range(20))
    for index, doc in enumerate(docs):
        if index in MARKED:
            assert doc.page_content == ""
            assert doc.metadata["error_type"] == ERRORS[MARKED[index]].__name__
            assert per_image[keys[index]] == 1
        else:
            assert "error" not in doc.metadata and doc.page_content


@pytest.mark.parametrize("kind", ["401", "403", "Arrearage"])
def test_langchain_loader_raises_what_would_fail_every_page(pdf_20: tuple[Path, list[str]], kind: str) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    path, keys = pdf_20
    with Emulator() as emu:
        emu.inject_for(keys[5], kind)
        with client_for(emu, retry=JOB_POLICY, max_concurrency=4) as client:
            loader = QwenOCRLoader(str(path), client=client, on_error="mark", text_layer="never")
            seen: list[int] = []

            def load() -> None:
                seen.extend(doc.metadata["page"] for doc in loader.lazy_load())

            with pytest.raises(ERRORS[kind]):
                load()
        per_image = Counter(entry.image for entry in emu.request_log if entry.method == "POST")
    assert seen == [0, 1, 2, 3, 4]  # the pages before it came back, in order
    assert per_image[keys[5]] == 1
    assert emu.stats.requests < 20  # the job stopped: at most the window in flight was still sent


def test_llamaindex_reader_marks_every_permanent_failure(pdf_20: tuple[Path, list[str]]) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    path, keys = pdf_20
    bad = {2: "400", 6: "401", 9: "403", 12: "DataInspectionFailed", 17: "Arrearage"}
    docs = []
    with Emulator(faults=["503", "drop"], fault_rate=0.2, seed=8) as emu:
        for index, kind in bad.items():
            emu.inject_for(keys[index], kind)
        # A page's own failure is marked; one that would fail every page (401 first) is raised whatever on_error
        # says, as the LangChain loader does (one policy in every integration).
        with client_for(emu, retry=JOB_POLICY) as client, pytest.raises(ERRORS["401"]):
            docs.extend(QwenOCRReader(client=client, on_error="mark", task=None).lazy_load_data(path))
    assert [doc.metadata["page"] for doc in docs] == list(range(6))
    for index, doc in enumerate(docs):
        if index in bad:
            assert doc.text == ""
            assert doc.metadata["error_type"] == ERRORS[bad[index]].__name__
        else:
            assert "error" not in doc.metadata and doc.text

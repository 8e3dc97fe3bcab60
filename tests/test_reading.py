"""``read_document`` / ``aread_document``: pages in order, bounded concurrency, errors per page, metadata."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr import AsyncQwenOCR, OCRResult, Page, QwenOCR, RateLimitError, Task, prepare_image
from qwen_ocr.reading import PageResult, aread_document, read_document, structured_metadata
from qwen_ocr.results import Table, TableCell, TextLine, Usage
from qwen_ocr.settings import ClientSettings
from tests.conftest import DATA, make_image

CORPUS = DATA / "corpus"
MULTIPAGE = CORPUS / "ocrmypdf" / "multipage.pdf"
FOUR_PAGES = CORPUS / "py-pdf" / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"


class _Recorder:
    """Stands in for ``client.ocr``: answers with the page number it was given, tracking calls in flight."""

    def __init__(self, delay: float = 0.02, fail_on: int | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.calls = 0
        self.active = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _enter(self) -> int:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            return self.calls

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def _answer(self, n: int) -> OCRResult:
        if self.fail_on == n:
            raise RateLimitError("Requests rate limit exceeded", code="Throttling.RateQuota")
        return OCRResult(text=f"call {n}", model="qwen-vl-ocr", task=Task.TEXT_RECOGNITION, usage=Usage(input_tokens=n))

    def sync(self, image: Any, **options: Any) -> OCRResult:
        n = self._enter()
        try:
            time.sleep(self.delay)
            return self._answer(n)
        finally:
            self._leave()

    async def asynchronous(self, image: Any, **options: Any) -> OCRResult:
        n = self._enter()
        try:
            await asyncio.sleep(self.delay)
            return self._answer(n)
        finally:
            self._leave()


def _pages_sync(recorder: _Recorder, source: Path, **kwargs: Any) -> list[PageResult]:
    client = QwenOCR(api_key="k", max_concurrency=3)
    client.ocr = recorder.sync  # type: ignore[method-assign]
    with client:
        return list(read_document(client, source, **kwargs))


async def _pages_async(recorder: _Recorder, source: Path, **kwargs: Any) -> list[PageResult]:
    client = AsyncQwenOCR(api_key="k", max_concurrency=3)
    client.ocr = recorder.asynchronous  # type: ignore[method-assign]
    async with client:
        return [page async for page in aread_document(client, source, **kwargs)]


def test_sync_and_async_give_the_same_pages_in_order() -> None:
    sync = _pages_sync(_Recorder(), MULTIPAGE)
    asyn = asyncio.run(_pages_async(_Recorder(), MULTIPAGE))
    assert [p.index for p in sync] == list(range(sync[0].total_pages))
    assert [(p.index, p.label, p.total_pages, p.ok) for p in sync] == [
        (p.index, p.label, p.total_pages, p.ok) for p in asyn
    ]


@pytest.fixture
def fast_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages prepare instantly, so the window, not rendering, is what limits the requests in flight."""
    prepared = prepare_image(make_image())
    monkeypatch.setattr(Page, "prepare", lambda self: prepared)


@pytest.mark.usefixtures("fast_pages")
@pytest.mark.parametrize("window", [1, 2, 4])
async def test_async_keeps_at_most_the_window_in_flight(window: int) -> None:
    recorder = _Recorder(delay=0.05)
    pages = await _pages_async(recorder, MULTIPAGE, max_concurrency=window)
    assert recorder.calls == len(pages) > window
    assert recorder.peak == window


@pytest.mark.usefixtures("fast_pages")
def test_sync_keeps_at_most_the_window_in_flight() -> None:
    recorder = _Recorder(delay=0.05)
    pages = _pages_sync(recorder, MULTIPAGE, max_concurrency=2)
    assert recorder.calls == len(pages)
    assert recorder.peak == 2


async def test_a_failed_page_keeps_its_error_and_the_others_come_back() -> None:
    pages = await _pages_async(_Recorder(fail_on=2), MULTIPAGE, max_concurrency=1)
    failed = [p for p in pages if not p.ok]
    assert len(failed) == 1 and failed[0].index == 1
    assert isinstance(failed[0].error, RateLimitError)
    meta = failed[0].metadata()
    assert meta["error_type"] == "RateLimitError" and "rate limit" in str(meta["error"])
    assert all(p.ok for p in pages if p is not failed[0])


async def test_text_layer_auto_sends_no_request_for_born_digital_pages() -> None:
    recorder = _Recorder()
    pages = await _pages_async(recorder, FOUR_PAGES, text_layer="auto")
    assert recorder.calls == 0
    assert [p.text_source for p in pages] == ["text_layer"] * 4
    assert all(p.text for p in pages)


async def test_closing_early_cancels_requests_in_flight() -> None:
    recorder = _Recorder(delay=0.5)
    client = AsyncQwenOCR(api_key="k")
    client.ocr = recorder.asynchronous  # type: ignore[method-assign]
    async with client:
        stream = aread_document(client, MULTIPAGE, max_concurrency=4)
        first = await stream.__anext__()
        assert first.index == 0
        await stream.aclose()
    assert recorder.active == 0


async def test_a_document_that_cannot_be_opened_raises_its_typed_error() -> None:
    from qwen_ocr import DocumentError

    client = AsyncQwenOCR(api_key="k")
    with pytest.raises(DocumentError):
        async for _ in aread_document(client, CORPUS / "ocrmypdf" / "invalid.pdf"):
            pass
    await client.aclose()


def test_metadata_is_flat_and_json_safe() -> None:
    result = OCRResult(
        text="x",
        model="qwen-vl-ocr-latest",
        task=Task.ADVANCED_RECOGNITION,
        request_id="req-1",
        usage=Usage(input_tokens=10, output_tokens=3, image_tokens=8),
        image_size=(800, 600),
    )
    meta = PageResult(source="a.pdf", index=2, label="iii", total_pages=9, result=result).metadata()
    assert json.loads(json.dumps(meta)) == meta
    assert all(not isinstance(v, (dict, list)) for v in meta.values())
    assert meta == {
        "source": "a.pdf",
        "page": 2,
        "page_label": "iii",
        "total_pages": 9,
        "text_source": "ocr",
        "task": "advanced_recognition",
        "model": "qwen-vl-ocr-latest",
        "provider": "dashscope",
        "request_id": "req-1",
        "finish_reason": None,
        "truncated": False,
        "input_tokens": 10,
        "output_tokens": 3,
        "image_tokens": 8,
        "total_tokens": 0,
        "page_width": 800,
        "page_height": 600,
    }


def test_structured_metadata_holds_boxes_fields_tables_and_latex() -> None:
    line = TextLine(text="Total", location=(1, 2, 30, 2, 30, 12, 1, 12), rotate_rect=(15.5, 7, 29, 10, 0))
    table = Table(rows=[[TableCell(text="a", header=True)], [TableCell(text="1")]])
    result = OCRResult(
        text="x", lines=[line], fields={"Total": 3, "Items": [{"n": (1, 2)}]}, tables=[table], latex="\\section{A}"
    )
    out = structured_metadata(result)
    assert json.loads(json.dumps(out)) == out
    assert out["lines"] == [{"text": "Total", "bbox": [1, 2, 30, 12], "location": [1, 2, 30, 2, 30, 12, 1, 12]}]
    assert out["fields"] == {"Total": 3, "Items": [{"n": [1, 2]}]}
    assert out["tables_html"] == ["<table><tr><th>a</th></tr><tr><td>1</td></tr></table>"]
    assert out["latex"] == "\\section{A}"
    assert structured_metadata(OCRResult(text="plain")) == {}


def test_client_settings_hide_the_key_and_build_both_clients() -> None:
    settings = ClientSettings(api_key="sk-very-secret", model="qwen-vl-ocr-latest", max_concurrency=3)
    assert "sk-very-secret" not in repr(settings)
    assert "sk-very-secret" not in settings.model_dump_json()
    assert "api_key" not in settings.model_dump()
    with settings.sync_client() as client:
        assert client.model == "qwen-vl-ocr-latest" and client.max_concurrency == 3
        assert "sk-very-secret" not in repr(client)
    aclient = settings.async_client()
    assert aclient.model == "qwen-vl-ocr-latest"
    asyncio.run(aclient.aclose())


def test_client_holder_uses_the_given_client_or_builds_one() -> None:
    from qwen_ocr.settings import ClientHolder

    given = QwenOCR(api_key="sk-given", model="qwen-vl-ocr-latest")
    holder = ClientHolder(client=given)
    assert holder.get_client() is given
    assert holder.effective_model == "qwen-vl-ocr-latest"
    assert "client" not in holder.model_dump()

    async def twin() -> AsyncQwenOCR:
        return holder.get_async_client()

    made = asyncio.run(twin())
    assert made.model == "qwen-vl-ocr-latest" and made.api_key is not None
    assert made.api_key.get_secret_value() == "sk-given"
    other = asyncio.run(twin())
    assert other is not made  # a new event loop gets its own async client

    built = ClientHolder(api_key="sk-x", max_concurrency=2)
    assert built.get_client() is built.get_client()
    assert built.get_client().max_concurrency == 2


def test_the_local_provider_reads_pdf_pages_with_boxes_in_points() -> None:
    with QwenOCR(provider="local") as client:
        (page,) = read_document(client, MULTIPAGE, pages="1")
    assert page.ok and "Chapter" in page.text
    assert page.result is not None and page.result.image_size == (384, 471)  # the page in PDF points
    x0, y0, x1, y1 = page.result.lines[0].bbox
    assert 0 <= x0 < x1 <= 384 and 0 <= y0 < y1 <= 471

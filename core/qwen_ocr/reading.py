"""Reading whole documents: every selected page, in order, a few in flight at once, nothing lost on a bad page.

This is what the CLI, the LangChain loader and the LlamaIndex reader stand on. A page whose text layer is good
(``text_layer="auto"``) costs no request; a page that fails carries its typed error instead of ending the job.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.reading import read_document

    with QwenOCR() as client:
        for page in read_document(client, "scan.pdf", pages="1-5", task="text_recognition"):
            print(page.page_label, page.text_source, page.text if page.ok else page.error)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncGenerator, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from .errors import QwenOCRError
from .page_metadata import structured_metadata
from .results import OCRResult

if TYPE_CHECKING:
    from ._async_client import AsyncQwenOCR
    from ._client import QwenOCR
    from .documents import DocumentSource, Page, PageSpec, TextLayerMode
    from .imaging import PreparedImage
    from .rendering import ContentFormat

__all__ = ["JSONValue", "PageResult", "aread_document", "read_document", "structured_metadata"]

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
"""What a metadata value may be: JSON types only, so vector stores and ``json.dumps`` accept it."""


@dataclass
class PageResult:
    """The outcome of one page.

    Attributes:
        source: the document's name (its path, or ``"<bytes>"``).
        index: 0-based page index in the file.
        label: the page label (``"iv"``) or number (``"3"``) as the document shows it.
        total_pages: pages in the whole file.
        result: the reading; ``None`` if the page failed.
        error: the page's typed error; ``None`` if it succeeded.
        text_source: ``"ocr"`` or ``"text_layer"`` (the PDF's own text, no request made).
    """

    source: str
    index: int
    label: str
    total_pages: int
    result: OCRResult | None = None
    error: QwenOCRError | None = None
    text_source: Literal["ocr", "text_layer"] = "ocr"

    @property
    def ok(self) -> bool:
        """Whether the page was read."""
        return self.error is None and self.result is not None

    @property
    def text(self) -> str:
        """The page's text, or ``""`` when it failed."""
        return self.result.text if self.result is not None else ""

    @property
    def page_label(self) -> str:
        """Alias of :attr:`label`."""
        return self.label

    def metadata(self, *, content_format: ContentFormat = "markdown") -> dict[str, JSONValue]:
        """The page's metadata: one key set for every integration, JSON-safe (see :mod:`qwen_ocr.page_metadata`).

        Keys: ``source``, ``page`` (0-based), ``page_label``, ``total_pages``, ``text_source``, then ``task``,
        ``model``, ``provider``, ``request_id``, ``finish_reason``, ``truncated``, ``input_tokens``,
        ``output_tokens``, ``image_tokens``, ``total_tokens``, ``page_width``/``page_height`` (the frame the boxes
        are in: the image's pixels, or for a PDF page its size in PDF points), ``cache`` (``"hit"``, only when the
        reading came from the cache); the task's structure where it has one (:func:`structured_metadata`:
        ``lines``, ``fields``, ``tables_html``, ``tables_oversized``, ``tables_truncated``, ``latex``, ``formulas``;
        ``latex`` is left out when ``content_format="raw"``: the text is that LaTeX); and for a failed page
        ``error`` (the message), ``error_type`` (the class name) and ``error_code``.

        >>> PageResult(source="a.pdf", index=0, label="1", total_pages=2).metadata()["page"]
        0
        """
        from .page_metadata import page_metadata

        return page_metadata(self, content_format=content_format)


def read_document(
    client: QwenOCR,
    source: DocumentSource,
    *,
    pages: PageSpec = None,
    password: str | None = None,
    text_layer: TextLayerMode = "never",
    max_concurrency: int | None = None,
    **options: Any,
) -> Generator[PageResult, None, None]:
    """Read the selected pages of a PDF, multi-page TIFF or image, yielding them in page order.

    Up to ``max_concurrency`` pages are in flight while earlier ones are yielded; pages are rendered one at a time
    at the model's pixel budget, so memory does not grow with the page count.

    Args:
        client: the client that sends the pages.
        source: a path, bytes or a binary file object.
        pages: ``"1-3,7"`` and the like (1-based); all pages by default.
        password: for an encrypted PDF.
        text_layer: ``"auto"`` uses a page's own text where it is good, ``"only"`` never sends a page,
            ``"never"`` (default here) OCRs every page.
        max_concurrency: pages in flight (default: the client's).
        **options: ``ocr()`` options (task, schema, model, ...).

    Raises:
        QwenOCRError: when the document itself cannot be opened (encrypted, corrupt, not a document). Errors of a
            single page are reported in its :class:`PageResult` instead.
    """
    from .documents import open_document

    model = options.get("model") or client.model
    window = max(1, max_concurrency or client.max_concurrency)
    with (
        open_document(
            source,
            password=password,
            pages=pages,
            model=model,
            min_pixels=options.get("min_pixels"),
            max_pixels=options.get("max_pixels"),
        ) as doc,
        ThreadPoolExecutor(max_workers=window, thread_name_prefix="qwen-ocr-page") as pool,
        ThreadPoolExecutor(max_workers=_preparers(window), thread_name_prefix="qwen-ocr-render") as renderers,
    ):
        name, total = doc.name, doc.page_count

        def read(page: Page) -> tuple[Literal["ocr", "text_layer"], OCRResult]:
            # Render and encode on a few dedicated threads (one per core: the big page buffers stay in their few
            # allocator arenas), while the request threads wait on the network.
            prepared = renderers.submit(_prepare_or_text, page, text_layer).result()
            if isinstance(prepared, str):
                return "text_layer", _text_layer_result(prepared)
            return "ocr", client.ocr(prepared, **options)

        in_flight: deque[tuple[PageResult, Future[tuple[Literal["ocr", "text_layer"], OCRResult]]]] = deque()
        try:
            for page in doc:
                outcome = PageResult(source=name, index=page.index, label=page.label, total_pages=total)
                in_flight.append((outcome, pool.submit(read, page)))
                while len(in_flight) > window or (in_flight and in_flight[0][1].done()):
                    yield _finish(*in_flight.popleft())
            while in_flight:
                yield _finish(*in_flight.popleft())
        finally:  # closed early: pages not started yet are not read
            for _, pending in in_flight:
                pending.cancel()


async def aread_document(
    client: AsyncQwenOCR,
    source: DocumentSource,
    *,
    pages: PageSpec = None,
    password: str | None = None,
    text_layer: TextLayerMode = "never",
    max_concurrency: int | None = None,
    **options: Any,
) -> AsyncGenerator[PageResult, None]:
    """The async twin of :func:`read_document`: the same pages, in the same order, with the same errors.

    Opening, rendering and encoding run in worker threads one page at a time while up to ``max_concurrency``
    requests are awaited on the event loop. Closing the iterator early (``break``, cancellation) cancels the
    requests still in flight.

    Example::

        async with AsyncQwenOCR() as client:
            async for page in aread_document(client, "scan.pdf", max_concurrency=8):
                print(page.page_label, page.text)
    """
    from .documents import open_document

    model = options.get("model") or client.model
    window = max(1, max_concurrency or client.max_concurrency)
    doc = await asyncio.to_thread(
        open_document,
        source,
        password=password,
        pages=pages,
        model=model,
        min_pixels=options.get("min_pixels"),
        max_pixels=options.get("max_pixels"),
    )
    renderers = ThreadPoolExecutor(max_workers=_preparers(window), thread_name_prefix="qwen-ocr-render")
    loop = asyncio.get_running_loop()

    async def read(page: Page) -> tuple[Literal["ocr", "text_layer"], OCRResult]:
        prepared = await loop.run_in_executor(renderers, _prepare_or_text, page, text_layer)
        if isinstance(prepared, str):
            return "text_layer", _text_layer_result(prepared)
        return "ocr", await client.ocr(prepared, **options)

    in_flight: deque[tuple[PageResult, asyncio.Task[tuple[Literal["ocr", "text_layer"], OCRResult]]]] = deque()
    try:
        name, total = doc.name, doc.page_count
        page_iter = iter(doc)
        while True:
            page = await asyncio.to_thread(next, page_iter, None)
            if page is None:
                break
            while len(in_flight) >= window:
                yield await _afinish(*in_flight.popleft())
            outcome = PageResult(source=name, index=page.index, label=page.label, total_pages=total)
            in_flight.append((outcome, asyncio.ensure_future(read(page))))
            while in_flight and in_flight[0][1].done():
                yield await _afinish(*in_flight.popleft())
        while in_flight:
            yield await _afinish(*in_flight.popleft())
    finally:
        for _, pending in in_flight:
            if not pending.done():
                pending.cancel()
        for _, pending in in_flight:
            with contextlib.suppress(BaseException):
                await pending
        renderers.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(doc.close)


def _prepare_or_text(page: Page, text_layer: TextLayerMode) -> PreparedImage | str:
    """The page's own text when it is good enough for ``text_layer``, else the image to send."""
    if not page.needs_ocr(text_layer):
        return page.text_layer()
    return page.prepare()


def _preparers(window: int) -> int:
    """Pages rendered and encoded at once: one per core (memory stays a few pages), never more than the window."""
    return max(1, min(window, os.cpu_count() or 1, 4))


def _text_layer_result(text: str) -> OCRResult:
    return OCRResult(text=text, raw_text=text, model="", provider="text_layer")


async def _afinish(
    outcome: PageResult, task: asyncio.Task[tuple[Literal["ocr", "text_layer"], OCRResult]]
) -> PageResult:
    try:
        outcome.text_source, outcome.result = await task
    except QwenOCRError as exc:
        outcome.error = exc
    return outcome


def _finish(outcome: PageResult, future: Future[tuple[Literal["ocr", "text_layer"], OCRResult]]) -> PageResult:
    try:
        outcome.text_source, outcome.result = future.result()
    except QwenOCRError as exc:
        outcome.error = exc
    return outcome

"""Reading whole documents: every selected page, in order, a few in flight at once, nothing lost on a bad page.

One file at a time; :func:`qwen_ocr.read_documents` reads many through it, with one window of pages across files
(the engine of the CLI, the LangChain loader and the LlamaIndex reader). A page whose text layer is good
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
import queue
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as futures_wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypeAlias, TypeVar

from .errors import QwenOCRError
from .page_metadata import structured_metadata
from .results import OCRResult
from .retry import cancel_scope, raise_if_cancelled

if TYPE_CHECKING:
    from ._async_client import AsyncQwenOCR
    from ._client import QwenOCR
    from .documents import Document, DocumentSource, Page, PageSpec, TextLayerMode
    from .imaging import PreparedImage
    from .rendering import ContentFormat

__all__ = ["JSONValue", "PageResult", "aread_document", "read_document", "structured_metadata"]

_T = TypeVar("_T")

_Read: TypeAlias = 'tuple[Literal["ocr", "text_layer"], OCRResult]'
"""A page's reading: where its text comes from, and the result."""

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
        file_index: which file of a :func:`qwen_ocr.read_documents` reading the page is of (0-based, in the order
            read); ``0`` for :func:`read_document`. Pages of one file are consecutive, so a change of ``file_index``
            is a file boundary.
        file_failed: the file itself could not be read (not found, corrupt, not a document, a failed download, a
            pattern that matches nothing): this result stands for the whole file, with its ``error``, ``index``
            ``0``, ``label`` ``""`` and ``total_pages`` ``0`` (or the pages known when it failed later).
    """

    source: str
    index: int
    label: str
    total_pages: int
    result: OCRResult | None = None
    error: QwenOCRError | None = None
    text_source: Literal["ocr", "text_layer"] = "ocr"
    file_index: int = 0
    file_failed: bool = False

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
    cancel: threading.Event | None = None,
    **options: Any,
) -> Generator[PageResult, None, None]:
    """Read the selected pages of a PDF, multi-page TIFF or image, yielding them in page order.

    Up to ``max_concurrency`` pages are in flight while earlier ones are yielded; pages are rendered one at a time
    at the pixel budget (``resolution=``, :mod:`qwen_ocr.budget`), so memory does not grow with the page count.

    Closing the generator early (``break``, ``close()``, an exception in the loop, Ctrl-C) stops at once: no
    further page is started, no failed request is retried, and the requests already on the wire are abandoned
    rather than waited for (a sync request cannot be interrupted; it ends on its own, at its answer or the
    client's ``timeout``, on a daemon thread, and its result is dropped).

    Args:
        client: the client that sends the pages.
        source: a path, bytes or a binary file object.
        pages: ``"1-3,7"`` and the like (1-based); all pages by default.
        password: for an encrypted PDF.
        text_layer: ``"auto"`` uses a page's own text where it is good, ``"only"`` never sends a page,
            ``"never"`` (default here) OCRs every page.
        max_concurrency: pages in flight (default: the client's).
        cancel: an event another thread may set to stop the reading as closing it would: the generator then
            ends (without the pages still in flight) within a few hundredths of a second, even while it waits
            for a page.
        **options: ``ocr()`` options (task, schema, model, ...). ``resolution`` (``"standard"``, ``"high"``,
            ``"max"``) or ``max_pixels`` set the budget the pages are rendered at and their requests state.

    Raises:
        QwenOCRError: when the document itself cannot be opened (encrypted, corrupt, not a document). Errors of a
            single page are reported in its :class:`PageResult` instead.
    """
    doc, window = _open(client, source, pages, password, max_concurrency, options)
    halt = threading.Event()  # set when the reading ends, however it ends: the page threads stop at once
    with doc, ThreadPoolExecutor(max_workers=_preparers(window), thread_name_prefix="qwen-ocr-render") as renderers:
        name, total = doc.name, doc.page_count
        pool = _PagePool(window)

        def read(page: Page) -> _Read:
            # Render and encode on a few dedicated threads (one per core: the big page buffers stay in their few
            # allocator arenas), while the request threads wait on the network.
            with cancel_scope(halt):
                raise_if_cancelled()
                prepared = renderers.submit(_prepare_or_text, page, text_layer).result()
                if isinstance(prepared, str):
                    return "text_layer", _text_layer_result(prepared)
                return "ocr", client.ocr(prepared, **options)

        in_flight: deque[tuple[PageResult, Future[_Read]]] = deque()
        try:
            for page in doc:
                if cancel is not None and cancel.is_set():
                    return
                outcome = PageResult(source=name, index=page.index, label=page.label, total_pages=total)
                in_flight.append((outcome, pool.submit(read, page)))
                while len(in_flight) > window or (in_flight and in_flight[0][1].done()):
                    if not _wait(in_flight[0][1], cancel):
                        return
                    yield _pop(in_flight)
            while in_flight:
                if not _wait(in_flight[0][1], cancel):
                    return
                yield _pop(in_flight)
        finally:  # closed early: no page is started or retried, the requests in flight are not waited for
            halt.set()
            for _, pending in in_flight:
                pending.cancel()
            pool.shutdown()
            # Leaving the block waits for a render in progress (the document must outlive it), never a request.
            renderers.shutdown(wait=False, cancel_futures=True)


def _wait(future: Future[Any], cancel: threading.Event | None) -> bool:
    """Wait for ``future``; ``False`` as soon as ``cancel`` is set instead."""
    if cancel is None:
        futures_wait([future])
        return True
    while not futures_wait([future], timeout=_POLL).done:
        if cancel.is_set():
            return False
    return not cancel.is_set()


_POLL = 0.05
"""Seconds between two looks at a ``cancel`` event while waiting."""


class _PagePool:
    """The page workers of :func:`read_document`: at most ``workers`` daemon threads taking pages in order.

    Unlike a ``ThreadPoolExecutor``, closing it does not wait for the pages being read, and its threads do not hold
    up the interpreter's exit: a page whose request is on the wire finishes on its own (its result unused) while
    the pages not started are cancelled. The page function itself stops at the reading's ``halt`` event (its
    :func:`~qwen_ocr.retry.cancel_scope`).
    """

    def __init__(self, workers: int) -> None:
        self._workers = workers
        self._queue: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]] | None] = (
            queue.SimpleQueue()
        )
        self._threads: list[threading.Thread] = []
        self._idle = threading.Semaphore(0)  # one count per worker waiting for a page
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Read a page on a worker (an idle one, else a new one while there are fewer than ``workers``)."""
        future: Future[_T] = Future()
        self._queue.put((future, fn, args))
        if self._idle.acquire(blocking=False):
            return future
        with self._lock:
            if len(self._threads) >= self._workers:
                return future
            thread = threading.Thread(target=self._work, name="qwen-ocr-page", daemon=True)
            self._threads.append(thread)
        thread.start()
        return future

    def _work(self) -> None:
        while (item := self._queue.get()) is not None:
            _run(*item)
            item = None  # nothing of the page is kept while idle
            self._idle.release()

    def shutdown(self) -> None:
        """Cancel the pages not started and let every worker end after its current page; does not wait."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                item[0].cancel()
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._queue.put(None)


def _run(future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    try:
        result = fn(*args)
    except BaseException as exc:  # handed to whoever waits for the page (if anyone still does)
        future.set_exception(exc)
    else:
        future.set_result(result)


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
    doc, window = await asyncio.to_thread(_open, client, source, pages, password, max_concurrency, options)
    renderers = ThreadPoolExecutor(max_workers=_preparers(window), thread_name_prefix="qwen-ocr-render")
    loop = asyncio.get_running_loop()

    async def read(page: Page) -> _Read:
        prepared = await loop.run_in_executor(renderers, _prepare_or_text, page, text_layer)
        if isinstance(prepared, str):
            return "text_layer", _text_layer_result(prepared)
        return "ocr", await client.ocr(prepared, **options)

    in_flight: deque[tuple[PageResult, asyncio.Task[_Read]]] = deque()
    try:
        name, total = doc.name, doc.page_count
        page_iter = iter(doc)
        while True:
            page = await asyncio.to_thread(next, page_iter, None)
            if page is None:
                break
            while len(in_flight) >= window:
                yield await _next_done(in_flight)
            outcome = PageResult(source=name, index=page.index, label=page.label, total_pages=total)
            in_flight.append((outcome, asyncio.ensure_future(read(page))))
            while in_flight and in_flight[0][1].done():
                yield await _next_done(in_flight)
        while in_flight:
            yield await _next_done(in_flight)
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


def _open(
    client: QwenOCR | AsyncQwenOCR,
    source: DocumentSource,
    pages: PageSpec,
    password: str | None,
    max_concurrency: int | None,
    options: dict[str, Any],
) -> tuple[Document, int]:
    """The document, opened at the pixel budget of the model the pages go to, and the window of pages in flight."""
    from .documents import open_document

    doc = open_document(
        source,
        password=password,
        pages=pages,
        model=options.get("model") or client.model,
        min_pixels=options.get("min_pixels"),
        max_pixels=options.get("max_pixels"),
        resolution=options.get("resolution"),
    )
    return doc, max(1, max_concurrency or client.max_concurrency)


def _pop(in_flight: deque[tuple[PageResult, Future[_Read]]]) -> PageResult:
    """The first page in flight, read."""
    outcome, future = in_flight.popleft()
    return _settle(outcome, future.result)


async def _next_done(in_flight: deque[tuple[PageResult, asyncio.Task[_Read]]]) -> PageResult:
    """The first page in flight, once read (it stays in ``in_flight`` while awaited, to be cancelled with the rest)."""
    await asyncio.wait([in_flight[0][1]])
    outcome, task = in_flight.popleft()
    return _settle(outcome, task.result)


def _settle(outcome: PageResult, read: Callable[[], _Read]) -> PageResult:
    """The page's result with its reading (``read()``: its text source and result, or its error)."""
    try:
        outcome.text_source, outcome.result = read()
    except QwenOCRError as exc:
        outcome.error = exc
    return outcome

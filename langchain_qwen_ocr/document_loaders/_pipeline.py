"""What the loader and the parser share: their options, checked once, and reading files into Documents.

A file is read with :func:`qwen_ocr.read_document` (sync) or :func:`qwen_ocr.aread_document` (async): its pages in
order, a window of them in flight, each page's failure typed in its ``PageResult``. :class:`Assembler` turns the
page results into Documents for the mode and applies ``on_error``; :class:`Reader` opens sources (downloading
URLs), reports files that cannot be read, and reads many files with one window of pages in flight across them
(:meth:`Reader.read_many`, :meth:`Reader.aread_many`).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from langchain_core.documents import Document

from qwen_ocr.budget import check_resolution
from qwen_ocr.documents import PageSelectionError, check_text_layer_mode, open_document, parse_pages
from qwen_ocr.errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCRError,
)
from qwen_ocr.reading import PageResult, aread_document, read_document
from qwen_ocr.rendering import check_content_format
from qwen_ocr.settings import ClientHolder
from qwen_ocr.tasks import Task, resolve_task

from .documents import (
    DEFAULT_PAGE_SEPARATOR,
    ContentFormat,
    SingleDocumentBuilder,
    element_documents,
    error_document,
    page_document,
)
from .sources import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    SourceItem,
    adownload,
    download,
)

if TYPE_CHECKING:
    import httpx

    from qwen_ocr import AsyncQwenOCR, QwenOCR
    from qwen_ocr.documents import PageSpec, TextLayerMode

__all__ = [
    "MODES",
    "ON_ERROR",
    "Assembler",
    "Downloads",
    "Mode",
    "OnError",
    "Progress",
    "ReadSettings",
    "Reader",
    "build_holder",
    "is_fatal",
]

logger = logging.getLogger("langchain_qwen_ocr")

Mode = Literal["page", "single", "elements"]
OnError = Literal["raise", "skip", "mark"]
MODES: tuple[str, ...] = ("page", "single", "elements")
ON_ERROR: tuple[str, ...] = ("raise", "skip", "mark")

_OCR_OPTIONS = frozenset({"min_pixels", "max_pixels", "resolution", "enable_rotate", "max_tokens", "temperature"})
_PLAIN_TASKS = (None, Task.TEXT_RECOGNITION, Task.MULTI_LAN)


def is_fatal(error: QwenOCRError) -> bool:
    """Whether ``error`` would fail every page alike (a missing or wrong key, no access to the model, an exhausted
    quota, a bad option): raised whatever ``on_error`` says, rather than marking every page of every file."""
    if isinstance(error, PageSelectionError):  # pages= does not fit this file: the file's own problem
        return False
    return isinstance(
        error, (AuthenticationError, PermissionDeniedError, NotFoundError, QuotaExceededError, InvalidArgumentError)
    )


@dataclass(frozen=True)
class ReadSettings:
    """The reading options of a loader or parser, checked (see :class:`~.loader.QwenOCRLoader` for each)."""

    mode: Mode = "page"
    on_error: OnError = "raise"
    pages: PageSpec = None
    password: str | None = field(default=None, repr=False)
    text_layer: TextLayerMode = "auto"
    max_concurrency: int | None = None
    content_format: ContentFormat = "markdown"
    page_separator: str = DEFAULT_PAGE_SEPARATOR
    show_progress: bool = False
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    allow_private_urls: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        mode: str,
        on_error: str,
        task: Task | str | None,
        schema: Any,
        prompt: str | None,
        model: str | None,
        pages: PageSpec,
        password: str | None,
        text_layer: str | None,
        max_concurrency: int | None,
        content_format: str,
        page_separator: str,
        show_progress: bool,
        ocr_options: Mapping[str, Any] | None,
        max_download_bytes: int,
        download_timeout: float,
        allow_private_urls: bool = False,
    ) -> ReadSettings:
        """Check every option; raise :class:`~qwen_ocr.errors.InvalidArgumentError` naming the wrong one."""
        if mode not in MODES:
            raise InvalidArgumentError(f"mode={mode!r}; use one of {', '.join(map(repr, MODES))}.")
        if on_error not in ON_ERROR:
            raise InvalidArgumentError(f"on_error={on_error!r}; use one of {', '.join(map(repr, ON_ERROR))}.")
        check_content_format(content_format)
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise InvalidArgumentError(f"max_concurrency={max_concurrency!r} must be a whole number of at least 1.")
        if not isinstance(max_download_bytes, int) or max_download_bytes < 1:
            raise InvalidArgumentError(f"max_download_bytes={max_download_bytes!r} must be a positive number.")
        if not download_timeout > 0:
            raise InvalidArgumentError(f"download_timeout={download_timeout!r} must be a positive number of seconds.")
        extra = dict(ocr_options or {})
        unknown = sorted(set(extra) - _OCR_OPTIONS)
        if unknown:
            raise InvalidArgumentError(
                f"ocr_options has {', '.join(map(repr, unknown))}; it takes {', '.join(sorted(_OCR_OPTIONS))} "
                "(task, schema, prompt and model are arguments of their own)."
            )
        check_resolution(extra.get("resolution"))  # a wrong level fails here, not at the first page
        coerced = resolve_task(task, schema, prompt)
        if show_progress:
            _tqdm()  # fail now, not after the first page
        options: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
        if coerced is not None:
            options["task"] = coerced
        if schema is not None:
            options["schema"] = schema
        if prompt is not None:
            options["prompt"] = prompt
        if model is not None:
            options["model"] = model
        if text_layer is None:
            # A page's own text has no boxes, fields or tables: use it only where plain text was asked for.
            plain = coerced in _PLAIN_TASKS and prompt is None
            resolved: TextLayerMode = "auto" if plain else "never"
        else:
            resolved = check_text_layer_mode(text_layer)
        return cls(
            mode=mode,  # type: ignore[arg-type]
            on_error=on_error,  # type: ignore[arg-type]
            pages=pages,
            password=password,
            text_layer=resolved,
            max_concurrency=max_concurrency,
            content_format=content_format,  # type: ignore[arg-type]
            page_separator=page_separator,
            show_progress=show_progress,
            max_download_bytes=max_download_bytes,
            download_timeout=float(download_timeout),
            allow_private_urls=bool(allow_private_urls),
            options=options,
        )

    @property
    def task(self) -> Task | None:
        """The task asked for (``None``: plain text)."""
        task = self.options.get("task")
        return task if isinstance(task, Task) else None

    def describe(self) -> str:
        """The options for a ``repr``: no password, no key."""
        parts = [f"mode={self.mode!r}"]
        if self.task is not None:
            parts.append(f"task={self.task.value!r}")
        if self.pages is not None:
            parts.append(f"pages={self.pages!r}")
        if self.password is not None:
            parts.append("password='***'")
        parts.append(f"text_layer={self.text_layer!r}")
        parts.append(f"on_error={self.on_error!r}")
        if self.max_concurrency is not None:
            parts.append(f"max_concurrency={self.max_concurrency}")
        if self.allow_private_urls:
            parts.append("allow_private_urls=True")
        return ", ".join(parts)


def build_holder(
    *,
    client: QwenOCR | None,
    aclient: AsyncQwenOCR | None,
    api_key: Any,
    base_url: str | None,
    region: str | None,
    workspace: str | None,
    model: str | None,
    protocol: str | None,
    provider: str,
    timeout: float | None,
    max_retries: int | None,
    max_concurrency: int | None,
) -> ClientHolder:
    """The clients: the ones given, or ones built from these settings (the same names as ``QwenOCR``'s)."""
    settings: dict[str, Any] = {
        "client": client,
        "aclient": aclient,
        "api_key": api_key,
        "base_url": base_url,
        "region": region,
        "workspace": workspace,
        "protocol": protocol,
        "provider": provider,
        "timeout": timeout,
        "max_retries": max_retries,
    }
    if model is not None:
        settings["model"] = model
    if max_concurrency is not None:
        settings["max_concurrency"] = max_concurrency
    try:
        return ClientHolder(**settings)
    except ValueError as exc:  # pydantic's ValidationError: which setting and what it takes, never the value given
        problems = [
            f"{err['loc'][0]}: {err.get('msg', 'invalid')}" for err in getattr(exc, "errors", list)() if err.get("loc")
        ]
        raise InvalidArgumentError(f"invalid client settings: {'; '.join(problems) or 'see the arguments'}.") from None


def _tqdm() -> Any:
    try:
        module = importlib.import_module("tqdm.auto")
    except ImportError:
        raise ImportError("show_progress=True needs tqdm: pip install tqdm") from None
    return module.tqdm


class Progress:
    """A tqdm bar counting pages (its total grows as each file's selected pages become known); thread-safe."""

    def __init__(self, enabled: bool, pages: PageSpec) -> None:
        self._pages = pages
        self._bar: Any = _tqdm()(total=0, unit="page", desc="Qwen-OCR") if enabled else None
        self._lock = threading.Lock()

    def file(self, label: str, total_pages: int) -> None:
        """A file's first page is in: add its selected pages to the total."""
        if self._bar is None:
            return
        try:
            selected = len(parse_pages(self._pages, total_pages))
        except QwenOCRError:
            selected = 1
        with self._lock:
            self._bar.total = (self._bar.total or 0) + selected
            self._bar.set_postfix_str(label, refresh=False)

    def page(self) -> None:
        """One page done."""
        if self._bar is not None:
            with self._lock:
                self._bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        with self._lock:
            if self._bar is not None:
                self._bar.close()
                self._bar = None


class Assembler:
    """Turns the page results of one file into Documents for the mode, applying ``on_error``."""

    def __init__(self, source: str, settings: ReadSettings) -> None:
        self.source = source
        self.settings = settings
        self._single = (
            SingleDocumentBuilder(source, separator=settings.page_separator, content_format=settings.content_format)
            if settings.mode == "single"
            else None
        )

    def add(self, page: PageResult) -> list[Document]:
        """The Documents of this page (none yet in single mode); raises the page's error where asked to."""
        settings = self.settings
        if not page.ok:
            error = page.error or QwenOCRError(f"page {page.label} of {self.source} gave no result.")
            if settings.on_error == "raise" or is_fatal(error):
                raise error
            if settings.on_error == "skip":
                logger.warning("skipped page %s of %s: %s", page.label, self.source, error)
                return []
            if self._single is not None:
                self._single.add(page)
                return []
            return [error_document(self.source, error, page=page)]
        if self._single is not None:
            self._single.add(page)
            return []
        if settings.mode == "elements":
            return element_documents(page, self.source)
        return [page_document(page, self.source, content_format=settings.content_format)]

    def finish(self) -> list[Document]:
        """What is left at the end of the file: its single-mode Document."""
        if self._single is not None and not self._single.empty:
            return [self._single.build()]
        return []

    def file_failed(self, error: QwenOCRError) -> list[Document]:
        """The file (not one page) could not be read: raise, skip or mark it."""
        if self.settings.on_error == "raise" or is_fatal(error):
            raise error
        done = self.finish()
        if self.settings.on_error == "skip":
            logger.warning("skipped %s: %s", self.source, error)
            return done
        return [*done, error_document(self.source, error)]


class Reader:
    """Reads sources into Documents with one client: the engine of the loader and the parser.

    :meth:`read` / :meth:`aread` read one source. :meth:`read_many` / :meth:`aread_many` read many in order with one
    window of pages in flight across files: while a file's last pages are read, the next files are already being
    read, so a directory of single images goes as fast as one long PDF. Each file being read holds as many of the
    ``max_concurrency`` slots as it has pages (at most all of them) until its Documents have been consumed, so the
    pages in flight, and the memory they take, stay bounded whatever the files.
    """

    def __init__(self, holder: ClientHolder, settings: ReadSettings) -> None:
        self.holder = holder
        self.settings = settings

    def _read_kwargs(self, settings: ReadSettings, window: int | None) -> dict[str, Any]:
        return {
            "pages": settings.pages,
            "password": settings.password,
            "text_layer": settings.text_layer,
            "max_concurrency": window or settings.max_concurrency,
            **settings.options,
        }

    # -- one source -----------------------------------------------------------------------------------------------

    def read(
        self,
        item: SourceItem,
        *,
        client: QwenOCR,
        progress: Progress,
        downloads: Downloads,
        settings: ReadSettings | None = None,
        window: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[Document]:
        """The Documents of one source, in page order, while later pages are in flight.

        Closing the iterator, or setting ``cancel`` (from another thread), stops the reading at once: no page is
        started or retried any more, and the requests in flight are not waited for (see
        :func:`qwen_ocr.read_document`).
        """
        settings = settings or self.settings
        assembler = Assembler(item.label, settings)
        try:
            item = self.fetch(item, downloads)
            if item.error is not None:
                raise item.error
            pages = read_document(client, item.document_source(), cancel=cancel, **self._read_kwargs(settings, window))
        except QwenOCRError as exc:
            yield from assembler.file_failed(exc)
            return
        first = True
        try:
            while True:
                try:
                    page = next(pages)
                except StopIteration:
                    break
                except QwenOCRError as exc:  # the file could not be opened (or stopped being readable)
                    yield from assembler.file_failed(exc)
                    return
                if first:
                    progress.file(item.label, page.total_pages)
                    first = False
                progress.page()
                yield from assembler.add(page)
        finally:
            pages.close()  # stop the requests still in flight
        if cancel is not None and cancel.is_set():
            return  # stopped, not finished: no single-mode Document of the pages read so far
        yield from assembler.finish()

    async def aread(
        self,
        item: SourceItem,
        *,
        client: AsyncQwenOCR,
        progress: Progress,
        downloads: Downloads,
        settings: ReadSettings | None = None,
        window: int | None = None,
    ) -> AsyncIterator[Document]:
        """The async twin of :meth:`read`."""
        settings = settings or self.settings
        assembler = Assembler(item.label, settings)
        try:
            item = await self.afetch(item, downloads)
            if item.error is not None:
                raise item.error
            pages = aread_document(client, item.document_source(), **self._read_kwargs(settings, window))
        except QwenOCRError as exc:
            for doc in assembler.file_failed(exc):
                yield doc
            return
        first = True
        try:
            while True:
                try:
                    page = await pages.__anext__()
                except StopAsyncIteration:
                    break
                except QwenOCRError as exc:
                    for doc in assembler.file_failed(exc):
                        yield doc
                    return
                if first:
                    progress.file(item.label, page.total_pages)
                    first = False
                progress.page()
                for doc in assembler.add(page):
                    yield doc
        finally:
            await pages.aclose()  # cancel the requests still in flight
        for doc in assembler.finish():
            yield doc

    def fetch(self, item: SourceItem, downloads: Downloads) -> SourceItem:
        """The item with its URL downloaded (or the download's error)."""
        if item.url is None or item.error is not None:
            return item
        try:
            data = download(
                item.url,
                client=downloads.sync(),
                max_bytes=self.settings.max_download_bytes,
                timeout=self.settings.download_timeout,
                allow_private=self.settings.allow_private_urls,
            )
        except QwenOCRError as exc:
            return replace(item, url=None, error=exc)
        return replace(item, url=None, data=data)

    async def afetch(self, item: SourceItem, downloads: Downloads) -> SourceItem:
        """The async twin of :meth:`fetch`."""
        if item.url is None or item.error is not None:
            return item
        try:
            data = await adownload(
                item.url,
                client=downloads.async_(),
                max_bytes=self.settings.max_download_bytes,
                timeout=self.settings.download_timeout,
                allow_private=self.settings.allow_private_urls,
            )
        except QwenOCRError as exc:
            return replace(item, url=None, error=exc)
        return replace(item, url=None, data=data)

    def slots_for(self, item: SourceItem, window: int) -> int:
        """How many of the window's slots reading ``item`` may use: its selected pages, at most ``window``.

        The file is opened to count them (cheap: PDFium parses no page); a file that cannot be opened needs one
        slot (it fails again, properly, when read), a file object all of them (it can be read only once).
        """
        if item.error is not None:
            return 1
        if item.fileobj is not None:
            return window
        try:
            with open_document(
                item.document_source(), password=self.settings.password, pages=self.settings.pages
            ) as doc:
                return max(1, min(window, len(doc)))
        except QwenOCRError:
            return 1

    # -- many sources, one window ---------------------------------------------------------------------------------

    def read_many(
        self, items: Iterable[SourceItem], *, client: QwenOCR, progress: Progress, downloads: Downloads
    ) -> Iterator[Document]:
        """The Documents of every source, in order, with one window of pages in flight across files."""
        window = self.settings.max_concurrency or client.max_concurrency
        if window <= 1:
            for item in items:
                yield from self.read(item, client=client, progress=progress, downloads=downloads)
            return
        stop = threading.Event()
        slots = threading.Semaphore(window)
        runs: queue.Queue[_Run | _Failure | None] = queue.Queue()
        threads: list[threading.Thread] = []

        def put(target: queue.Queue[Any], message: Any) -> bool:
            while not stop.is_set():
                try:
                    target.put(message, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def produce(run: _Run) -> None:
            docs = self.read(
                run.item, client=client, progress=progress, downloads=downloads, window=run.slots, cancel=stop
            )
            try:
                for doc in docs:
                    if not put(run.queue, doc):
                        return
                put(run.queue, _END)
            except BaseException as exc:  # handed to the consumer, which raises it in its turn
                put(run.queue, _Failure(exc))
            finally:
                cast("Generator[Document, None, None]", docs).close()

        def launch() -> None:
            try:
                for source in items:
                    item = self.fetch(source, downloads)
                    need = self.slots_for(item, window)
                    for taken in range(need):
                        while not slots.acquire(timeout=0.05):
                            if stop.is_set():
                                for _ in range(taken):
                                    slots.release()
                                return
                    if stop.is_set():  # closed while waiting: start nothing more
                        for _ in range(need):
                            slots.release()
                        return
                    run = _Run(item, need, queue.Queue(maxsize=window))
                    thread = threading.Thread(target=produce, args=(run,), name="qwen-ocr-file", daemon=True)
                    threads.append(thread)
                    thread.start()
                    runs.put(run)
            except BaseException as exc:  # expanding the sources failed (a bad entry type): raised in order
                runs.put(_Failure(exc))
            finally:
                runs.put(None)

        launcher = threading.Thread(target=launch, name="qwen-ocr-files", daemon=True)
        launcher.start()
        try:
            while (run := runs.get()) is not None:
                if isinstance(run, _Failure):
                    raise run.error
                try:
                    while (message := run.queue.get()) is not _END:
                        if isinstance(message, _Failure):
                            raise message.error
                        yield message
                finally:
                    for _ in range(run.slots):
                        slots.release()
        finally:
            # Closed (or done): every file's reading stops at once (no page started or retried; see read()). The
            # threads end within moments, unless one is in a download or a request, which is not waited for: they
            # are daemons, their results are dropped.
            stop.set()
            deadline = time.monotonic() + _GRACE
            for thread in (launcher, *threads):
                thread.join(max(0.0, deadline - time.monotonic()))

    async def aread_many(
        self, items: Iterable[SourceItem], *, client: AsyncQwenOCR, progress: Progress, downloads: Downloads
    ) -> AsyncIterator[Document]:
        """The async twin of :meth:`read_many`."""
        window = self.settings.max_concurrency or client.max_concurrency
        if window <= 1:
            for item in items:
                async for doc in self.aread(item, client=client, progress=progress, downloads=downloads):
                    yield doc
            return
        slots = asyncio.Semaphore(window)
        runs: asyncio.Queue[_ARun | _Failure | None] = asyncio.Queue()
        tasks: list[asyncio.Task[None]] = []

        async def produce(run: _ARun) -> None:
            docs = self.aread(run.item, client=client, progress=progress, downloads=downloads, window=run.slots)
            try:
                async for doc in docs:
                    await run.queue.put(doc)
                await run.queue.put(_END)
            except Exception as exc:  # handed to the consumer, which raises it in its turn
                await run.queue.put(_Failure(exc))
            finally:
                await cast("AsyncGenerator[Document, None]", docs).aclose()

        async def launch() -> None:
            try:
                for source in items:
                    item = await self.afetch(source, downloads)
                    need = await asyncio.to_thread(self.slots_for, item, window)
                    for _ in range(need):
                        await slots.acquire()
                    run = _ARun(item, need, asyncio.Queue(maxsize=window))
                    tasks.append(asyncio.create_task(produce(run)))
                    await runs.put(run)
            except Exception as exc:
                await runs.put(_Failure(exc))
            finally:
                await runs.put(None)

        launcher = asyncio.create_task(launch())
        try:
            while (run := await runs.get()) is not None:
                if isinstance(run, _Failure):
                    raise run.error
                try:
                    while (message := await run.queue.get()) is not _END:
                        if isinstance(message, _Failure):
                            raise message.error
                        yield message
                finally:
                    for _ in range(run.slots):
                        slots.release()
        finally:
            pending = [launcher, *tasks]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)


_GRACE = 2.0
"""Seconds a closed :meth:`Reader.read_many` waits for its threads to end (a render in progress), at most."""

_END: Any = object()
"""The end of a file's Documents."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass
class _Run:
    item: SourceItem
    slots: int
    queue: queue.Queue[Any]


@dataclass
class _ARun:
    item: SourceItem
    slots: int
    queue: asyncio.Queue[Any]


class Downloads:
    """The HTTP clients for URLs, made on first use and closed with :meth:`close` / :meth:`aclose`."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None

    def sync(self) -> httpx.Client:
        import httpx

        if self._sync is None:
            self._sync = httpx.Client(timeout=self.timeout, follow_redirects=False)  # each redirect is checked
        return self._sync

    def async_(self) -> httpx.AsyncClient:
        import httpx

        if self._async is None:
            self._async = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        return self._async

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None

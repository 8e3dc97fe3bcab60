"""Reading many documents at once: :func:`read_documents` and :func:`aread_documents`, the one engine under the CLI,
the LangChain loader and parser, and the LlamaIndex reader.

Given paths, glob patterns, folders, URLs, bytes or file objects (see :mod:`qwen_ocr.sources`), it reads every
selected page of every file and yields a :class:`~qwen_ocr.PageResult` per page, files in the order given and pages
in page order, while later pages and files are already being rendered and read:

- one window of ``max_concurrency`` pages in flight across files, so a folder of single images goes as fast as one
  long PDF. Each file being read holds as many slots of the window as it has selected pages (at most all of them)
  until its results have been consumed, so the pages in flight, and the memory they take, stay bounded whatever the
  files; pages are rendered on a few threads while the requests wait on the network (:func:`~qwen_ocr.read_document`);
- with ``probe_first=True`` (the CLI's choice) the next files are opened and rendered at once, but their requests
  wait until the reading's first request has been answered, and are not sent if that answer is an error that would
  fail every file alike (:func:`is_fatal`): a wrong key then costs the first file's requests (one for an image), not
  a window of them, for one request's time more at the start;
- one ``on_error`` policy: a page or a whole file that cannot be read is raised (``"raise"``), left out with a
  logged warning (``"skip"``) or yielded with its typed error (``"mark"``). Errors that would fail every page alike
  (:func:`is_fatal`: a missing or wrong key, no access to the model, an exhausted quota, a bad option) are raised
  whatever ``on_error`` says;
- a file that cannot be read at all gives one result with ``file_failed=True`` (where it is marked), and every
  result carries its ``file_index``: a change of ``file_index`` is a file boundary;
- stopping early (``break``, ``close()``, an exception or Ctrl-C in the loop, ``cancel=``; async: ``aclose()`` or
  cancelling) stops at once: no page is started or retried any more, and the requests in flight are not waited for.

Example::

    from qwen_ocr import QwenOCR, read_documents

    with QwenOCR() as client:
        for page in read_documents(client, ["scans/", "cover.png"], recursive=True, on_error="mark"):
            print(page.source, page.label, page.text if page.ok else page.error)
"""

from __future__ import annotations

import asyncio
import copy
import difflib
import importlib
import logging
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from ._base import _OPTION_NAMES
from .budget import check_resolution
from .documents import PageSelectionError, check_text_layer_mode, open_document, parse_pages
from .errors import (
    AuthenticationError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCRError,
)
from .reading import PageResult, aread_document, read_document
from .retry import cancel_scope, raise_if_cancelled
from .sources import (
    DEFAULT_DOWNLOAD_TIMEOUT,
    DEFAULT_MAX_DOWNLOAD_BYTES,
    Downloads,
    SourceItem,
    Sources,
    check_sources,
    expand_sources,
)
from .tasks import Task, resolve_task

if TYPE_CHECKING:
    from ._async_client import AsyncQwenOCR
    from ._client import QwenOCR
    from .documents import PageSpec, TextLayerMode
    from .settings import ClientHolder

__all__ = [
    "OCR_OPTIONS",
    "ON_ERROR",
    "READ_OPTIONS",
    "OnError",
    "ReadOptions",
    "aread_documents",
    "check_model_arguments",
    "check_option_names",
    "client_setting_names",
    "is_fatal",
    "read_documents",
    "split_arguments",
]

logger = logging.getLogger("qwen_ocr")

_T = TypeVar("_T")

OnError = Literal["raise", "skip", "mark"]
"""What a page or file that cannot be read gives: its error raised, nothing (a warning is logged), or its result
with the error (see :func:`read_documents`)."""
ON_ERROR: tuple[str, ...] = ("raise", "skip", "mark")

OCR_OPTIONS: tuple[str, ...] = tuple(sorted(_OPTION_NAMES))
"""The request options of a reading: those of :meth:`qwen_ocr.QwenOCR.ocr`."""

READ_OPTIONS: tuple[str, ...] = (
    "pages",
    "password",
    "text_layer",
    "on_error",
    "max_concurrency",
    "show_progress",
    "max_download_bytes",
    "download_timeout",
    "allow_private_urls",
    "probe_first",
    *OCR_OPTIONS,
)
"""Every option :func:`read_documents` takes besides the sources and how to expand them."""

_SOURCE_ARGUMENTS = ("name", "recursive", "glob", "cancel")
_PLAIN_TASKS = (None, Task.TEXT_RECOGNITION, Task.MULTI_LAN)


def is_fatal(error: BaseException) -> bool:
    """Whether ``error`` would fail every page alike (a missing or wrong key, no access to the model, an exhausted
    quota, a bad option): raised whatever ``on_error`` says, rather than repeated on every page of every file."""
    if isinstance(error, PageSelectionError):  # pages= does not fit this file: the file's own problem
        return False
    return isinstance(
        error, (AuthenticationError, PermissionDeniedError, NotFoundError, QuotaExceededError, InvalidArgumentError)
    )


@dataclass(frozen=True)
class ReadOptions:
    """The options of a reading, checked: what :func:`read_documents` takes besides its sources.

    Build it with :meth:`build` (which raises :class:`~qwen_ocr.errors.InvalidArgumentError` naming a wrong option)
    to check options early, as the integrations do at construction; :meth:`arguments` gives them back for
    :func:`read_documents`.
    """

    pages: PageSpec = None
    password: str | None = field(default=None, repr=False)
    text_layer: TextLayerMode = "auto"
    on_error: OnError = "raise"
    max_concurrency: int | None = None
    show_progress: bool = False
    max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES
    download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT
    allow_private_urls: bool = False
    probe_first: bool = False
    ocr: Mapping[str, Any] = field(default_factory=dict)
    """The request options (:data:`OCR_OPTIONS`) that are set, the task resolved."""

    @classmethod
    def build(
        cls,
        *,
        pages: PageSpec = None,
        password: str | None = None,
        text_layer: TextLayerMode | None = None,
        on_error: OnError = "raise",
        max_concurrency: int | None = None,
        show_progress: bool = False,
        max_download_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        allow_private_urls: bool = False,
        probe_first: bool = False,
        **options: Any,
    ) -> ReadOptions:
        """Check every option (see :func:`read_documents`); ``**options`` are :data:`OCR_OPTIONS`.

        ``text_layer=None`` (the default everywhere) resolves to ``"auto"`` when the reading is plain text (no task,
        ``text_recognition`` or ``multi_lan``, and no custom prompt) and to ``"never"`` otherwise: a page's own text
        has no boxes, fields or tables.

        >>> ReadOptions.build().text_layer, ReadOptions.build(task="table_parsing").text_layer
        ('auto', 'never')
        >>> ReadOptions.build(schema={"Total": ""}).ocr["task"]
        <Task.KEY_INFORMATION_EXTRACTION: 'key_information_extraction'>
        """
        check_option_names(options, OCR_OPTIONS, "option", others=(*READ_OPTIONS, *_SOURCE_ARGUMENTS))
        if on_error not in ON_ERROR:
            raise InvalidArgumentError(f"on_error={on_error!r}; use one of {', '.join(map(repr, ON_ERROR))}.")
        if max_concurrency is not None and (
            isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or max_concurrency < 1
        ):
            raise InvalidArgumentError(f"max_concurrency={max_concurrency!r} must be a whole number of at least 1.")
        if isinstance(max_download_bytes, bool) or not isinstance(max_download_bytes, int) or max_download_bytes < 1:
            raise InvalidArgumentError(f"max_download_bytes={max_download_bytes!r} must be a positive number.")
        if not download_timeout > 0:
            raise InvalidArgumentError(f"download_timeout={download_timeout!r} must be a positive number of seconds.")
        if show_progress:
            _tqdm()  # fail now, not after the first page
        ocr = {k: v for k, v in options.items() if v is not None}
        check_resolution(ocr.get("resolution"))  # a wrong level fails here, not at the first page
        task = resolve_task(ocr.get("task"), ocr.get("schema"), ocr.get("prompt"))
        if task is not None:
            ocr["task"] = task
        if text_layer is None:
            plain = task in _PLAIN_TASKS and ocr.get("prompt") is None
            resolved: TextLayerMode = "auto" if plain else "never"
        else:
            resolved = check_text_layer_mode(text_layer)
        return cls(
            pages=pages,
            password=password,
            text_layer=resolved,
            on_error=on_error,
            max_concurrency=max_concurrency,
            show_progress=bool(show_progress),
            max_download_bytes=max_download_bytes,
            download_timeout=float(download_timeout),
            allow_private_urls=bool(allow_private_urls),
            probe_first=bool(probe_first),
            ocr=ocr,
        )

    def arguments(self) -> dict[str, Any]:
        """These options as keyword arguments of :func:`read_documents`."""
        return {
            "pages": self.pages,
            "password": self.password,
            "text_layer": self.text_layer,
            "on_error": self.on_error,
            "max_concurrency": self.max_concurrency,
            "show_progress": self.show_progress,
            "max_download_bytes": self.max_download_bytes,
            "download_timeout": self.download_timeout,
            "allow_private_urls": self.allow_private_urls,
            "probe_first": self.probe_first,
            **self.ocr,
        }

    @property
    def task(self) -> Task | None:
        """The task asked for (``None``: plain text)."""
        task = self.ocr.get("task")
        return task if isinstance(task, Task) else None

    def describe(self) -> str:
        """The options for a ``repr``: no password, no key."""
        parts = [] if self.task is None else [f"task={self.task.value!r}"]
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


def check_option_names(given: Iterable[str], valid: Iterable[str], what: str, *, others: Iterable[str] = ()) -> None:
    """Raise :class:`~qwen_ocr.errors.InvalidArgumentError` naming the first unknown name and the closest valid one
    (or the closest of ``others``, names taken elsewhere in the same call)."""
    names = tuple(valid)
    for name in given:
        if name not in names:
            close = difflib.get_close_matches(name, (*names, *others), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise InvalidArgumentError(f"unknown {what} {name!r}; {hint}valid: {', '.join(sorted(names))}.")


def check_model_arguments(model: type[Any], given: Iterable[str], what: str = "argument") -> None:
    """Refuse, with :func:`check_option_names`, any of ``given`` that is neither a field of the pydantic ``model`` nor
    one of its aliases: what every integration's constructor checks first, so that a misspelt setting
    (``modle="..."``) fails at once, naming the closest valid one, instead of being dropped."""
    from pydantic import AliasChoices

    names: list[str] = []
    for name, info in model.model_fields.items():
        names.append(name)
        aliases = [info.alias, info.validation_alias]
        for alias in aliases:
            if isinstance(alias, str):
                names.append(alias)
            elif isinstance(alias, AliasChoices):
                names.extend(choice for choice in alias.choices if isinstance(choice, str))
    check_option_names(given, dict.fromkeys(names), what)


def client_setting_names() -> tuple[str, ...]:
    """The client settings an integration accepts: the fields of :class:`qwen_ocr.settings.ClientSettings`."""
    from .settings import ClientSettings

    return tuple(ClientSettings.model_fields)


def split_arguments(
    *, client: QwenOCR | None = None, aclient: AsyncQwenOCR | None = None, **arguments: Any
) -> tuple[ReadOptions, ClientHolder]:
    """What an integration takes besides its own arguments, checked: the reading options (:data:`READ_OPTIONS`) and
    the client settings (:func:`client_setting_names`; ``model`` and ``max_concurrency`` are both), in one set.

    The clients are ``client`` / ``aclient`` when given, else built on first use from the settings. An unknown name
    raises :class:`~qwen_ocr.errors.InvalidArgumentError` naming it and the closest valid name; a wrong setting
    names the setting, never echoing the value (it may be a key).

    >>> options, holder = split_arguments(task="table_parsing", max_concurrency=4, region="cn")
    >>> options.max_concurrency, holder.max_concurrency, holder.region
    (4, 4, 'cn')
    """
    from .settings import ClientHolder

    settings = client_setting_names()
    check_option_names(arguments, (*READ_OPTIONS, *settings), "argument")
    read = {k: v for k, v in arguments.items() if k in READ_OPTIONS}
    given = {k: v for k, v in arguments.items() if k in settings and (v is not None or k == "timeout")}
    options = ReadOptions.build(**read)
    try:
        holder = ClientHolder(client=client, aclient=aclient, **given)
    except ValueError as exc:  # pydantic's ValidationError: which setting and what it takes, never the value given
        problems = [
            f"{err['loc'][0]}: {err.get('msg', 'invalid')}" for err in getattr(exc, "errors", list)() if err.get("loc")
        ]
        raise InvalidArgumentError(f"invalid client settings: {'; '.join(problems) or 'see the arguments'}.") from None
    return options, holder


# -- progress -----------------------------------------------------------------------------------------------------


def _tqdm() -> Any:
    try:
        module = importlib.import_module("tqdm.auto")
    except ImportError:
        raise ImportError("show_progress=True needs tqdm: pip install tqdm") from None
    return module.tqdm


class _Progress:
    """A tqdm bar counting pages; its total grows as each file's selected pages become known."""

    def __init__(self, enabled: bool, pages: PageSpec) -> None:
        self._pages = pages
        self._bar: Any = _tqdm()(total=0, unit="page", desc="Qwen-OCR") if enabled else None

    def page(self, page: PageResult, first: bool) -> None:
        if self._bar is None or page.file_failed:
            return
        if first:
            try:
                selected = len(parse_pages(self._pages, page.total_pages))
            except QwenOCRError:
                selected = 1
            self._bar.total = (self._bar.total or 0) + selected
            self._bar.set_postfix_str(page.source, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


# -- the policy -----------------------------------------------------------------------------------------------------


def _apply_policy(page: PageResult, on_error: OnError) -> bool:
    """Whether to yield ``page``; raises its error where asked to (and for :func:`is_fatal` errors)."""
    if page.ok:
        return True
    if page.error is None:
        page.error = QwenOCRError(f"page {page.label} of {page.source} gave no result.")
    error = page.error
    if on_error == "raise" or is_fatal(error):
        raise error
    if on_error == "skip":
        what = page.source if page.file_failed else f"page {page.label} of {page.source}"
        logger.warning("skipped %s: %s", what, error)
        return False
    return True


def _failed(item: SourceItem, position: int, error: QwenOCRError, total_pages: int = 0) -> PageResult:
    return PageResult(
        source=item.label,
        index=0,
        label="",
        total_pages=total_pages,
        error=error,
        file_index=position,
        file_failed=True,
    )


def _slots_for(item: SourceItem, window: int, options: ReadOptions) -> int:
    """How many of the window's slots reading ``item`` may use: its selected pages, at most ``window``.

    The file is opened to count them (cheap: PDFium parses no page); a file that cannot be opened needs one slot (it
    fails again, properly, when read), a file object all of them (it can be read only once).
    """
    if item.error is not None or item.remote is not None:
        return 1
    if item.fileobj is not None:
        return window
    try:
        with open_document(item.document_source(), password=options.password, pages=options.pages) as doc:
            return max(1, min(window, len(doc)))
    except QwenOCRError:
        return 1


# -- one file -----------------------------------------------------------------------------------------------------


def _read_file(
    client: QwenOCR,
    item: SourceItem,
    position: int,
    options: ReadOptions,
    *,
    downloads: Downloads,
    window: int | None,
    cancel: threading.Event | None,
) -> Generator[PageResult, None, None]:
    """The results of one file, in page order, while later pages are in flight."""
    item = downloads.fetch(item)
    if item.error is not None:
        yield _failed(item, position, item.error)
        return
    if item.remote is not None:
        page = PageResult(source=item.label, index=0, label="1", total_pages=1, file_index=position)
        try:
            with cancel_scope(cancel or threading.Event()):
                page.result = client.ocr(item.remote, **options.ocr)
        except QwenOCRError as exc:
            page.error = exc
        yield page
        return
    pages = read_document(
        client, item.document_source(), pages=options.pages, password=options.password,
        text_layer=options.text_layer, max_concurrency=window, cancel=cancel, **options.ocr,
    )  # fmt: skip
    total = 0
    try:
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except QwenOCRError as exc:  # the file could not be opened (or stopped being readable)
                yield _failed(item, position, exc, total)
                return
            page.source, page.file_index, total = item.label, position, page.total_pages
            yield page
    finally:
        pages.close()  # stop the requests still in flight


async def _aread_file(
    client: AsyncQwenOCR,
    item: SourceItem,
    position: int,
    options: ReadOptions,
    *,
    downloads: Downloads,
    window: int | None,
) -> AsyncGenerator[PageResult, None]:
    """The async twin of :func:`_read_file`."""
    item = await downloads.afetch(item)
    if item.error is not None:
        yield _failed(item, position, item.error)
        return
    if item.remote is not None:
        page = PageResult(source=item.label, index=0, label="1", total_pages=1, file_index=position)
        try:
            page.result = await client.ocr(item.remote, **options.ocr)
        except QwenOCRError as exc:
            page.error = exc
        yield page
        return
    pages = aread_document(
        client, item.document_source(), pages=options.pages, password=options.password,
        text_layer=options.text_layer, max_concurrency=window, **options.ocr,
    )  # fmt: skip
    total = 0
    try:
        while True:
            try:
                page = await pages.__anext__()
            except StopAsyncIteration:
                return
            except QwenOCRError as exc:
                yield _failed(item, position, exc, total)
                return
            page.source, page.file_index, total = item.label, position, page.total_pages
            yield page
    finally:
        await pages.aclose()  # cancel the requests still in flight


# -- many files, one window -----------------------------------------------------------------------------------------


def read_documents(
    client: QwenOCR,
    sources: Sources | Iterable[Any],
    *,
    name: str | None = None,
    recursive: bool = False,
    glob: str | None = None,
    cancel: threading.Event | None = None,
    **options: Any,
) -> Generator[PageResult, None, None]:
    """Read every selected page of every file ``sources`` stands for: a :class:`~qwen_ocr.PageResult` per page, files
    in the order given, pages in page order, a window of pages in flight across files.

    Args:
        client: the client that sends the pages.
        sources: a path, a glob pattern (``"scans/*.pdf"``, ``"inbox/**/*.tif"``), a folder, an http(s) URL
            (downloaded through :mod:`qwen_ocr.fetch`), a ``data:`` or ``oss://`` URL, the file's ``bytes``,
            ``(name, bytes)``, a binary file object, or a list (any iterable) of these: see
            :func:`qwen_ocr.sources.expand_sources`.
        name: the name (``PageResult.source``) of ``sources`` when it is bytes or a file object.
        recursive: also read the subfolders of a folder.
        glob: which files of a folder to read (default: every PDF and image file by extension).
        cancel: an event another thread may set to stop the reading as closing it would.
        pages: which pages of each file, 1-based: ``"1-3,7"``, ``5``, ``[1, 3]``; all by default.
        password: the password of encrypted PDFs.
        text_layer: ``"auto"`` uses a PDF page's own text where it is good (no request), ``"never"`` OCRs every
            page, ``"only"`` never sends a page. Default: ``"auto"`` for plain-text reading, ``"never"`` for the
            structured tasks and custom prompts (a text layer has no boxes, fields or tables).
        on_error: a page or file that cannot be read: ``"raise"`` its typed :class:`~qwen_ocr.QwenOCRError` (the
            results before it were already yielded), ``"skip"`` it (a warning is logged) or ``"mark"`` it (its
            result carries the error; a whole file gives one result with ``file_failed=True``). :func:`is_fatal`
            errors are raised in every case.
        max_concurrency: pages in flight at once, across files (default: the client's).
        show_progress: a tqdm progress bar of pages (needs ``tqdm``).
        max_download_bytes: the largest file accepted from a URL (100 MiB).
        download_timeout: seconds allowed for each network step of a download.
        allow_private_urls: also download URLs whose host is private, loopback or otherwise not public (refused by
            default, at every redirect too: see :mod:`qwen_ocr.fetch`).
        probe_first: send the reading's first request alone: the other files' requests wait for its answer, and
            are not sent if it is an :func:`is_fatal` error (a wrong key costs one request, not a window of them;
            the reading takes one request's time longer).
        **options: the request options (:data:`OCR_OPTIONS`): ``task``, ``schema`` (implies
            ``key_information_extraction``), ``prompt``, ``model``, ``min_pixels``, ``max_pixels``,
            ``enable_rotate``, ``max_tokens``, ``temperature``.

    Raises:
        InvalidArgumentError: a wrong option or source type (at once, before anything is read).
        QwenOCRError: a page's or file's error where ``on_error="raise"``, and :func:`is_fatal` errors.

    Example (a fake service answering "Hello"; a real client reads the same way)::

        >>> import httpx
        >>> from qwen_ocr import QwenOCR, read_documents
        >>> from qwen_ocr.samples import SAMPLE_SCAN, read_sample
        >>> from qwen_ocr.testing import FakeTransport
        >>> client = QwenOCR(api_key="sk-test", http_client=httpx.Client(transport=FakeTransport(["Hello"])))
        >>> sources = [("scan.jpg", read_sample(SAMPLE_SCAN)), "missing.pdf"]
        >>> [(p.source, p.text, p.file_failed) for p in read_documents(client, sources, on_error="mark")]
        [('scan.jpg', 'Hello', False), ('missing.pdf', '', True)]
    """
    settings = ReadOptions.build(**options)
    check_sources(sources)
    items = expand_sources(sources, name=name, recursive=recursive, glob=glob)
    return _read_many(client, items, settings, cancel)


def _read_many(
    client: QwenOCR, items: Iterable[SourceItem], options: ReadOptions, cancel: threading.Event | None
) -> Generator[PageResult, None, None]:
    window = options.max_concurrency or client.max_concurrency
    downloads = Downloads(
        max_bytes=options.max_download_bytes, timeout=options.download_timeout, allow_private=options.allow_private_urls
    )
    progress = _Progress(options.show_progress, options.pages)
    last = -1
    try:
        for page in _schedule(client, items, options, window, downloads, cancel):
            progress.page(page, page.file_index != last)
            last = page.file_index
            if _apply_policy(page, options.on_error):
                yield page
    finally:
        downloads.close()
        progress.close()


def _schedule(
    client: QwenOCR,
    items: Iterable[SourceItem],
    options: ReadOptions,
    window: int,
    downloads: Downloads,
    cancel: threading.Event | None,
) -> Iterator[PageResult]:
    """Every file's results in order, read by one thread per file being read, the window's slots shared."""
    if window <= 1:
        for position, item in enumerate(items):
            yield from _read_file(client, item, position, options, downloads=downloads, window=1, cancel=cancel)
            if cancel is not None and cancel.is_set():
                return
        return
    stop = threading.Event()
    slots = threading.Semaphore(window)
    runs: queue.Queue[_Run | _Failure | None] = queue.Queue()
    threads: list[threading.Thread] = []
    gate = _Gate(threading.Event(), opened=not options.probe_first)

    def put(target: queue.Queue[Any], message: Any) -> bool:
        while not stop.is_set():
            try:
                target.put(message, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce(run: _Run) -> None:
        first = run.position == 0
        gated = cast("QwenOCR", _Gated(client, gate, first=first)) if options.probe_first else client
        pages = _read_file(gated, run.item, run.position, options, downloads=downloads, window=run.slots, cancel=stop)
        try:
            for page in pages:
                if first:
                    gate.settle(page.error)
                if not put(run.queue, page):
                    return
            put(run.queue, _END)
        except BaseException as exc:  # handed to the consumer, which raises it in its turn
            put(run.queue, _Failure(exc))
        finally:
            if first:
                gate.settle(None)
            pages.close()

    def acquire(count: int) -> bool:
        for taken in range(count):
            while not slots.acquire(timeout=_POLL):
                if stop.is_set():
                    for _ in range(taken):
                        slots.release()
                    return False
        return True

    def launch() -> None:
        try:
            for position, source in enumerate(items):
                item = downloads.fetch(source)
                need = _slots_for(item, window, options)
                if gate.error is not None or not acquire(need):
                    return
                if stop.is_set():  # closed while waiting: start nothing more
                    for _ in range(need):
                        slots.release()
                    return
                run = _Run(item, position, need, queue.Queue(maxsize=window))
                thread = threading.Thread(target=produce, args=(run,), name="qwen-ocr-file", daemon=True)
                threads.append(thread)
                thread.start()
                runs.put(run)
        except BaseException as exc:  # expanding the sources failed (a bad entry type): raised in order
            runs.put(_Failure(exc))
        finally:
            runs.put(None)

    def get(source: queue.Queue[_T]) -> _T:
        while True:
            try:
                return source.get(timeout=_POLL if cancel is not None else None)
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled from None

    launcher = threading.Thread(target=launch, name="qwen-ocr-files", daemon=True)
    launcher.start()
    try:
        while (run := get(runs)) is not None:
            if isinstance(run, _Failure):
                raise run.error
            try:
                while (message := get(run.queue)) is not _END:
                    if isinstance(message, _Failure):
                        raise message.error
                    yield message
            finally:
                for _ in range(run.slots):
                    slots.release()
    except _Cancelled:
        return
    finally:
        # Closed (or done): every file's reading stops at once (no page started or retried; see read_document). The
        # threads end within moments, unless one is in a download or a request, which is not waited for: they are
        # daemons, their results are dropped.
        stop.set()
        deadline = time.monotonic() + _GRACE
        for thread in (launcher, *threads):
            thread.join(max(0.0, deadline - time.monotonic()))


def aread_documents(
    client: AsyncQwenOCR,
    sources: Sources | Iterable[Any],
    *,
    name: str | None = None,
    recursive: bool = False,
    glob: str | None = None,
    **options: Any,
) -> AsyncGenerator[PageResult, None]:
    """The async twin of :func:`read_documents`: the same results, in the same order, with the same errors.

    Requests are awaited on the running event loop (files are listed, opened and rendered in worker threads);
    leaving the loop early (``break``, ``aclose()``, cancellation) cancels the requests in flight.

    Example::

        async with AsyncQwenOCR() as client:
            async for page in aread_documents(client, "scans/", on_error="mark"):
                print(page.source, page.label, page.text)
    """
    settings = ReadOptions.build(**options)
    check_sources(sources)
    items = expand_sources(sources, name=name, recursive=recursive, glob=glob)
    return _aread_many(client, items, settings)


async def _aread_many(
    client: AsyncQwenOCR, items: Iterator[SourceItem], options: ReadOptions
) -> AsyncGenerator[PageResult, None]:
    window = options.max_concurrency or client.max_concurrency
    downloads = Downloads(
        max_bytes=options.max_download_bytes, timeout=options.download_timeout, allow_private=options.allow_private_urls
    )
    progress = _Progress(options.show_progress, options.pages)
    last = -1
    try:
        listed = await asyncio.to_thread(list, items)  # folders and patterns are listed off the loop
        async for page in _aschedule(client, listed, options, window, downloads):
            progress.page(page, page.file_index != last)
            last = page.file_index
            if _apply_policy(page, options.on_error):
                yield page
    finally:
        await downloads.aclose()
        progress.close()


async def _aschedule(
    client: AsyncQwenOCR,
    items: list[SourceItem],
    options: ReadOptions,
    window: int,
    downloads: Downloads,
) -> AsyncIterator[PageResult]:
    """The async twin of :func:`_schedule`: one task per file being read."""
    if window <= 1:
        for position, item in enumerate(items):
            async for page in _aread_file(client, item, position, options, downloads=downloads, window=1):
                yield page
        return
    slots = asyncio.Semaphore(window)
    runs: asyncio.Queue[_ARun | _Failure | None] = asyncio.Queue()
    tasks: list[asyncio.Task[None]] = []
    gate = _Gate(asyncio.Event(), opened=not options.probe_first)

    async def produce(run: _ARun) -> None:
        first = run.position == 0
        gated = cast("AsyncQwenOCR", _AsyncGated(client, gate, first=first)) if options.probe_first else client
        pages = _aread_file(gated, run.item, run.position, options, downloads=downloads, window=run.slots)
        try:
            async for page in pages:
                if first:
                    gate.settle(page.error)
                await run.queue.put(page)
            await run.queue.put(_END)
        except Exception as exc:  # handed to the consumer, which raises it in its turn
            await run.queue.put(_Failure(exc))
        finally:
            if first:
                gate.settle(None)
            await pages.aclose()

    async def launch() -> None:
        try:
            for position, source in enumerate(items):
                item = await downloads.afetch(source)
                need = await asyncio.to_thread(_slots_for, item, window, options)
                if gate.error is not None:
                    return
                for _ in range(need):
                    await slots.acquire()
                run = _ARun(item, position, need, asyncio.Queue(maxsize=window))
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


_POLL = 0.05
"""Seconds between two looks at a stop or cancel event while waiting."""

_GRACE = 2.0
"""Seconds a closed reading waits for its threads to end (a render in progress), at most."""

_END: Any = object()
"""The end of a file's results."""


class _Gate:
    """Opened by the reading's first answer (or the end of its first file); holds the error if that answer was one
    that would fail every file alike."""

    def __init__(self, event: threading.Event | asyncio.Event, *, opened: bool) -> None:
        self.event = event
        self.error: BaseException | None = None
        if opened:
            event.set()

    def settle(self, error: BaseException | None) -> None:
        if not self.event.is_set():
            if error is not None and is_fatal(error):
                self.error = error
            self.event.set()

    def check(self) -> None:
        if self.error is not None:
            raise copy.copy(self.error)  # the same error, not sent again; each page its own exception object


class _Gated:
    """A client whose requests wait at the gate (the files after the first), or open it (the first file)."""

    def __init__(self, client: QwenOCR, gate: _Gate, *, first: bool) -> None:
        self._client, self._gate, self._first = client, gate, first

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def ocr(self, image: Any, **options: Any) -> Any:
        event = cast("threading.Event", self._gate.event)
        if not self._first:
            while not event.wait(_POLL):
                raise_if_cancelled()  # the reading was closed while this page waited
            self._gate.check()
            return self._client.ocr(image, **options)
        try:
            result = self._client.ocr(image, **options)
        except BaseException as exc:
            self._gate.settle(exc)
            raise
        self._gate.settle(None)
        return result


class _AsyncGated:
    """The async twin of :class:`_Gated`."""

    def __init__(self, client: AsyncQwenOCR, gate: _Gate, *, first: bool) -> None:
        self._client, self._gate, self._first = client, gate, first

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def ocr(self, image: Any, **options: Any) -> Any:
        if not self._first:
            await cast("asyncio.Event", self._gate.event).wait()
            self._gate.check()
            return await self._client.ocr(image, **options)
        try:
            result = await self._client.ocr(image, **options)
        except BaseException as exc:
            self._gate.settle(exc)
            raise
        self._gate.settle(None)
        return result


class _Cancelled(Exception):
    """The caller's ``cancel`` event was set."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


@dataclass
class _Run:
    item: SourceItem
    position: int
    slots: int
    queue: queue.Queue[Any]


@dataclass
class _ARun:
    item: SourceItem
    position: int
    slots: int
    queue: asyncio.Queue[Any]

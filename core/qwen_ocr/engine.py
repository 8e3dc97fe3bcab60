"""Reading many documents at once: :func:`read_documents` and :func:`aread_documents`, the one engine under the CLI,
the LangChain loader and parser, the LlamaIndex reader and ``ImageReader``.

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
import contextlib
import copy
import difflib
import importlib
import logging
import queue
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar, cast

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
from .options import OCR_OPTIONS as _OPTION_NAMES
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
    "StrictArguments",
    "StrictSettings",
    "aread_documents",
    "check_model_arguments",
    "check_option_names",
    "client_setting_names",
    "fatal_noted",
    "is_fatal",
    "note_fatal",
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


@contextlib.contextmanager
def fatal_noted(seen: set[str], log: logging.Logger, who: str) -> Iterator[None]:
    """Around a reading: an error that fails every file alike is logged once per kind (:func:`note_fatal`), then
    raised as it is."""
    try:
        yield
    except QwenOCRError as exc:
        note_fatal(exc, seen, log, who)
        raise


def note_fatal(error: QwenOCRError, seen: set[str], log: logging.Logger, who: str) -> None:
    """Log at WARNING, once per kind (kept in ``seen``), an ``error`` that fails every file alike (:func:`is_fatal`).

    For integrations whose host swallows a reader's errors (``SimpleDirectoryReader`` skips a failed file unless
    ``raise_on_error=True``): a run where every file fails for that reason must not end silently with nothing.
    """
    kind = f"{type(error).__name__}:{error.code}"
    if not is_fatal(error) or kind in seen:
        return
    seen.add(kind)
    log.warning(
        "%s cannot read any file: %s (%s). Every file fails alike until this is fixed; "
        "SimpleDirectoryReader skips failed files unless raise_on_error=True.",
        who,
        error.message,
        type(error).__name__,
    )


@dataclass(frozen=True)
class ReadOptions:
    """The options of a reading, checked: what :func:`read_documents` takes besides its sources (each field is the
    argument of the same name; :data:`READ_OPTIONS` lists them).

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
    def build(cls, **options: Any) -> ReadOptions:
        """Check every option (see :func:`read_documents`): :data:`READ_OPTIONS` and :data:`OCR_OPTIONS`.

        ``text_layer=None`` (the default everywhere) resolves to ``"auto"`` when the reading is plain text (no task,
        ``text_recognition`` or ``multi_lan``, and no custom prompt) and to ``"never"`` otherwise: a page's own text
        has no boxes, fields or tables.

        >>> ReadOptions.build().text_layer, ReadOptions.build(task="table_parsing").text_layer
        ('auto', 'never')
        >>> ReadOptions.build(schema={"Total": ""}).ocr["task"]
        <Task.KEY_INFORMATION_EXTRACTION: 'key_information_extraction'>
        """
        read = {name: options.pop(name) for name in _READ_FIELDS if name in options}
        text_layer = read.pop("text_layer", None)
        check_option_names(options, OCR_OPTIONS, "option", others=(*READ_OPTIONS, *_SOURCE_ARGUMENTS))
        given = cls(**read)
        if given.on_error not in ON_ERROR:
            raise InvalidArgumentError(f"on_error={given.on_error!r}; use one of {', '.join(map(repr, ON_ERROR))}.")
        if not _is_count(given.max_concurrency, optional=True):
            raise InvalidArgumentError(
                f"max_concurrency={given.max_concurrency!r} must be a whole number of at least 1."
            )
        if not _is_count(given.max_download_bytes):
            raise InvalidArgumentError(f"max_download_bytes={given.max_download_bytes!r} must be a positive number.")
        if not given.download_timeout > 0:
            raise InvalidArgumentError(
                f"download_timeout={given.download_timeout!r} must be a positive number of seconds."
            )
        if given.show_progress:
            _tqdm()  # fail now, not after the first page
        ocr = {k: v for k, v in options.items() if v is not None}
        check_resolution(ocr.get("resolution"))  # a wrong level fails here, not at the first page
        task = resolve_task(ocr.get("task"), ocr.get("schema"), ocr.get("prompt"))
        if task is not None:
            ocr["task"] = task
        if text_layer is None:
            text_layer = "auto" if task in _PLAIN_TASKS and ocr.get("prompt") is None else "never"
        return replace(
            given,
            text_layer=check_text_layer_mode(text_layer),
            show_progress=bool(given.show_progress),
            download_timeout=float(given.download_timeout),
            allow_private_urls=bool(given.allow_private_urls),
            probe_first=bool(given.probe_first),
            ocr=ocr,
        )

    def arguments(self) -> dict[str, Any]:
        """These options as keyword arguments of :func:`read_documents`."""
        return {**{name: getattr(self, name) for name in _READ_FIELDS}, **self.ocr}

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


_READ_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ReadOptions) if f.name != "ocr")

READ_OPTIONS: tuple[str, ...] = (*_READ_FIELDS, *OCR_OPTIONS)
"""Every option :func:`read_documents` takes besides the sources and how to expand them."""


def _is_count(value: object, *, optional: bool = False) -> bool:
    """Whether ``value`` is a whole number of at least 1 (or ``None``, where ``optional``)."""
    if value is None:
        return optional
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


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


class StrictArguments:
    """A mixin, first among an integration's bases (a pydantic model): its constructor refuses an unknown keyword
    at once (:func:`check_model_arguments`), naming the closest valid one, instead of dropping it.

    Example::

        class MyReader(StrictSettings, BasePydanticReader): ...
        MyReader(modle="x")   # InvalidArgumentError: unknown setting 'modle' (did you mean 'model'?)
    """

    def _unknown_is(self) -> str:
        return "argument"

    def __init__(self, **data: Any) -> None:
        check_model_arguments(type(self), data, self._unknown_is())
        super().__init__(**data)  # the pydantic model that follows in the MRO


class StrictSettings(StrictArguments):
    """:class:`StrictArguments` whose keywords are called settings in its messages (the LlamaIndex components)."""

    def _unknown_is(self) -> str:
        return "setting"


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

    def __init__(self, enabled: bool, pages: PageSpec, desc: str = "Qwen-OCR") -> None:
        self._pages = pages
        self._bar: Any = _tqdm()(total=0, unit="page", desc=desc) if enabled else None

    def page(self, page: PageResult, first: bool) -> None:
        self.count(page.source, page.total_pages, first=first, file_failed=page.file_failed)

    def count(self, source: str, total_pages: int, *, first: bool, file_failed: bool = False) -> None:
        """One page of ``source`` (a document of ``total_pages``) done; ``first``: its file's first."""
        if self._bar is None or file_failed:
            return
        if first:
            try:
                selected = len(parse_pages(self._pages, total_pages))
            except QwenOCRError:
                selected = 1
            self._bar.total = (self._bar.total or 0) + selected
            self._bar.set_postfix_str(source, refresh=False)
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


class _File:
    """One file of a reading: its results carry its name and position, and one result (``file_failed``) stands for
    it when it cannot be read. The first file's results settle the reading's gate (see ``probe_first``)."""

    def __init__(self, item: SourceItem, position: int, options: ReadOptions, gate: _Gate) -> None:
        self.item, self.position, self.options, self.gate = item, position, options, gate
        self.first = position == 0
        self.total = 0  # its pages, once known

    def failed(self, error: QwenOCRError) -> PageResult:
        """The result that stands for the whole file."""
        self._settle(error)
        return PageResult(
            source=self.item.label,
            index=0,
            label="",
            total_pages=self.total,
            error=error,
            file_index=self.position,
            file_failed=True,
        )

    def page(self, page: PageResult) -> PageResult:
        """A page of the file, as a result of the reading."""
        page.source, page.file_index, self.total = self.item.label, self.position, page.total_pages
        self._settle(page.error)
        return page

    def remote(self) -> PageResult:
        """The one page of an ``oss://`` URL, which only the service reads (its result or error set by the caller)."""
        return PageResult(source=self.item.label, index=0, label="1", total_pages=1, file_index=self.position)

    def done(self) -> None:
        """The file's reading ended (however it ended)."""
        self._settle(None)

    def _settle(self, error: BaseException | None) -> None:
        if self.first:
            self.gate.settle(error)

    def document_options(self, window: int | None) -> dict[str, Any]:
        """The arguments of :func:`~qwen_ocr.read_document` for this file."""
        options = self.options
        return {
            "pages": options.pages,
            "password": options.password,
            "text_layer": options.text_layer,
            "max_concurrency": window,
            **options.ocr,
        }


def _read_file(
    client: QwenOCR, file: _File, *, window: int | None, cancel: threading.Event | None
) -> Generator[PageResult, None, None]:
    """The results of one file (its URL already downloaded), in page order, while later pages are in flight."""
    item = file.item
    if item.error is not None:
        yield file.failed(item.error)
    elif item.remote is not None:
        yield _read_remote(client, file, item.remote, cancel)
    else:
        pages = read_document(client, item.document_source(), cancel=cancel, **file.document_options(window))
        with contextlib.closing(pages):  # closing stops the requests still in flight
            try:
                for page in pages:
                    yield file.page(page)
            except QwenOCRError as exc:  # the file could not be opened (or stopped being readable)
                yield file.failed(exc)


def _read_remote(client: QwenOCR, file: _File, url: str, cancel: threading.Event | None) -> PageResult:
    page = file.remote()
    try:
        with cancel_scope(cancel or threading.Event()):
            page.result = client.ocr(url, **file.options.ocr)
    except QwenOCRError as exc:
        page.error = exc
    return file.page(page)


async def _aread_file(client: AsyncQwenOCR, file: _File, *, window: int | None) -> AsyncGenerator[PageResult, None]:
    """The async twin of :func:`_read_file`."""
    item = file.item
    if item.error is not None:
        yield file.failed(item.error)
    elif item.remote is not None:
        yield await _aread_remote(client, file, item.remote)
    else:
        pages = aread_document(client, item.document_source(), **file.document_options(window))
        async with contextlib.aclosing(pages):  # closing cancels the requests still in flight
            try:
                async for page in pages:
                    yield file.page(page)
            except QwenOCRError as exc:
                yield file.failed(exc)


async def _aread_remote(client: AsyncQwenOCR, file: _File, url: str) -> PageResult:
    page = file.remote()
    try:
        page.result = await client.ocr(url, **file.options.ocr)
    except QwenOCRError as exc:
        page.error = exc
    return file.page(page)


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
            ``(name, bytes)``, a binary file object, a :class:`~qwen_ocr.RemoteImage` (an image URL the service
            downloads itself, sent as it is as one page, never fetched by the client; an ``oss://`` URL is read so
            too), or a list (any iterable) of these: see :func:`qwen_ocr.sources.expand_sources`.
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
    return _read_many(client, *_start(sources, name, recursive, glob, options), cancel)


def _start(
    sources: object, name: str | None, recursive: bool, glob: str | None, options: dict[str, Any]
) -> tuple[Iterator[SourceItem], ReadOptions]:
    """The files to read (expanded lazily) and the options, checked at once (see :func:`read_documents`)."""
    settings = ReadOptions.build(**options)
    check_sources(sources)
    return expand_sources(cast("Sources", sources), name=name, recursive=recursive, glob=glob), settings


class _Reading:
    """What the files of one reading share: the options, the window, the downloads, the progress bar, the gate."""

    def __init__(self, options: ReadOptions, client_limit: int, gate_event: threading.Event | asyncio.Event) -> None:
        self.options = options
        self.window = options.max_concurrency or client_limit
        self.downloads = Downloads(
            max_bytes=options.max_download_bytes,
            timeout=options.download_timeout,
            allow_private=options.allow_private_urls,
        )
        self.gate = _Gate(gate_event, opened=not options.probe_first)
        self._progress = _Progress(options.show_progress, options.pages)
        self._last = -1

    def file(self, item: SourceItem, position: int) -> _File:
        return _File(item, position, self.options, self.gate)

    def slots_for(self, item: SourceItem) -> int:
        return _slots_for(item, self.window, self.options)

    def passes(self, page: PageResult) -> bool:
        """Whether to yield ``page`` (counted on the progress bar); raises its error where the policy says so."""
        self._progress.page(page, page.file_index != self._last)
        self._last = page.file_index
        return _apply_policy(page, self.options.on_error)

    def close(self) -> None:
        """Close the progress bar and the sync downloads' client (the async one: ``await downloads.aclose()``)."""
        self._progress.close()
        self.downloads.close()


def _read_many(
    client: QwenOCR, items: Iterator[SourceItem], options: ReadOptions, cancel: threading.Event | None
) -> Generator[PageResult, None, None]:
    reading = _Reading(options, client.max_concurrency, threading.Event())
    try:
        for page in _schedule(client, items, reading, cancel):
            if reading.passes(page):
                yield page
    finally:
        reading.close()


def _schedule(
    client: QwenOCR, items: Iterator[SourceItem], reading: _Reading, cancel: threading.Event | None
) -> Iterator[PageResult]:
    """Every file's results in order, read by one thread per file being read, the window's slots shared."""
    window, downloads, gate = reading.window, reading.downloads, reading.gate
    if window <= 1:
        for position, item in enumerate(items):
            yield from _read_file(client, reading.file(downloads.fetch(item), position), window=1, cancel=cancel)
            if cancel is not None and cancel.is_set():
                return
        return
    stop = threading.Event()
    slots = threading.Semaphore(window)
    runs: queue.Queue[_Run[queue.Queue[Any]] | _Failure | None] = queue.Queue()
    threads: list[threading.Thread] = []

    def put(target: queue.Queue[Any], message: Any) -> bool:
        while not stop.is_set():
            try:
                target.put(message, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    def produce(run: _Run[queue.Queue[Any]]) -> None:
        gated = cast("QwenOCR", _Gated(client, run.file)) if reading.options.probe_first else client
        pages = _read_file(gated, run.file, window=run.slots, cancel=stop)
        try:
            for page in pages:
                if not put(run.queue, page):
                    return
            put(run.queue, _END)
        except BaseException as exc:  # handed to the consumer, which raises it in its turn
            put(run.queue, _Failure(exc))
        finally:
            run.file.done()
            pages.close()

    def acquire(count: int) -> bool:
        for taken in range(count):
            while not slots.acquire(timeout=_POLL):
                if stop.is_set():
                    _release(slots, taken)
                    return False
        return True

    def launch() -> None:
        try:
            for position, source in enumerate(items):
                item = downloads.fetch(source)
                need = reading.slots_for(item)
                if gate.error is not None or not acquire(need):
                    return
                if stop.is_set():  # closed while waiting: start nothing more
                    _release(slots, need)
                    return
                run = _Run(reading.file(item, position), need, queue.Queue[Any](maxsize=window))
                thread = threading.Thread(target=produce, args=(run,), name="qwen-ocr-file", daemon=True)
                threads.append(thread)
                thread.start()
                runs.put(run)
        except BaseException as exc:  # expanding the sources failed (a bad entry type): raised in order
            runs.put(_Failure(exc))
        finally:
            runs.put(None)

    def get(source: queue.Queue[_T | _Failure]) -> _T:
        while True:
            try:
                return _unwrap(source.get(timeout=_POLL if cancel is not None else None))
            except queue.Empty:
                if cancel is not None and cancel.is_set():
                    raise _Cancelled from None

    launcher = threading.Thread(target=launch, name="qwen-ocr-files", daemon=True)
    launcher.start()
    try:
        while (run := get(runs)) is not None:
            try:
                while (message := get(run.queue)) is not _END:
                    yield message
            finally:
                _release(slots, run.slots)
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
    return _aread_many(client, *_start(sources, name, recursive, glob, options))


async def _aread_many(
    client: AsyncQwenOCR, items: Iterator[SourceItem], options: ReadOptions
) -> AsyncGenerator[PageResult, None]:
    reading = _Reading(options, client.max_concurrency, asyncio.Event())
    try:
        listed = await asyncio.to_thread(list, items)  # folders and patterns are listed off the loop
        async for page in _aschedule(client, listed, reading):
            if reading.passes(page):
                yield page
    finally:
        reading.close()
        await reading.downloads.aclose()


async def _aschedule(client: AsyncQwenOCR, items: list[SourceItem], reading: _Reading) -> AsyncIterator[PageResult]:
    """The async twin of :func:`_schedule`: one task per file being read."""
    window, downloads = reading.window, reading.downloads
    if window <= 1:
        for position, item in enumerate(items):
            async for page in _aread_file(client, reading.file(await downloads.afetch(item), position), window=1):
                yield page
        return
    slots = asyncio.Semaphore(window)
    runs: asyncio.Queue[_Run[asyncio.Queue[Any]] | _Failure | None] = asyncio.Queue()
    tasks: list[asyncio.Task[None]] = []

    async def produce(run: _Run[asyncio.Queue[Any]]) -> None:
        gated = cast("AsyncQwenOCR", _AsyncGated(client, run.file)) if reading.options.probe_first else client
        pages = _aread_file(gated, run.file, window=run.slots)
        try:
            async for page in pages:
                await run.queue.put(page)
            await run.queue.put(_END)
        except Exception as exc:  # handed to the consumer, which raises it in its turn
            await run.queue.put(_Failure(exc))
        finally:
            run.file.done()
            await pages.aclose()

    async def launch() -> None:
        try:
            for position, source in enumerate(items):
                item = await downloads.afetch(source)
                need = await asyncio.to_thread(reading.slots_for, item)
                if reading.gate.error is not None:
                    return
                for _ in range(need):
                    await slots.acquire()
                run = _Run(reading.file(item, position), need, asyncio.Queue[Any](maxsize=window))
                tasks.append(asyncio.create_task(produce(run)))
                await runs.put(run)
        except Exception as exc:
            await runs.put(_Failure(exc))
        finally:
            await runs.put(None)

    launcher = asyncio.create_task(launch())
    try:
        while (run := _unwrap(await runs.get())) is not None:
            try:
                while (message := _unwrap(await run.queue.get())) is not _END:
                    yield message
            finally:
                _release(slots, run.slots)
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
    that would fail every file alike. Without ``probe_first`` it is open from the start."""

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

    @contextlib.contextmanager
    def opening(self) -> Iterator[None]:
        """A request of the first file: its answer (or error) settles the gate."""
        try:
            yield
        except BaseException as exc:
            self.settle(exc)
            raise
        self.settle(None)

    def wait(self) -> None:
        """Wait (in a thread) until the gate is open, or the reading is closed; raise the error it holds."""
        while not cast("threading.Event", self.event).wait(_POLL):
            raise_if_cancelled()  # the reading was closed while this page waited
        self.check()

    async def await_open(self) -> None:
        """The async twin of :meth:`wait`."""
        await cast("asyncio.Event", self.event).wait()
        self.check()

    def check(self) -> None:
        if self.error is not None:
            raise copy.copy(self.error)  # the same error, not sent again; each page its own exception object


class _GatedClient:
    """A client whose requests wait at the reading's gate (the files after the first) or open it (the first file)."""

    def __init__(self, client: Any, file: _File) -> None:
        self._client, self._gate, self._first = client, file.gate, file.first

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


class _Gated(_GatedClient):
    def ocr(self, image: Any, **options: Any) -> Any:
        if not self._first:
            self._gate.wait()
            return self._client.ocr(image, **options)
        with self._gate.opening():
            return self._client.ocr(image, **options)


class _AsyncGated(_GatedClient):
    async def ocr(self, image: Any, **options: Any) -> Any:
        if not self._first:
            await self._gate.await_open()
            return await self._client.ocr(image, **options)
        with self._gate.opening():
            return await self._client.ocr(image, **options)


class _Cancelled(Exception):
    """The caller's ``cancel`` event was set."""


@dataclass(frozen=True)
class _Failure:
    """An exception a file's thread or task hands to the consumer, which raises it in its turn."""

    error: BaseException


def _unwrap(message: _T | _Failure) -> _T:
    """``message``, or the exception it hands on, raised."""
    if isinstance(message, _Failure):
        raise message.error
    return message


def _release(slots: threading.Semaphore | asyncio.Semaphore, count: int) -> None:
    for _ in range(count):
        slots.release()


_Q = TypeVar("_Q")


@dataclass
class _Run(Generic[_Q]):
    """A file being read: its slots of the window, and the queue of its results."""

    file: _File
    slots: int
    queue: _Q

"""What a reading is given, expanded into the files it reads: paths, lists, glob patterns, directories, URLs, bytes.

:func:`expand_sources` turns the ``sources`` of :func:`qwen_ocr.read_documents` (and the LangChain loader's
``file_path``, the LlamaIndex reader's inputs, the CLI's arguments) into :class:`SourceItem` objects, lazily and in a
stable order (a pattern's or a directory's files sorted by path). An entry that cannot be expanded (a missing file,
a pattern that matches nothing, an empty directory) becomes an item carrying its typed error, so that the reading
can raise it, skip it or mark it like any other failure. http(s) URLs are downloaded into memory with
:func:`download` / :func:`adownload` (:func:`qwen_ocr.fetch.fetch` / :func:`~qwen_ocr.fetch.afetch`: size cap,
timeout, no credentials sent, non-public hosts refused); ``data:`` URLs are decoded; ``oss://`` URLs (DashScope's
temporary storage, which only the service can read) are passed to the service as one image, and so is any http(s)
URL wrapped in :class:`RemoteImage` (the service downloads it; the client never does).

Example::

    from qwen_ocr.sources import expand_sources

    for item in expand_sources(["scans/*.pdf", "cover.png", ("fax.tiff", fax_bytes)]):
        print(item.label, item.error or "ok")
"""

from __future__ import annotations

import glob as globlib
import hashlib
import io
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union, cast
from urllib.parse import urlsplit, urlunsplit

from .documents import DocumentReadError
from .errors import InvalidArgumentError, QwenOCRError
from .imaging import _decode_data_url, _path_problem

if TYPE_CHECKING:
    from typing import TypeAlias

    import httpx

    from .fetch import afetch as adownload
    from .fetch import fetch as download

__all__ = [
    "DEFAULT_DOWNLOAD_TIMEOUT",
    "DEFAULT_MAX_DOWNLOAD_BYTES",
    "SUPPORTED_EXTENSIONS",
    "Downloads",
    "RemoteImage",
    "Source",
    "SourceItem",
    "Sources",
    "adownload",
    "check_sources",
    "content_key",
    "describe_sources",
    "display_url",
    "download",
    "expand_sources",
    "is_url",
    "named_sources",
]

Source: TypeAlias = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, tuple[str, bytes], IO[bytes], "RemoteImage", "SourceItem"
]
"""One input: a path (or a glob pattern, a directory, an http(s), ``data:`` or ``oss://`` URL), the file's bytes,
``(name, bytes)``, a binary file object, a :class:`RemoteImage` (a URL the service reads itself), or a
:class:`SourceItem` already expanded."""

Sources: TypeAlias = Source | Sequence[Source]
"""One input or a list of them."""

SUPPORTED_EXTENSIONS = (".pdf", ".png", ".jpg", ".jpeg", ".jpe", ".tif", ".tiff", ".bmp", ".webp", ".heic", ".heif")
"""The file names a directory is searched for when no ``glob=`` is given (case-insensitive). Files are recognised
by their bytes when read, never by their names; this only chooses which files of a directory to try."""

DEFAULT_MAX_DOWNLOAD_BYTES = 100 * 1024 * 1024
"""The largest download accepted from a URL (100 MiB)."""

DEFAULT_DOWNLOAD_TIMEOUT = 60.0
"""Seconds allowed for each network step of a download (connect, each read)."""

_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class RemoteImage:
    """An image URL the service downloads itself: passed to it as it is, as one image (one page), never fetched by
    the client. A plain http(s) URL given to :func:`qwen_ocr.read_documents` is downloaded by the client (so that a
    PDF can be split into pages); wrap it in ``RemoteImage`` to have the service read it instead, as a chat message's
    ``image_url`` is read. Nothing about the host is checked here: the request goes from the service, not from this
    machine.

    Attributes:
        url: an http(s) or ``oss://`` URL of one image.

    Raises:
        InvalidArgumentError: ``url`` is not an http(s) or ``oss://`` URL.

    >>> RemoteImage("https://example.com/receipt.jpg").url
    'https://example.com/receipt.jpg'
    >>> RemoteImage("https://user:secret@example.com/a.png")
    RemoteImage('https://example.com/a.png')
    >>> RemoteImage("scans/a.png")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    qwen_ocr.errors.InvalidArgumentError: RemoteImage takes an http(s) or oss:// URL ..., not 'scans/a.png'; ...
    """

    url: str = field(repr=False)

    def __post_init__(self) -> None:
        url = self.url.strip() if isinstance(self.url, str) else None
        if url is None or not (is_url(url) or url[:6].lower() == "oss://"):
            shown = display_url(url) if url is not None and is_url(url) else self.url
            raise InvalidArgumentError(
                f"RemoteImage takes an http(s) or oss:// URL the service can read, not {shown!r}; pass a path or "
                "bytes to read a local file."
            )
        object.__setattr__(self, "url", url)

    def __repr__(self) -> str:
        return f"RemoteImage({self.label!r})"

    @property
    def label(self) -> str:
        """The URL as results and messages show it: without a user name or password."""
        return display_url(self.url) if is_url(self.url) else self.url


@dataclass(frozen=True)
class SourceItem:
    """One file to read, or one entry that could not be expanded.

    Attributes:
        label: what ``metadata["source"]`` says: the path as given (joined to its directory), the URL (without a
            user name or password), or the name given to bytes.
        path: a file on disk (read lazily by the PDF engine).
        data: the file's bytes (bytes given, or a URL once downloaded).
        url: an http(s) URL still to download.
        fileobj: a binary file object, read whole when opened.
        remote: a URL the service reads itself (an ``oss://`` URL, or a :class:`RemoteImage`): sent to it as one
            image, never downloaded by the client.
        error: why the entry could not be expanded; the other fields are then empty.
    """

    label: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    url: str | None = field(default=None, repr=False)
    fileobj: IO[bytes] | None = field(default=None, repr=False)
    remote: str | None = field(default=None, repr=False)
    error: QwenOCRError | None = None

    def document_source(self) -> str | IO[bytes]:
        """What ``open_document`` reads: the path, or a file object named after :attr:`label` (so that errors and
        page results name the source, not ``"bytes"``)."""
        if self.path is not None:
            return str(self.path)
        if self.data is not None:
            return _named(self.data, self.label)
        if self.fileobj is not None:
            return self.fileobj
        raise InvalidArgumentError(f"{self.label} has nothing to read (download it first).")


def _named(data: bytes, name: str) -> IO[bytes]:
    buf = io.BytesIO(data)
    buf.name = name  # BytesIO accepts attributes; open_document names the source after it
    return buf


def is_url(text: str) -> bool:
    """Whether ``text`` is an http(s) URL.

    >>> is_url("https://example.com/a.pdf"), is_url("scans/a.pdf")
    (True, False)
    """
    return text.strip()[:8].lower().startswith(("http://", "https://"))


def display_url(url: str) -> str:
    """The URL without a user name or password, as it may appear in metadata and messages.

    >>> display_url("https://user:secret@example.com/a.pdf?x=1")
    'https://example.com/a.pdf?x=1'
    """
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if ":" in host:  # IPv6
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def expand_sources(
    sources: Sources | Iterable[Source],
    *,
    name: str | None = None,
    recursive: bool = False,
    glob: str | None = None,
    argument: str = "sources",
) -> Iterator[SourceItem]:
    """The files ``sources`` stands for, in order, lazily.

    Args:
        sources: a path, a glob pattern (``"scans/*.pdf"``, ``"**/*.tif"``), a directory, an http(s), ``data:`` or
            ``oss://`` URL, bytes, ``(name, bytes)``, a binary file object, a :class:`RemoteImage`, or a list (any
            iterable) of these.
        name: the name of ``sources`` when it is bytes or a file object (its ``source`` in metadata).
        recursive: look in the subdirectories of a directory too.
        glob: which files of a directory to read (``"*.pdf"``); by default every file with a
            :data:`SUPPORTED_EXTENSIONS` extension. Hidden files (``.name``) are left out.
        argument: what the caller calls ``sources``, for error messages (``"file_path"``).

    Raises:
        InvalidArgumentError: ``sources`` is of a type that cannot be read (the others' errors are in the items).
    """
    check_sources(sources, argument=argument)
    if _is_single(sources):
        yield from _expand_one(cast("Source", sources), name=name, recursive=recursive, pattern=glob, position=None)
        return
    for position, entry in enumerate(cast("Iterable[Source]", sources)):
        if not _is_single(entry):  # an iterator's entries are checked as they come
            raise _wrong_entry(argument, position, entry)
        yield from _expand_one(entry, name=None, recursive=recursive, pattern=glob, position=position)


def check_sources(sources: object, *, argument: str = "sources") -> None:
    """Raise :class:`~qwen_ocr.errors.InvalidArgumentError` now if ``sources`` (or an entry of a list or tuple)
    is of a type that can never be read, rather than when reading starts."""
    if _is_single(sources):
        return
    if isinstance(sources, (list, tuple)):
        for position, entry in enumerate(sources):
            if not _is_single(entry):
                raise _wrong_entry(argument, position, entry)
        return
    if not hasattr(sources, "__iter__") or isinstance(sources, Mapping):
        raise InvalidArgumentError(
            f"{argument} is a {type(sources).__name__}; pass a path, a glob pattern, a directory, a URL, bytes, "
            "(name, bytes), a binary file object, or a list of these."
        )


def describe_sources(sources: object) -> str:
    """``sources`` for a ``repr``: paths and URLs (without credentials) as given, bytes by their size, at most three
    entries of a list.

    >>> describe_sources(["a.pdf", b"1234", ("b.png", b""), "https://u:p@example.com/c.pdf"])
    "['a.pdf', <4 bytes>, ('b.png', <bytes>), ... (4 in all)]"
    """
    if isinstance(sources, (bytes, bytearray, memoryview)):
        return f"<{len(sources)} bytes>"
    if isinstance(sources, (str, os.PathLike)):
        text = os.fspath(sources)
        return repr(display_url(text) if is_url(text) else text)
    if isinstance(sources, tuple) and len(sources) == 2 and isinstance(sources[0], str):
        return f"({sources[0]!r}, <bytes>)"
    if isinstance(sources, RemoteImage):
        return repr(sources)
    if isinstance(sources, (list, tuple)):
        shown = ", ".join(describe_sources(entry) for entry in sources[:3])
        more = f", ... ({len(sources)} in all)" if len(sources) > 3 else ""
        return f"[{shown}{more}]"
    return f"<{type(sources).__name__}>"


def content_key(data: bytes) -> str:
    """The name of content that has none: ``"sha256:"`` and the first 32 hex digits of its SHA-256.

    >>> content_key(b"scan")
    'sha256:59ad1b2fc74287ded1bba7af67765d23'
    """
    return "sha256:" + hashlib.sha256(data).hexdigest()[:32]


def named_sources(inputs: object, *, fs: Any = None, unnamed: set[str] | None = None) -> Iterator[Any]:
    """What :func:`qwen_ocr.read_documents` reads for ``inputs`` (one input or an iterable of them), every entry
    named: paths as they are (on a non-local fsspec filesystem ``fs``, read into memory as they come), bytes and
    binary file objects as ``(name, bytes)``, named after their file object's ``name`` or else after their content
    (:func:`content_key`; those names are added to ``unnamed``). Anything else is passed on, for the reading to
    raise its typed error.

    >>> list(named_sources([b"x", "a.pdf"]))
    [('sha256:2d711642b726b04401627ca9fbac32f5', b'x'), 'a.pdf']
    """
    single = isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview)) or callable(
        getattr(inputs, "read", None)
    )
    for entry in [inputs] if single else cast("Iterable[Any]", inputs):
        if isinstance(entry, (str, os.PathLike)):
            path = os.fsdecode(os.fspath(entry))
            if fs is None or _is_local(fs):
                yield path
            else:
                with fs.open(path, "rb") as handle:
                    yield path, bytes(handle.read())
            continue
        read = getattr(entry, "read", None)
        data = read() if callable(read) else entry
        if not isinstance(data, (bytes, bytearray, memoryview)):
            yield entry
            continue
        label = getattr(entry, "name", None) if callable(read) else None
        if isinstance(label, (str, os.PathLike)):
            yield os.fsdecode(os.fspath(label)), bytes(data)
        else:
            key = content_key(bytes(data))
            if unnamed is not None:
                unnamed.add(key)
            yield key, bytes(data)


def _is_local(fs: Any) -> bool:
    protocol = getattr(fs, "protocol", None)
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return "file" in protocols or "local" in protocols


def _wrong_entry(argument: str, position: int, entry: object) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{argument}[{position}] is a {type(entry).__name__}; each entry must be a path, a URL, a RemoteImage, bytes, "
        "(name, bytes) or a binary file object."
    )


def _is_single(value: object) -> bool:
    if isinstance(value, (str, os.PathLike, bytes, bytearray, memoryview, RemoteImage, SourceItem)):
        return True
    if _is_named_bytes(value):
        return True
    return callable(getattr(value, "read", None))


def _is_named_bytes(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and isinstance(value[0], (str, os.PathLike))
        and isinstance(value[1], (bytes, bytearray, memoryview))
    )


def _expand_one(
    entry: Source, *, name: str | None, recursive: bool, pattern: str | None, position: int | None
) -> Iterator[SourceItem]:
    if isinstance(entry, SourceItem):
        yield entry
        return
    if isinstance(entry, RemoteImage):  # read by the service, never downloaded here
        yield SourceItem(label=entry.label, remote=entry.url)
        return
    if isinstance(entry, (bytes, bytearray, memoryview)):
        label = name or ("<bytes>" if position is None else f"<bytes #{position}>")
        yield SourceItem(label=label, data=bytes(entry))
        return
    if isinstance(entry, tuple):
        label, data = entry
        yield SourceItem(label=os.fspath(label), data=bytes(data))
        return
    if not isinstance(entry, (str, os.PathLike)):
        given = getattr(entry, "name", None)
        label = name or (os.fspath(given) if isinstance(given, (str, os.PathLike)) else "<file object>")
        yield SourceItem(label=str(label), fileobj=entry)
        return
    text = os.fspath(entry)
    if is_url(text):
        url = text.strip()
        yield SourceItem(label=display_url(url), url=url)
        return
    scheme = text.strip()[:6].lower()
    if scheme.startswith("data:"):
        label = name or ("<data: URL>" if position is None else f"<data: URL #{position}>")
        try:
            yield SourceItem(label=label, data=_decode_data_url(text.strip()))
        except QwenOCRError as exc:
            yield SourceItem(label=label, error=exc)
        return
    if scheme == "oss://":
        yield SourceItem(label=text.strip(), remote=text.strip())
        return
    problem = _path_problem(text)
    if problem is not None:
        yield SourceItem(label=text, error=DocumentReadError(f"{problem}.", code="InvalidPath"))
        return
    path = _expand_user(Path(text))
    try:
        os.stat(path)
    except FileNotFoundError:
        pass
    except OSError as exc:  # too long a name, a symlink loop, a file used as a folder, no permission on a folder
        if not (_GLOB_CHARS & set(text)):
            yield SourceItem(
                label=text,
                error=DocumentReadError(f"cannot read {text}: {exc.strerror or exc}.", code="ReadError"),
            )
            return
    else:
        if path.is_dir():
            yield from _expand_directory(text, path, recursive=recursive, pattern=pattern)
        else:
            yield SourceItem(label=text, path=path)  # a FIFO or a device is refused, typed, when it is opened
        return
    if _GLOB_CHARS & set(text):
        yield from _expand_pattern(text)
        return
    yield SourceItem(
        label=text,
        error=DocumentReadError(
            f"no such file: {text} (looked for {path.absolute()}). Check the path and the working directory; a glob "
            "pattern ('scans/*.pdf'), a directory or an http(s) URL works too.",
            code="FileNotFound",
        ),
    )


def _expand_user(path: Path) -> Path:
    """``~`` and ``~user`` expanded; the path as it is when there is no such home directory."""
    try:
        return path.expanduser()
    except RuntimeError:
        return path


def _expand_pattern(pattern: str) -> Iterator[SourceItem]:
    matches = sorted(p for p in globlib.glob(os.path.expanduser(pattern), recursive=True) if os.path.isfile(p))
    if not matches:
        yield SourceItem(
            label=pattern,
            error=DocumentReadError(
                f"the pattern {pattern!r} matches no files (searched from {Path.cwd()}). Check the pattern; "
                "'**' matches subdirectories ('scans/**/*.pdf').",
                code="NoMatches",
            ),
        )
        return
    for match in matches:
        yield SourceItem(label=match, path=Path(match))


def _expand_directory(text: str, path: Path, *, recursive: bool, pattern: str | None) -> Iterator[SourceItem]:
    candidates = path.rglob(pattern or "*") if recursive else path.glob(pattern or "*")
    found: list[tuple[str, Path]] = []
    for candidate in candidates:
        relative = candidate.relative_to(path)
        if any(part.startswith(".") for part in relative.parts) or not candidate.is_file():
            continue
        if pattern is None and candidate.suffix.lower() not in SUPPORTED_EXTENSIONS:
            continue
        found.append((relative.as_posix(), candidate))
    if not found:
        what = f"files matching {pattern!r}" if pattern else "PDF or image files"
        hint = "" if recursive else "; pass recursive=True to look in its subdirectories too"
        yield SourceItem(
            label=text,
            error=DocumentReadError(f"the directory {text} has no {what}{hint}.", code="NoMatches"),
        )
        return
    for shown, found_path in sorted(found):
        yield SourceItem(label=os.path.join(text, shown), path=found_path)


# --------------------------------------------------------------------------------------------------------------
# Downloads


class Downloads:
    """The HTTP clients URLs are downloaded with, made on first use and closed with :meth:`close` / :meth:`aclose`;
    and the download limits (see :func:`download`)."""

    def __init__(
        self,
        *,
        max_bytes: int = DEFAULT_MAX_DOWNLOAD_BYTES,
        timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
        allow_private: bool = False,
    ) -> None:
        self.max_bytes = max_bytes
        self.timeout = timeout
        self.allow_private = allow_private
        self._sync: httpx.Client | None = None
        self._async: httpx.AsyncClient | None = None

    def fetch(self, item: SourceItem) -> SourceItem:
        """The item with its URL downloaded (or the download's error in :attr:`SourceItem.error`)."""
        if item.url is None or item.error is not None:
            return item
        if self._sync is None:
            self._sync = _http_client(self.timeout)
        from .fetch import fetch as download

        try:
            data = download(item.url, client=self._sync, **self._limits())
        except QwenOCRError as exc:
            return replace(item, url=None, error=exc)
        return replace(item, url=None, data=data)

    async def afetch(self, item: SourceItem) -> SourceItem:
        """The async twin of :meth:`fetch`."""
        if item.url is None or item.error is not None:
            return item
        if self._async is None:
            self._async = _http_client(self.timeout, asynchronous=True)
        from .fetch import afetch as adownload

        try:
            data = await adownload(item.url, client=self._async, **self._limits())
        except QwenOCRError as exc:
            return replace(item, url=None, error=exc)
        return replace(item, url=None, data=data)

    def _limits(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "timeout": self.timeout, "allow_private": self.allow_private}

    def close(self) -> None:
        """Close the sync HTTP client."""
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        """Close both HTTP clients."""
        self.close()
        if self._async is not None:
            await self._async.aclose()
            self._async = None


def _http_client(timeout: float, *, asynchronous: bool = False) -> Any:
    import httpx

    # Redirects are followed by qwen_ocr.fetch, one at a time, each checked.
    kind = httpx.AsyncClient if asynchronous else httpx.Client
    return kind(timeout=timeout, follow_redirects=False)


_FETCH = {"download": "fetch", "adownload": "afetch"}


def __getattr__(name: str) -> Any:
    """:func:`download` and :func:`adownload` (:mod:`qwen_ocr.fetch`, and httpx with it) are imported on first use:
    reading local files never loads them (issue 17)."""
    if name not in _FETCH:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import fetch

    value = getattr(fetch, _FETCH[name])
    globals()[name] = value
    return value

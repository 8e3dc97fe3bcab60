"""Transport safeguards shared by the clients and :mod:`qwen_ocr.fetch`: a deadline for a whole exchange, a reply
body read piece by piece under a size cap, and error text that never carries a header value.

The deadline. httpx's timeouts bound each network step (connect, each read, each write), so a server that sends
one byte just before each step's timeout keeps an exchange alive for ever. :class:`Deadline` bounds the exchange
as a whole:

- sync: every network read and write of the exchange gets at most the time left (a read that would wait past the
  deadline times out), checked in the socket call itself, so that a status line or headers dripped one byte at a
  time are cut off too. This works by the ``trace`` extension of httpcore: when a connection is opened for one of
  our requests, its stream's ``read``/``write`` are wrapped to consult the deadline of the exchange running in the
  calling thread (a context variable; nothing changes for exchanges without one). Connections a caller's own
  ``httpx.Client`` opened before are not wrapped: there the deadline is checked between body pieces and each
  step's timeout is shrunk to the time left when the step starts;
- async: the exchange runs under ``asyncio.wait_for`` with the time left.

The time a caller spends between two chunks of a stream is not counted: the deadline bounds the waiting for the
server, not the caller's own work.

The size cap. The body is read raw and inflated here (``gzip``, ``deflate``), at most 64 KiB at a time, so that a
small compressed reply that inflates to gigabytes (a "gzip bomb") is stopped once past the cap, having held about
the cap in memory. Other encodings (which we do not ask for) are inflated by httpx, and capped piece by piece.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import re
import time
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Iterator
from typing import Any, NoReturn, TypeVar

import httpcore
import httpx

from .errors import ResponseDecodeError, ResponseTooLargeError

__all__ = [
    "ACCEPT_ENCODING",
    "DRAIN_SECONDS",
    "Deadline",
    "DeadlineExceeded",
    "aiter_body",
    "aread_body",
    "iter_body",
    "read_body",
    "safe_text",
]

T = TypeVar("T")

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings we ask for: the ones inflated here under the cap (httpx would also offer ``br``/``zstd``)."""

DRAIN_SECONDS = 0.25
"""How long the bytes after a stream's final frame are read (and discarded) before the stream is closed."""

_PIECE = 64 * 1024
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("qwen_ocr_deadline", default=None)
_WRAPPED = "_qwen_ocr_deadline"


class DeadlineExceeded(httpx.TimeoutException):
    """The deadline of a whole exchange passed (raised as an httpx timeout, so it is handled like one)."""


class Deadline:
    """A point in (monotonic) time by which an exchange must be done; ``seconds=None`` means no limit.

    Example::

        deadline = Deadline(30)
        request = client.build_request("GET", url, extensions=deadline.extensions(client.timeout))
        with deadline.active():
            response = client.send(request, stream=True)
    """

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at: float | None = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> float | None:
        """Seconds left (0 when past), or ``None`` without a limit."""
        return None if self.at is None else max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        """Whether the deadline has passed."""
        return self.at is not None and time.monotonic() >= self.at

    def check(self) -> None:
        """Raise :class:`DeadlineExceeded` if the deadline has passed."""
        if self.expired():
            raise DeadlineExceeded(f"the exchange took longer than {self.seconds:g} s in all")

    def extend(self, seconds: float) -> None:
        """Move the deadline ``seconds`` later (time spent outside the exchange, e.g. by a stream's caller)."""
        if self.at is not None:
            self.at += seconds

    def shorten(self, seconds: float) -> None:
        """Bring the deadline to at most ``seconds`` from now."""
        at = time.monotonic() + seconds
        self.at = at if self.at is None else min(self.at, at)

    def timeouts(self, base: httpx.Timeout) -> dict[str, float | None]:
        """httpx's per-step timeouts (``extensions["timeout"]``), each at most the time left."""
        left = self.remaining()
        steps = {"connect": base.connect, "read": base.read, "write": base.write, "pool": base.pool}
        if left is None:
            return steps
        return {name: left if value is None else min(value, left) for name, value in steps.items()}

    def extensions(self, base: httpx.Timeout, *, sync: bool = True) -> dict[str, Any]:
        """Request extensions: the shrunk per-step timeouts, and (sync) the hook that makes every socket read and
        write of the exchange respect the deadline."""
        extensions: dict[str, Any] = {"timeout": self.timeouts(base)}
        if sync and self.at is not None:
            extensions["trace"] = _trace
        return extensions

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Within this block, socket reads and writes in this thread stop at the deadline (sync exchanges)."""
        token = _deadline.set(self.at)
        try:
            yield
        finally:
            _deadline.reset(token)

    async def wait(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` until the deadline at most (async exchanges); :class:`DeadlineExceeded` after it."""
        left = self.remaining()
        if left is None:
            return await awaitable
        if left <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: no "was never awaited" warning
            self.check()
        try:
            return await asyncio.wait_for(awaitable, left)
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"the exchange took longer than {self.seconds:g} s in all") from None

    def pieces(self, source: Iterator[bytes]) -> Iterator[bytes]:
        """``source``'s pieces, each read under the deadline; the time the consumer holds a piece is not counted."""
        while True:
            with self.active():
                self.check()
                try:
                    piece = next(source)
                except StopIteration:
                    return
            handed = time.monotonic()
            yield piece
            self.extend(time.monotonic() - handed)

    async def apieces(self, source: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
        """The async twin of :meth:`pieces`."""
        while True:
            try:
                piece = await self.wait(source.__anext__())
            except StopAsyncIteration:
                return
            handed = time.monotonic()
            yield piece
            self.extend(time.monotonic() - handed)

    def drain(self, pieces: Iterator[bytes]) -> None:
        """Read what follows a stream's final frame for a moment at most (so that a server that ends the body at
        once leaves its connection reusable), discarding it; whatever goes wrong then does not matter."""
        self.shorten(DRAIN_SECONDS)
        with contextlib.suppress(httpx.HTTPError, ResponseTooLargeError, ResponseDecodeError):
            for _ in pieces:
                pass

    async def adrain(self, pieces: AsyncIterator[bytes]) -> None:
        """The async twin of :meth:`drain`."""
        self.shorten(DRAIN_SECONDS)
        with contextlib.suppress(httpx.HTTPError, ResponseTooLargeError, ResponseDecodeError):
            async for _ in pieces:
                pass


def _trace(event: str, info: dict[str, Any]) -> None:
    """httpcore's trace hook: wrap the stream of each new connection (TCP, TLS, proxy tunnel) once."""
    if event.endswith(".complete"):
        stream = info.get("return_value")
        if isinstance(stream, httpcore.NetworkStream) and not getattr(stream, _WRAPPED, False):
            _wrap(stream)


def _wrap(stream: httpcore.NetworkStream) -> None:
    read, write = stream.read, stream.write

    def bounded_read(max_bytes: int, timeout: float | None = None) -> bytes:
        return read(max_bytes, _step(timeout, httpcore.ReadTimeout))

    def bounded_write(buffer: bytes, timeout: float | None = None) -> None:
        write(buffer, _step(timeout, httpcore.WriteTimeout))

    setattr(stream, "read", bounded_read)  # noqa: B010 - an instance attribute in place of the method
    setattr(stream, "write", bounded_write)  # noqa: B010
    setattr(stream, _WRAPPED, True)


def _step(timeout: float | None, error: type[httpcore.TimeoutException]) -> float | None:
    """The timeout of one socket call: the step's own, at most the time left of this thread's exchange."""
    at = _deadline.get()
    if at is None:
        return timeout
    left = at - time.monotonic()
    if left <= 0:
        raise error("the deadline of the whole exchange passed")
    return left if timeout is None else min(timeout, left)


# ----------------------------------------------------------------------------------------------------------------
# Reading a body under a size cap


class _Inflater:
    """Inflates ``gzip``/``deflate`` (or passes ``identity`` through) in pieces of at most 64 KiB."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._raw_fallback = encoding == "deflate"  # "deflate" is zlib-wrapped by the RFC, raw by some servers
        wbits = 16 + zlib.MAX_WBITS if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = None if encoding == "identity" else zlib.decompressobj(wbits)

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            for start in range(0, len(data), _PIECE):
                yield data[start : start + _PIECE]
            return
        pending = data
        while True:
            try:
                out = self._zlib.decompress(pending, _PIECE)
            except zlib.error as exc:
                if self._raw_fallback:
                    self._raw_fallback = False
                    self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                    yield from self.feed(pending)
                    return
                raise ResponseDecodeError(
                    f"the reply's {self.encoding} encoding is corrupt ({exc}).", status_code=None
                ) from None
            self._raw_fallback = False
            if out:
                yield out
            pending = self._zlib.unconsumed_tail
            if not pending and len(out) < _PIECE:  # all input used and no output held back
                return


def _encoding(response: httpx.Response) -> str | None:
    """The body's single encoding when we inflate it ourselves, else ``None`` (httpx does)."""
    value = str(response.headers.get("content-encoding", "")).strip().lower()
    if value in ("", "identity"):
        return "identity"
    if value in ("gzip", "x-gzip", "deflate"):
        return value
    return None


class _Body:
    """A reply's body as it is read: inflated here (``gzip``/``deflate``, or sliced when ``identity``) or by httpx
    (other encodings), and counted against the cap."""

    def __init__(self, response: httpx.Response, limit: int) -> None:
        self.response, self.limit, self.size = response, limit, 0
        encoding = _encoding(response)
        declared = response.headers.get("content-length", "").strip()
        if encoding == "identity" and declared.isdigit() and int(declared) > limit:
            self.fail()
        self.in_memory = response.is_stream_consumed  # read already (a reply built in memory, e.g. by a mock)
        self.raw = encoding is not None  # read raw and inflated here; else decoded by httpx
        kind = "identity" if self.in_memory else encoding
        self._inflater = _Inflater(kind) if kind is not None else None

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``data``; :class:`ResponseTooLargeError` once past the cap."""
        for piece in self._inflater.feed(data) if self._inflater is not None else (data,):
            self.size += len(piece)
            if self.size > self.limit:
                self.fail()
            yield piece

    def fail(self) -> NoReturn:
        raise ResponseTooLargeError(
            f"the reply is larger than {self.limit:,} bytes (decoded); reading stopped there. No OCR reply is that "
            "large: the server misbehaves or is not Qwen-OCR. If you trust it, raise the client's "
            "max_response_bytes.",
            status_code=self.response.status_code,
        )


def iter_body(response: httpx.Response, limit: int) -> Iterator[bytes]:
    """The decoded body of a streamed ``response``, in pieces; :class:`ResponseTooLargeError` once past ``limit``."""
    body = _Body(response, limit)
    if body.in_memory:
        yield from body.feed(response.content)
        return
    for data in response.iter_raw() if body.raw else response.iter_bytes():
        yield from body.feed(data)


async def aiter_body(response: httpx.Response, limit: int) -> AsyncIterator[bytes]:
    """The async twin of :func:`iter_body`."""
    body = _Body(response, limit)
    if body.in_memory:
        for piece in body.feed(response.content):
            yield piece
        return
    async for data in response.aiter_raw() if body.raw else response.aiter_bytes():
        for piece in body.feed(data):
            yield piece


def read_body(pieces: Iterator[bytes]) -> bytes:
    """All of ``pieces`` (from :func:`iter_body`), joined."""
    return b"".join(pieces)


async def aread_body(pieces: AsyncIterator[bytes]) -> bytes:
    """All of ``pieces`` (from :func:`aiter_body`), joined."""
    return b"".join([piece async for piece in pieces])


# ----------------------------------------------------------------------------------------------------------------
# Error text

_HEADER_PROBLEM = re.compile(r"(?is)(illegal header (?:value|name))\b.*")
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+\S+")


def safe_text(text: str) -> str:
    """``text`` without header values: what follows "Illegal header value/name" (h11 quotes the whole header,
    ``Authorization: Bearer <key>`` included) and any ``Bearer``/``Basic`` credential are withheld."""
    text = _HEADER_PROBLEM.sub(r"\1 (withheld: header values may hold credentials)", text)
    return _CREDENTIAL.sub(r"\1 <withheld>", text)


def leaks_header(exc: BaseException) -> bool:
    """Whether the text of ``exc`` or of any exception it chains may quote a header value."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if safe_text(str(current)) != str(current):
            return True
        current = current.__cause__ or current.__context__
    return False

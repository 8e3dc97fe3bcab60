"""The request exchange of both clients, written once and free of I/O.

A *flow* is a generator that yields commands (send this request, read the next piece of the reply, sleep this
long, wait for a request slot, hand this chunk to the caller...) and receives each command's result at its
``yield``; a command that fails has its error thrown in there instead (an httpx error already turned into its
typed error). The flow does no I/O itself: :class:`~qwen_ocr.QwenOCR` runs it with blocking calls and
:class:`~qwen_ocr.AsyncQwenOCR` with awaits, each in a short driver loop, as httpx runs its ``Auth.auth_flow``.
So retries, pacing, the cache, the request slot, the reply-size cap and deadline (through ``Send``/``Read``), the
stream's retry until its first chunk and the content-type handling exist once, here.

Example (what the sync driver does; the async one awaits ``wire.run`` instead)::

    runner = Runner(_exchange.ocr(client, "page.png", {}))
    for command in runner:
        if isinstance(command, Emit):
            yield command.chunk                 # a stream's chunk, to the caller
        else:
            runner.settle(wire.run, command)    # wire: the client's I/O (httpx, sleeps, slots, threads)
    runner.value                                # what the flow returned: the OCRResult
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeAlias, TypeVar

from .errors import APITimeoutError, QwenOCRError
from .imaging import ImageInput, cheap_to_prepare, large_body
from .protocols.base import OCRCall, StreamAssembler
from .results import OCRChunk, OCRResult
from .retry import raise_if_cancelled, retry_delay

if TYPE_CHECKING:
    from ._base import BaseClient
    from .options import OCROptions

__all__ = [
    "ACQUIRE",
    "CLOSE",
    "DRAIN",
    "READ",
    "READ_ALL",
    "Blocking",
    "Command",
    "Do",
    "Emit",
    "Flow",
    "Runner",
    "Send",
    "Sleep",
    "batch_item",
    "local_stream",
    "ocr",
    "prepare",
    "ready",
    "stream",
    "whole_chunk",
]

logger = logging.getLogger("qwen_ocr")

T = TypeVar("T")


class Do(enum.Enum):
    """The commands without arguments."""

    ACQUIRE = "acquire"  # wait for one of the client's request slots; result: the function that frees it
    READ = "read"  # the next piece of the reply's decoded body (capped, under the deadline), or None at its end
    READ_ALL = "read_all"  # the whole decoded body of the reply just sent (likewise); the reply is then closed
    DRAIN = "drain"  # read what follows a stream's final frame for a moment at most; then close the reply
    CLOSE = "close"  # close the reply, if one is open (before waiting to retry)

    @property
    def op(self) -> str:
        """The name of the driver's method that does it."""
        return self.value


ACQUIRE, READ, READ_ALL, DRAIN, CLOSE = Do.ACQUIRE, Do.READ, Do.READ_ALL, Do.DRAIN, Do.CLOSE


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (pacing, or the backoff before a retry); the sync client wakes early when cancelled."""

    op: ClassVar[str] = "sleep"
    seconds: float


@dataclass(frozen=True)
class Send:
    """POST ``content`` to ``url`` under a new deadline of one attempt, closing any reply still open. Result: the
    reply's status and headers; its body is read with ``READ`` / ``READ_ALL``."""

    op: ClassVar[str] = "send"
    url: str
    headers: dict[str, str] = field(repr=False)  # the key is in there
    content: bytes = field(repr=False)


@dataclass(frozen=True)
class Blocking:
    """Run ``work()``: CPU or disk work (preparing an image, the local engine, the cache). Result: its return value.
    The async client runs it in a worker thread."""

    op: ClassVar[str] = "blocking"
    work: Callable[[], Any]


@dataclass(frozen=True)
class Emit:
    """Hand ``chunk`` to the caller of ``stream()``; the flow goes on when the caller asks for the next one."""

    op: ClassVar[str] = "emit"
    chunk: OCRChunk


Command: TypeAlias = "Do | Sleep | Send | Blocking | Emit"
"""Something a flow asks its driver to do; ``command.op`` names the driver's method that does it."""
Flow = Generator[Command, Any, T]
"""A flow: yields commands, receives their results, returns ``T``."""


class Runner(Generic[T]):
    """Steps a flow for a driver: iterate to get each command, :meth:`settle` it (or :meth:`reply` to it).

    An :class:`Emit` the driver does not settle (it handed the chunk on) is replied to with ``None`` when the next
    command is asked for. When the flow returns, iteration ends and :attr:`value` holds what it returned.
    """

    def __init__(self, flow: Flow[T]) -> None:
        self.flow = flow
        self.value: T | None = None
        self.done = False
        self.command: Command | None = None
        self._steps = 0
        self._advance(flow.send, None)

    def __iter__(self) -> Iterator[Command]:
        while not self.done:
            command, steps = self.command, self._steps
            assert command is not None
            yield command
            if self._steps == steps and not self.done:  # not settled (an Emit handed on): go on with the flow
                self.reply(None)

    def settle(self, run: Callable[[Command], Any], command: Command) -> None:
        """Run ``command`` (blocking) and pass its result, or its error, to the flow."""
        try:
            value = run(command)
        except BaseException as exc:
            self.fail(exc)
        else:
            self.reply(value)

    def reply(self, value: Any) -> None:
        """Go on with the flow, ``value`` being the current command's result."""
        self._advance(self.flow.send, value)

    def fail(self, error: BaseException) -> None:
        """Go on with the flow, the current command having raised ``error``: the flow handles it or it propagates."""
        self._advance(self.flow.throw, error)

    def close(self) -> None:
        """End the flow where it stands (its ``finally`` blocks run: request slots are freed)."""
        self.flow.close()

    def _advance(self, step: Callable[[Any], Command], arg: Any) -> None:
        self.command = None
        self._steps += 1
        try:
            self.command = step(arg)
        except StopIteration as stop:
            self.done, self.value = True, stop.value


# ----------------------------------------------------------------------------------------------------------------
# The flows


def ocr(client: BaseClient, image: ImageInput, options: OCROptions) -> Flow[OCRResult]:
    """One reading: prepared, answered from the cache or sent (retried as the policy says), cached."""
    result: OCRResult | None
    if client.provider == "local":
        result = yield Blocking(functools.partial(client._local_ocr, image, options))
        assert result is not None
        return result
    call = yield from prepare(client, image, options)
    send = yield from build_send(client, call, stream=False)
    key = client._cache_key(send.url, send.content, send.headers)
    result = None if key is None else (yield Blocking(functools.partial(client._cache_get, key)))
    if result is None:
        result = yield from _retrying(client, lambda: _attempt(client, call, send))
        if key is not None:
            yield Blocking(functools.partial(client._cache_put, key, result))
    return result._attach_image(image)  # by reference, for display (qwen_ocr.viz)


def batch_item(client: BaseClient, image: ImageInput, options: OCROptions) -> Flow[OCRResult | QwenOCRError]:
    """One item of ``ocr_many``: its result, or its failure as a typed error (never the batch's)."""
    try:
        return (yield from ocr(client, image, options))
    except QwenOCRError as exc:
        return exc
    except Exception as exc:  # one item's failure, whatever it is, never loses the others' results
        return client._item_failure(exc)


def prepare(client: BaseClient, image: ImageInput, options: OCROptions) -> Flow[OCRCall]:
    """The call, its image prepared: CPU work, so blocking work, except for what needs none (a URL, a page
    prepared already)."""
    if cheap_to_prepare(image):  # a URL, a prepared page, a small image: no worker-thread hop (INLINE_PIXELS)
        return client._call(image, **options)
    call: OCRCall = yield Blocking(functools.partial(client._call, image, **options))
    return call


def build_send(client: BaseClient, call: OCRCall, *, stream: bool) -> Flow[Send]:
    """The request to send for ``call``; a large body (base64 and JSON of a big image take milliseconds) is built
    as blocking work, off an event loop (:func:`qwen_ocr.imaging.large_body`)."""
    if not large_body(call.image.nbytes):
        return client._send_command(call, stream=stream)
    send: Send = yield Blocking(functools.partial(client._send_command, call, stream=stream))
    return send


def ready(call: OCRCall) -> Flow[OCRCall]:
    """A call prepared already, as a flow."""
    yield from ()
    return call


def stream(client: BaseClient, preparing: Flow[OCRCall]) -> Flow[None]:
    """A streamed reading: sent and retried until its first chunk, then chunk after chunk to its final frame. One
    request slot is held throughout."""
    call = yield from preparing
    send = yield from build_send(client, call, stream=True)
    free = yield ACQUIRE
    try:
        assembler, first = yield from _retrying(client, lambda: _open_stream(client, call, send))
        for chunk in first:
            yield Emit(chunk)
        if assembler is not None:
            yield from _rest(assembler)
    finally:
        free()


def local_stream(client: BaseClient, image: ImageInput, options: OCROptions) -> Flow[None]:
    """The local engine reads a page whole: one chunk."""
    result = yield Blocking(functools.partial(client._local_ocr, image, options))
    yield Emit(whole_chunk(result))


def whole_chunk(result: OCRResult) -> OCRChunk:
    """A whole reading as the one chunk of a stream: the model's text as written (``raw_text``, what the chunks of
    a real stream add up to), the finish reason and usage."""
    return OCRChunk(
        text=result.raw_text,
        finish_reason=result.finish_reason or "stop",
        usage=result.usage,
        request_id=result.request_id,
    )


def _retrying(client: BaseClient, attempt: Callable[[], Flow[T]]) -> Flow[T]:
    """``attempt()`` until it succeeds or fails for good (not retryable, or out of retries); a cancelled
    :func:`~qwen_ocr.retry.cancel_scope` starts no attempt."""
    number = 0
    while True:
        number += 1
        raise_if_cancelled()
        try:
            return (yield from attempt())
        except Exception as exc:
            delay = retry_delay(client.retry, number, exc)
            if delay is None:
                raise
            logger.info("qwen_ocr: attempt %d failed (%s); retrying in %.2fs", number, exc, delay)
        yield CLOSE
        yield Sleep(delay)


def _paced(client: BaseClient, call: OCRCall) -> Flow[None]:
    """Wait for the pacer's go (rate limits), then check the reading was not cancelled meanwhile."""
    delay = client._pace(call)
    if delay > 0:
        yield Sleep(delay)
    raise_if_cancelled()


def _attempt(client: BaseClient, call: OCRCall, send: Send) -> Flow[OCRResult]:
    """One attempt of a plain reading, in a request slot: paced, sent, read whole; then parsed."""
    free = yield ACQUIRE
    try:
        yield from _paced(client, call)
        status, headers = yield send
        body = yield READ_ALL
    finally:
        free()
    return client._parse_observed(status, headers, body, call)


def _open_stream(client: BaseClient, call: OCRCall, send: Send) -> Flow[tuple[StreamAssembler | None, list[OCRChunk]]]:
    """One attempt of a stream, up to its first chunk: every failure until then is retried (an error status, a
    dropped connection, a garbled reply, an error or the end of the stream before any text). Returns the assembler
    that reads the rest (``None`` when the stream is over already) and the chunks so far."""
    yield from _paced(client, call)
    status, headers = yield send
    if status != 200:
        raise client._refusal(status, (yield READ_ALL), headers)
    if not _is_event_stream(headers):  # the whole reading at once
        return None, [whole_chunk(client._parse(200, headers, (yield READ_ALL), call))]
    assembler = client._assembler(call, headers)
    first: list[OCRChunk] = []
    try:
        while (piece := (yield READ)) is not None:
            first.extend(assembler.feed(piece))
            if first:
                return assembler, first
    except APITimeoutError:
        if not assembler.finished:  # a final frame without text, then silence: the reading is complete
            raise
    first.extend(assembler.close())  # the stream ended before any text: its end is checked here too
    return None, first


def _rest(assembler: StreamAssembler) -> Flow[None]:
    """The chunks after the first, up to the final frame: what a server sends after it (keep-alive comments) is
    not waited for beyond a moment. A deadline hit after the finish reason ends the stream as complete."""
    try:
        while (piece := (yield READ)) is not None:
            for chunk in assembler.feed(piece):
                yield Emit(chunk)
            if assembler.complete:
                yield DRAIN
                return
    except APITimeoutError:
        if not assembler.finished:
            raise
    for chunk in assembler.close():
        yield Emit(chunk)


def _is_event_stream(headers: Mapping[str, str]) -> bool:
    return "text/event-stream" in headers.get("content-type", "text/event-stream")

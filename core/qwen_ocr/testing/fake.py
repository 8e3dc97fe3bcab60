"""A fake transport for your own tests: plug it into ``httpx`` and the client gets the replies you chose.

It answers in the native protocol or the OpenAI-compatible one, depending on the request's path (a path ending in
``/chat/completions`` is compatible), streams when the request asks for a stream, and records every request it
received with its parsed JSON body. No network, no threads.

Example::

    import httpx
    from qwen_ocr import QwenOCR
    from qwen_ocr.testing import FakeTransport

    transport = FakeTransport(["hello"])
    client = QwenOCR(api_key="test", http_client=httpx.Client(transport=transport))
    assert client.ocr("x.png").text == "hello"
    assert transport.requests[0].json["model"] == "qwen-vl-ocr"

    # Structured replies, failures first (retried by the client), then a success:
    transport = FakeTransport(
        [{"text": "...", "fields": {"Total": "12.50"}}],
        errors=[503, "drop"],
    )

    # The same transport works with httpx.AsyncClient and AsyncQwenOCR.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import httpx

from ..errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    QwenOCRError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from ..results import OCRResult, TextLine, Usage
from ..tasks import Task
from ._wire import (
    WireProtocol,
    compatible_error_body,
    compatible_stream_for,
    dumps,
    fake_compatible_response,
    fake_native_response,
    image_tokens_of,
    image_url_of,
    native_error_body,
    native_parts,
    native_sse_frames,
    native_to_compatible,
    native_usage_json,
    new_request_id,
    protocol_of,
    result_to_native,
    task_of,
    wants_stream,
)

__all__ = [
    "FakeReply",
    "FakeRequest",
    "FakeTransport",
    "fake_compatible_response",
    "fake_native_response",
]

FakeReply: TypeAlias = OCRResult | str | Mapping[str, Any] | int | QwenOCRError | httpx.HTTPError | httpx.Response
"""What a :class:`FakeTransport` may answer with:

- ``str``: the model's text;
- ``dict``: ``text`` plus any of ``fields`` (sent as ``kv_result``), ``words_info`` (raw native lines), ``lines``
  (:class:`~qwen_ocr.TextLine` objects), ``usage`` (:class:`~qwen_ocr.Usage` or a raw usage object),
  ``finish_reason``, ``request_id``; or a complete reply body (one with ``output``, ``choices``, ``code`` or
  ``error``), sent as is with HTTP 200;
- :class:`~qwen_ocr.OCRResult`: its ``raw_text``, ``fields``, ``lines``, ``usage``, ``finish_reason``;

  (boxes in ``words_info`` / ``lines`` are, as on the wire, in pixels of the image as *sent*: the client may have
  resized it to a multiple of the model's patch size and maps them back; use an image whose sides are multiples of
  32 to get them back unchanged);
- ``int``: an HTTP error status, answered with the service's error body for it (``429`` is
  ``Throttling.RateQuota``, ``500`` ``InternalError``, ...);
- ``"drop"`` / ``"timeout"`` / ``"garbled"`` (strings with a special meaning only in ``errors=``): a dropped
  connection, a read timeout, a 200 reply that is not JSON;
- a :class:`~qwen_ocr.QwenOCRError`: its status (or the usual one for its class), code and message;
- an ``httpx.HTTPError``: raised, as a transport failure;
- an ``httpx.Response``: returned as is.
"""


@dataclass
class FakeRequest:
    """A request a :class:`FakeTransport` received.

    Attributes:
        method: ``"POST"``.
        url: the full URL.
        path: the URL's path.
        headers: the headers (lower-case names), ``Authorization`` included.
        json: the parsed JSON body (``None`` if it was not JSON).
        protocol: ``"dashscope"`` (native) or ``"openai"`` (compatible), from the path.
        stream: whether the request asked for a stream.
        task: the built-in task asked for (from ``ocr_options``, or recognised from the official prompt).
        image: the image URL sent (an http(s) URL or a ``data:`` URL).
    """

    method: str
    url: str
    path: str
    headers: dict[str, str]
    json: Any
    protocol: WireProtocol
    stream: bool
    task: Task | None = None
    image: str | None = None
    content: bytes = field(default=b"", repr=False)


_CLASS_STATUS: tuple[tuple[type[QwenOCRError], int], ...] = (
    (AuthenticationError, 401),
    (PermissionDeniedError, 403),
    (NotFoundError, 404),
    (RateLimitError, 429),
    (ServerError, 500),
)


class _FrameStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered frame by frame, for both sync and async clients."""

    def __init__(self, frames: Sequence[bytes]) -> None:
        self._frames = list(frames)

    def __iter__(self) -> Iterator[bytes]:
        yield from self._frames

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for frame in self._frames:
            yield frame


class FakeTransport(httpx.MockTransport):
    """An ``httpx`` transport that answers with the replies you chose, in order, and records the requests.

    Works with both ``httpx.Client(transport=...)`` and ``httpx.AsyncClient(transport=...)``.

    Args:
        results: the replies to successive requests (see :data:`FakeReply`); a single reply is accepted too.
            When they run out the last one repeats (``repeat=True``) or the transport raises ``AssertionError``.
        errors: replies sent first, one per request, before ``results`` start (``None`` skips a request):
            an HTTP status, ``"drop"``, ``"timeout"``, ``"garbled"``, a ``QwenOCRError``, an ``httpx`` error.
        model: the model named in compatible-mode replies when the request names none.
        repeat: repeat the last result when they run out.
        chunk_chars: characters per text delta in streamed replies.

    Example::

        transport = FakeTransport(["first", "second"], errors=[429])
        async with httpx.AsyncClient(transport=transport) as http:
            client = AsyncQwenOCR(api_key="test", http_client=http)
            assert (await client.ocr("x.png")).text == "first"      # after one retried 429
        assert len(transport.requests) == 2
    """

    def __init__(
        self,
        results: Sequence[FakeReply] | FakeReply | None = None,
        *,
        errors: Sequence[FakeReply | None] = (),
        model: str = "qwen-vl-ocr",
        repeat: bool = True,
        chunk_chars: int = 8,
    ) -> None:
        super().__init__(self._handle)
        if results is None:
            items: list[FakeReply] = [""]
        elif isinstance(results, (str, bytes, Mapping, OCRResult, int, QwenOCRError, httpx.HTTPError, httpx.Response)):
            items = [results]  # type: ignore[list-item]
        else:
            items = list(results)
        if not items:
            raise ValueError("FakeTransport needs at least one result")
        self._results = items
        self._errors = list(errors)
        self._model = model
        self._repeat = repeat
        self._chunk_chars = chunk_chars
        self._lock = threading.Lock()
        self._next_result = 0
        self.requests: list[FakeRequest] = []
        """Every request received, in order."""

    @property
    def calls(self) -> int:
        """How many requests were received."""
        return len(self.requests)

    def reset(self, results: Sequence[FakeReply] | None = None, *, errors: Sequence[FakeReply | None] = ()) -> None:
        """Forget the requests; start the replies over (with new ones if given)."""
        with self._lock:
            if results is not None:
                self._results = list(results)
            self._errors = list(errors)
            self._next_result = 0
            self.requests.clear()

    # -- handling ----------------------------------------------------------------------------------------------

    def _handle(self, request: httpx.Request) -> httpx.Response:
        content = request.read()
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        protocol = protocol_of(request.url.path)
        headers = {k.lower(): v for k, v in request.headers.items()}
        record = FakeRequest(
            method=request.method,
            url=str(request.url),
            path=request.url.path,
            headers=headers,
            json=body,
            protocol=protocol,
            stream=wants_stream(protocol, headers, body),
            task=task_of(protocol, body),
            image=image_url_of(protocol, body),
            content=content,
        )
        with self._lock:
            index = len(self.requests)
            self.requests.append(record)
            reply: FakeReply | None = self._errors[index] if index < len(self._errors) else None
            if reply is None:
                if self._next_result >= len(self._results):
                    if not self._repeat:
                        raise AssertionError(
                            f"FakeTransport ran out of results: request {index + 1} but only "
                            f"{len(self._results)} result(s) given (pass repeat=True to repeat the last one)."
                        )
                    reply = self._results[-1]
                else:
                    reply = self._results[self._next_result]
                    self._next_result += 1
            from_errors = index < len(self._errors) and self._errors[index] is not None
        return self._answer(request, record, reply, special=from_errors)

    def _answer(
        self, request: httpx.Request, record: FakeRequest, reply: FakeReply, *, special: bool
    ) -> httpx.Response:
        if isinstance(reply, httpx.Response):
            return reply
        if isinstance(reply, httpx.HTTPError):
            if isinstance(reply, httpx.RequestError):
                reply.request = request
            raise reply
        if special and isinstance(reply, str) and reply in ("drop", "timeout", "garbled"):
            return self._special(request, reply)
        if isinstance(reply, bool):
            raise TypeError("a FakeTransport reply cannot be a bool")
        if isinstance(reply, int):
            return self._error(record, reply)
        if isinstance(reply, QwenOCRError):
            return self._from_exception(request, record, reply)
        body = self._native_body(reply)
        if body is None:  # a complete body given as is
            assert isinstance(reply, Mapping)
            return httpx.Response(200, json=dict(reply))
        if isinstance(reply, str) or (isinstance(reply, Mapping) and reply.get("usage") is None):
            body = _billed(body, image_tokens_of(record.protocol, record.json))  # no usage chosen: as billed
        rid = native_parts(body).request_id or new_request_id()
        headers = {"x-request-id": rid}
        model = record.json.get("model") if isinstance(record.json, Mapping) else None
        model = model if isinstance(model, str) else self._model
        if record.protocol == "openai":
            if record.stream:
                frames = compatible_stream_for(
                    body, record.json, model=model, request_id=rid, chunk_chars=self._chunk_chars
                )
                return self._sse(frames, headers)
            return _json_response(200, native_to_compatible(body, model=model, request_id=rid), headers)
        if record.stream:
            return self._sse(native_sse_frames(body, chunk_chars=self._chunk_chars, request_id=rid), headers)
        return _json_response(200, body, headers)

    @staticmethod
    def _sse(frames: Sequence[bytes], headers: Mapping[str, str]) -> httpx.Response:
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream;charset=UTF-8", **headers},
            stream=_FrameStream(frames),
        )

    @staticmethod
    def _native_body(reply: FakeReply) -> dict[str, Any] | None:
        if isinstance(reply, OCRResult):
            return result_to_native(reply)
        if isinstance(reply, str):
            return fake_native_response(reply)
        if isinstance(reply, Mapping):
            if any(key in reply for key in ("output", "choices", "code", "error")):
                return None
            return _native_from_dict(reply)
        raise TypeError(f"unsupported FakeTransport reply: {reply!r}")

    @staticmethod
    def _error(record: FakeRequest, status: int, code: str | None = None, message: str | None = None) -> httpx.Response:
        rid = new_request_id()
        if record.protocol == "openai":
            body = compatible_error_body(status, code=code, message=message, request_id=rid)
        else:
            body = native_error_body(status, code=code, message=message, request_id=rid)
        return _json_response(status, body, {"x-request-id": rid})

    def _from_exception(self, request: httpx.Request, record: FakeRequest, error: QwenOCRError) -> httpx.Response:
        if isinstance(error, APITimeoutError):
            return self._special(request, "timeout")
        if isinstance(error, APIConnectionError):
            return self._special(request, "drop")
        if isinstance(error, ResponseDecodeError):
            return self._special(request, "garbled")
        status = error.status_code
        if status is None:
            status = next((s for cls, s in _CLASS_STATUS if isinstance(error, cls)), 400)
        return self._error(record, status, code=error.code, message=error.message)

    @staticmethod
    def _special(request: httpx.Request, kind: str) -> httpx.Response:
        if kind == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if kind == "timeout":
            raise httpx.ReadTimeout("The read operation timed out (FakeTransport)", request=request)
        return httpx.Response(
            200,
            headers={"content-type": "application/json"},
            content=b'{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assist',
        )


def _json_response(status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> httpx.Response:
    return httpx.Response(
        status,
        headers={"content-type": "application/json", **headers},
        content=dumps(body).encode("utf-8"),
    )


def _billed(body: dict[str, Any], image_tokens: int | None) -> dict[str, Any]:
    """``body`` with the default usage's image tokens replaced by what the service bills for the request's image
    (so that the client's calibration sees a bill that matches its estimate)."""
    usage = body.get("usage")
    if image_tokens is None or not isinstance(usage, Mapping):
        return body
    text_tokens = max(0, int(usage.get("input_tokens", 0)) - int(usage.get("image_tokens", 0)))
    output = int(usage.get("output_tokens", 0))
    billed = Usage(
        input_tokens=image_tokens + text_tokens,
        output_tokens=output,
        image_tokens=image_tokens,
        total_tokens=image_tokens + text_tokens + output,
    )
    return {**body, "usage": native_usage_json(billed)}


def _native_from_dict(reply: Mapping[str, Any]) -> dict[str, Any]:
    fields = reply.get("fields")
    words_info = reply.get("words_info")
    lines = reply.get("lines")
    if words_info is None and lines:
        words_info = [
            {"location": list(line.location), "rotate_rect": list(line.rotate_rect), "text": line.text}
            for line in lines
            if isinstance(line, TextLine)
        ]
    text = reply.get("text")
    if not isinstance(text, str):
        if fields is not None:
            text = "```json\n" + json.dumps(fields, ensure_ascii=False, indent=4) + "\n```"
        elif isinstance(words_info, list):
            text = "\n".join(str(w.get("text", "")) for w in words_info if isinstance(w, Mapping))
        else:
            text = ""
    ocr_result: dict[str, Any] = {}
    if fields is not None:
        ocr_result["kv_result"] = fields
    if words_info is not None:
        ocr_result["words_info"] = words_info
    usage = reply.get("usage")
    return fake_native_response(
        text,
        ocr_result=ocr_result or None,
        usage=usage if isinstance(usage, (Usage, Mapping)) else None,
        finish_reason=str(reply.get("finish_reason") or "stop"),
        request_id=reply.get("request_id"),
    )

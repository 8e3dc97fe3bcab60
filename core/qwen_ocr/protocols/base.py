"""What both wire protocols share: the normalised OCR call, the HTTP request to send, the stream assembler.

A protocol module is three pure functions over these types (``build_request``, ``parse_response``,
``stream_assembler``); the sync and async clients are thin shells that move bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import ResponseDecodeError
from ..imaging import PreparedImage
from ..models import ModelSpec
from ..results import OCRChunk, OCRResult, Usage, build_result
from ..tasks import Task

__all__ = [
    "HTTPRequest",
    "OCRCall",
    "StreamAssembler",
    "as_count",
    "as_finish_reason",
    "call_result",
    "decode_json",
    "generation_options",
]


@dataclass(frozen=True)
class OCRCall:
    """One OCR call, normalised: what to read and how. Built by the client from ``ocr()``'s arguments."""

    image: PreparedImage
    spec: ModelSpec
    task: Task | None = None
    schema: dict[str, Any] | None = None
    prompt: str | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None
    enable_rotate: bool | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    extra_parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def model(self) -> str:
        """The model id sent on the wire."""
        return self.spec.name


@dataclass(frozen=True)
class HTTPRequest:
    """An HTTP request to send: method, path below the base URL, headers (without the key) and JSON body."""

    method: str
    path: str
    headers: dict[str, str]
    json: dict[str, Any]

    def content(self) -> bytes:
        """The body as sent: compact UTF-8 JSON."""
        return json.dumps(self.json, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class StreamAssembler(Protocol):
    """Turns a streamed reply into chunks; raises the typed error of an in-stream error event."""

    @property
    def finished(self) -> bool:
        """Whether the finish reason (or the end marker) has arrived: the text is complete."""

    @property
    def complete(self) -> bool:
        """Whether everything the stream carries has arrived (text, finish reason, usage): the client stops reading
        there, whatever the server sends after it (keep-alive comments)."""

    def feed(self, data: bytes) -> list[OCRChunk]:
        """Chunks completed by these bytes."""

    def close(self) -> list[OCRChunk]:
        """Chunks still pending at end of stream; raises if the stream ended before its last event."""

    def result(self) -> OCRResult:
        """The whole reading, assembled from the chunks seen (available after ``close``)."""


def dashscope_headers(call: OCRCall, *, workspace: str | None, data_inspection: bool) -> dict[str, str]:
    """The ``X-DashScope-*`` headers both protocols send: workspace, content inspection, OSS URL resolution."""
    headers: dict[str, str] = {}
    if workspace:
        headers["X-DashScope-WorkSpace"] = workspace
    if data_inspection:
        headers["X-DashScope-DataInspection"] = "enable"
    if call.image.url.startswith("oss://"):
        headers["X-DashScope-OssResourceResolve"] = "enable"
    return headers


def generation_options(call: OCRCall) -> dict[str, Any]:
    """The generation options both protocols send as given (``max_tokens``, ``temperature``), then
    ``call.extra_parameters``, in this order (the body's bytes key the cache)."""
    options: dict[str, Any] = {}
    if call.max_tokens is not None:
        options["max_tokens"] = call.max_tokens
    if call.temperature is not None:
        options["temperature"] = call.temperature
    options.update(call.extra_parameters)
    return options


def decode_json(content: bytes, *, status: int, request_id: str | None = None) -> Any:
    """Parse a JSON body, or raise ``ResponseDecodeError`` (retryable) naming what came instead."""
    try:
        return json.loads(content)
    except (ValueError, RecursionError):
        snippet = content[:120].decode("utf-8", "replace")
        raise ResponseDecodeError(
            f"the service's reply is not valid JSON (starts with {snippet!r}).",
            status_code=status,
            request_id=request_id,
        ) from None


def as_count(value: Any) -> int:
    """A token count from a reply: non-negative ``int``; anything else (``None``, ``true``, ``NaN``, text) is 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value == value and abs(value) < 1e15:
        return max(0, int(value))
    return 0


def as_finish_reason(value: Any) -> str | None:
    """A finish reason from a reply: a non-empty string other than ``"null"``, else ``None`` (not finished).

    >>> as_finish_reason("stop"), as_finish_reason("null"), as_finish_reason(None)
    ('stop', None, None)
    """
    if not isinstance(value, str) or value in ("", "null"):
        return None
    return value


def call_result(
    call: OCRCall,
    text: str,
    *,
    provider: str,
    finish_reason: str | None,
    usage: Usage,
    request_id: str | None,
    **structured: Any,
) -> OCRResult:
    """The :class:`OCRResult` of the model's ``text`` for ``call``, in the caller's frame (both protocols build
    their results here); ``structured`` is what the native protocol adds (``words_info``, ``kv_result``,
    ``metadata``)."""
    return build_result(
        text,
        task=call.task,
        model=call.model,
        request_id=request_id,
        finish_reason=finish_reason,
        usage=usage,
        scale=call.image.scale,
        image_size=call.image.original_size,
        provider=provider,
        **structured,
    )

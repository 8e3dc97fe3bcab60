"""What both wire protocols share: the normalised OCR call, the HTTP request to send, the stream assembler.

A protocol module is three pure functions over these types (``build_request``, ``parse_response``,
``stream_assembler``); the sync and async clients are thin shells that move bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..budget import PixelBudget, pixel_budget
from ..errors import ResponseDecodeError
from ..imaging import PreparedImage, smart_resize, tokens_for_size
from ..models import ModelSpec
from ..results import NORMALIZED_FRAME, OCRChunk, OCRResult, Usage, build_result
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
    "text_box_frame",
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
    region: str | None = None
    """The region id of the client's host (for error hints: keys are region-bound); ``None`` when not known."""

    @property
    def model(self) -> str:
        """The model id sent on the wire."""
        return self.spec.name

    @property
    def budget(self) -> PixelBudget:
        """The pixel budget the request states (``min_pixels``/``max_pixels`` on the image part): the call's own,
        else the one the image was prepared for, else the default level (:func:`qwen_ocr.budget.pixel_budget`)."""
        min_pixels = self.min_pixels if self.min_pixels is not None else self.image.min_pixels
        max_pixels = self.max_pixels if self.max_pixels is not None else self.image.max_pixels
        return pixel_budget(self.spec, min_pixels=min_pixels, max_pixels=max_pixels)

    @property
    def image_tokens(self) -> int | None:
        """The image tokens this call will be billed for (the sent pixels at :attr:`budget`); ``None`` for an image
        sent by URL (its size is not known here)."""
        if self.image.sent_size is None:
            return None
        budget = self.budget
        return tokens_for_size(
            *self.image.sent_size, model=self.spec, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels
        )


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


def text_box_frame(call: OCRCall) -> tuple[float, float] | None:
    """The frame of the boxes a model writes in its reply's text (``advanced_recognition`` without ``ocr_result``).

    The Qwen3-VL-based 32-px models write 0..1000 on both axes (:data:`~qwen_ocr.results.NORMALIZED_FRAME`); the
    28-px snapshots and self-hosted Qwen2.5-VL write pixels of the image as the model saw it: the sent image after
    the model's ``smart_resize`` to the budget the request states (:attr:`OCRCall.budget`). ``None``
    when that size cannot be known (an image sent by URL).
    """
    if call.spec.box_frame == "normalized":
        return NORMALIZED_FRAME
    if call.image.sent_size is None:
        return None
    width, height = call.image.sent_size
    budget = call.budget
    seen = smart_resize(
        width, height, patch=call.spec.patch, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels
    )
    return (float(seen[0]), float(seen[1]))


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
        text_frame=text_box_frame(call),
        provider=provider,
        **structured,
    )

"""The DashScope native protocol (pure): the request the official SDK sends, and its replies.

``POST /api/v1/services/aigc/multimodal-generation/generation`` with ``{"model", "input": {"messages"},
"parameters"}``; built-in tasks go in ``parameters.ocr_options``; streaming is SSE with ``X-DashScope-SSE: enable``
and ``incremental_output: true``. See the protocol notes for the recorded exchanges this follows.

Example::

    request = build_request(call, stream=False)
    request.path, request.json["parameters"]
    result = parse_response(200, headers, body_bytes, call)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import QwenOCRError, ResponseDecodeError, error_from_response
from ..results import OCRChunk, OCRResult, Usage
from . import base
from .base import HTTPRequest, OCRCall, as_count, decode_json
from .sse import SSEDecoder, SSEEvent

__all__ = ["GENERATION_PATH", "NativeStreamAssembler", "build_request", "parse_response", "parse_usage"]

GENERATION_PATH = "/api/v1/services/aigc/multimodal-generation/generation"


def build_request(
    call: OCRCall,
    *,
    stream: bool = False,
    workspace: str | None = None,
    data_inspection: bool = False,
) -> HTTPRequest:
    """The native request for one call, byte-compatible with what the official ``dashscope`` SDK sends."""
    budget = call.budget  # stated on every request: what the image was prepared for and is estimated at
    image_part: dict[str, Any] = {
        "image": call.image.url,
        "min_pixels": budget.min_pixels,
        "max_pixels": budget.max_pixels,
    }
    if call.enable_rotate is not None:
        image_part["enable_rotate"] = call.enable_rotate
    content: list[dict[str, Any]] = [image_part]
    if call.prompt:
        content.append({"text": call.prompt})

    parameters: dict[str, Any] = {}
    if call.task is not None:
        ocr_options: dict[str, Any] = {"task": call.task.value}
        if call.schema is not None:
            ocr_options["task_config"] = {"result_schema": call.schema}
        parameters["ocr_options"] = ocr_options
    parameters.update(base.generation_options(call))
    if stream:
        parameters["incremental_output"] = True

    headers = {"Content-Type": "application/json; charset=utf-8"}
    if stream:
        headers["Accept"] = "text/event-stream"
        headers["X-Accel-Buffering"] = "no"
        headers["X-DashScope-SSE"] = "enable"
    else:
        headers["Accept"] = "application/json; charset=utf-8"
    headers.update(base.dashscope_headers(call, workspace=workspace, data_inspection=data_inspection))

    body = {
        "model": call.model,
        "input": {"messages": [{"role": "user", "content": content}]},
        "parameters": parameters,
    }
    return HTTPRequest("POST", GENERATION_PATH, headers, body)


def parse_usage(raw: Any) -> Usage:
    """Usage from either the current shape (with ``*_details``) or the older one (without ``total_tokens``)."""
    if not isinstance(raw, Mapping):
        return Usage()

    details = raw.get("input_tokens_details")
    image = as_count(raw.get("image_tokens"))
    if not image and isinstance(details, Mapping):
        image = as_count(details.get("image_tokens"))
    inp = as_count(raw.get("input_tokens"))
    out = as_count(raw.get("output_tokens"))
    total = as_count(raw.get("total_tokens")) or inp + out
    return Usage(input_tokens=inp, output_tokens=out, image_tokens=image, total_tokens=total)


def _raise_for_error_body(status: int, data: Mapping[str, Any], headers: Mapping[str, str] | None) -> None:
    if data.get("code"):
        raise error_from_response(status, data, headers)


def _message_parts(data: Mapping[str, Any], status: int) -> tuple[str, dict[str, Any] | None, str | None, str]:
    """(text, ocr_result, finish_reason, processed_text) of a reply or of one stream frame."""
    output = data.get("output")
    if not isinstance(output, Mapping):
        raise ResponseDecodeError(
            "the service's reply has no 'output' object.", status_code=status, request_id=_rid(data)
        )
    choices = output.get("choices")
    if not isinstance(choices, list) or not choices:
        text = output.get("text")
        if isinstance(text, str):
            return text, None, base.as_finish_reason(output.get("finish_reason")), ""
        raise ResponseDecodeError("the service's reply has no choices.", status_code=status, request_id=_rid(data))
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") if isinstance(choice, Mapping) else None
    content = message.get("content") if isinstance(message, Mapping) else None
    texts: list[str] = []
    processed: list[str] = []
    ocr_result: dict[str, Any] | None = None
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for item in content:
            if not isinstance(item, Mapping):
                continue
            if isinstance(item.get("text"), str):
                texts.append(item["text"])
            if isinstance(item.get("processed_text"), str):
                processed.append(item["processed_text"])
            if isinstance(item.get("ocr_result"), Mapping):
                ocr_result = dict(item["ocr_result"])
    return "".join(texts), ocr_result, base.as_finish_reason(choice.get("finish_reason")), "".join(processed)


def _rid(data: Mapping[str, Any]) -> str | None:
    rid = data.get("request_id")
    return str(rid) if rid else None


def parse_response(status: int, headers: Mapping[str, str] | None, content: bytes, call: OCRCall) -> OCRResult:
    """Read a non-streamed reply: the result, or the typed error it carries (a 200 with ``code`` is an error)."""
    if status != 200:
        raise error_from_response(status, content, headers, region=call.region)
    data = decode_json(content, status=status)
    if not isinstance(data, Mapping):
        raise ResponseDecodeError("the service's reply is JSON but not an object.", status_code=status)
    _raise_for_error_body(status, data, headers)
    text, ocr_result, finish_reason, processed = _message_parts(data, status)
    return _result(call, text, ocr_result, finish_reason, parse_usage(data.get("usage")), _rid(data), processed)


def _result(
    call: OCRCall,
    text: str,
    ocr_result: Mapping[str, Any] | None,
    finish_reason: str | None,
    usage: Usage,
    request_id: str | None,
    processed: str,
) -> OCRResult:
    structured = ocr_result or {}
    return base.call_result(
        call,
        text,
        provider="dashscope",
        finish_reason=finish_reason,
        usage=usage,
        request_id=request_id,
        words_info=structured.get("words_info"),
        kv_result=structured.get("kv_result"),
        metadata={"processed_text": processed} if processed else {},
    )


class NativeStreamAssembler:
    """Turns the native SSE stream into :class:`OCRChunk` deltas and, at the end, the whole :class:`OCRResult`."""

    def __init__(self, call: OCRCall, headers: Mapping[str, str] | None = None) -> None:
        self._call = call
        self._headers = headers
        self._decoder = SSEDecoder()
        self._texts: list[str] = []
        self._processed: list[str] = []
        self._ocr_result: dict[str, Any] | None = None
        self._usage = Usage()
        self._request_id: str | None = None
        self._finish_reason: str | None = None

    @property
    def finished(self) -> bool:
        """Whether the last frame (with a finish reason) has arrived."""
        return self._finish_reason is not None

    @property
    def complete(self) -> bool:
        """Whether the stream has said all it has to say: the last frame carries the finish reason and the usage."""
        return self.finished

    def feed(self, data: bytes) -> list[OCRChunk]:
        """Chunks completed by these bytes; raises the typed error of an ``event:error`` frame."""
        try:
            events = self._decoder.feed(data)
        except ValueError as exc:
            raise ResponseDecodeError(f"the stream is not valid SSE: {exc}", status_code=200) from None
        return [chunk for event in events if (chunk := self._event(event)) is not None]

    def close(self) -> list[OCRChunk]:
        """Flush a last event that lacked its blank line; raise if the stream ended before its final frame."""
        try:
            chunks = [chunk for event in self._decoder.close() if (chunk := self._event(event)) is not None]
        except ResponseDecodeError:
            if self.finished:
                raise
            chunks = []  # a half-written last frame: the stream was cut, said below
        if not self.finished:
            raise ResponseDecodeError(
                "the stream ended before the service sent its final frame (connection cut mid-way); "
                "the text so far is incomplete.",
                status_code=200,
                request_id=self._request_id,
            )
        return chunks

    def result(self) -> OCRResult:
        """Everything streamed, as one result with its views."""
        return _result(
            self._call,
            "".join(self._texts),
            self._ocr_result,
            self._finish_reason,
            self._usage,
            self._request_id,
            "".join(self._processed),
        )

    def _event(self, event: SSEEvent) -> OCRChunk | None:
        if not event.data.strip():
            if event.event == "error":
                raise error_from_response(event.status or 500, b"", self._headers)
            return None
        try:
            data = json.loads(event.data)
        except (ValueError, RecursionError):
            if event.event == "error":
                raise error_from_response(event.status or 500, event.data, self._headers) from None
            raise ResponseDecodeError(
                f"a stream frame is not valid JSON: {event.data[:120]!r}", status_code=200
            ) from None
        if not isinstance(data, Mapping):
            raise ResponseDecodeError("a stream frame is JSON but not an object.", status_code=200)
        status = event.status or 200
        if event.event == "error" or data.get("code") or status >= 400:
            raise error_from_response(status if status >= 400 else 400, data, self._headers)
        self._request_id = _rid(data) or self._request_id
        try:
            text, ocr_result, finish, processed = _message_parts(data, 200)
        except QwenOCRError:
            raise
        if ocr_result:
            self._ocr_result = ocr_result
        if processed:
            self._processed.append(processed)
        if "usage" in data:
            self._usage = parse_usage(data.get("usage"))
        self._texts.append(text)
        if finish:
            self._finish_reason = finish
        return OCRChunk(text=text, finish_reason=finish, usage=self._usage, request_id=self._request_id)

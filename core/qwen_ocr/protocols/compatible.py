"""The OpenAI-compatible protocol (pure): chat completions with an image part and the task's official prompt.

``POST /compatible-mode/v1/chat/completions`` on DashScope; the same protocol is what self-hosted Qwen2.5-VL /
Qwen3-VL servers speak (vLLM and SGLang serve it at ``/v1/chat/completions``, Ollama too): pass
``path=SELF_HOSTED_PATH`` (or any path) to :func:`build_request` for them, and use the model name the server
serves (register it with :func:`qwen_ocr.register_model`).

Built-in tasks are not parameters here: the task's official prompt (``Task.prompt(schema)``) is sent as the text
part, and the views (tables, fields, LaTeX, formulas, text lines) are parsed from the reply's text by
:func:`qwen_ocr.results.build_result`, exactly as for the native protocol. ``enable_rotate`` has no equivalent
and is not sent. Streaming adds ``"stream": true`` and ``"stream_options": {"include_usage": true}``; the reply is
``data: {chunk}`` frames ending with ``data: [DONE]``, the usage in a last chunk with ``"choices": []``.

Example::

    request = build_request(call, stream=False)                 # DashScope compatible mode
    request.path                                                # '/compatible-mode/v1/chat/completions'
    request = build_request(call, path=SELF_HOSTED_PATH)        # vLLM / SGLang: '/v1/chat/completions'
    result = parse_response(200, headers, body_bytes, call)     # OCRResult(provider='openai', ...)

    assembler = OpenAIStreamAssembler(call, headers)
    for data in byte_chunks:
        for chunk in assembler.feed(data):
            print(chunk.text, end="")
    assembler.close()
    assembler.result().usage
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..errors import ResponseDecodeError, error_from_response, header_value
from ..results import OCRChunk, OCRResult, Usage
from ..tasks import Task
from . import base
from .base import HTTPRequest, OCRCall, as_count, decode_json
from .sse import SSEDecoder, SSEEvent

__all__ = [
    "COMPAT_PATH",
    "SELF_HOSTED_PATH",
    "OpenAIStreamAssembler",
    "build_request",
    "parse_response",
    "parse_usage",
    "prompt_for",
]

COMPAT_PATH = "/compatible-mode/v1/chat/completions"
"""DashScope's OpenAI-compatible chat completions, below the region's host."""

SELF_HOSTED_PATH = "/v1/chat/completions"
"""Where vLLM, SGLang and Ollama serve chat completions (below ``http://host:port``)."""


def prompt_for(call: OCRCall) -> str:
    """The text part for a call: the task's official prompt; else the custom prompt; else plain text recognition.

    With a model whose tasks combine with a prompt (``qwen3.5-ocr``), :func:`build_request` sends the custom prompt
    as a second text part after the task's; other models' tasks override it (the client logs that once).

    >>> from qwen_ocr.imaging import PreparedImage
    >>> from qwen_ocr.models import model_spec
    >>> call = OCRCall(image=PreparedImage(url="https://x/a.png"), spec=model_spec("qwen-vl-ocr"), prompt="Hi")
    >>> prompt_for(call)
    'Hi'
    """
    if call.task is not None:
        return call.task.prompt(call.schema)
    if call.prompt:
        return call.prompt
    return Task.TEXT_RECOGNITION.prompt()


def build_request(
    call: OCRCall,
    *,
    stream: bool = False,
    workspace: str | None = None,
    data_inspection: bool = False,
    path: str = COMPAT_PATH,
) -> HTTPRequest:
    """The chat-completions request for one call, shaped like what the official ``openai`` SDK sends.

    Args:
        call: the normalised call.
        stream: ask for an SSE stream (``stream`` plus ``stream_options.include_usage``).
        workspace: a DashScope workspace id (``X-DashScope-WorkSpace``).
        data_inspection: ask DashScope for content inspection (``X-DashScope-DataInspection: enable``).
        path: the path below the base URL: :data:`COMPAT_PATH` for DashScope, :data:`SELF_HOSTED_PATH` for vLLM,
            SGLang or Ollama.

    ``min_pixels`` / ``max_pixels`` (:attr:`OCRCall.budget`, always) ride on the image part as DashScope expects;
    ``enable_rotate`` has no compatible-mode equivalent and is not sent; ``call.extra_parameters`` are merged into
    the body.
    """
    budget = call.budget  # stated on every request: what the image was prepared for and is estimated at
    image_part: dict[str, Any] = {
        "type": "image_url",
        "image_url": {"url": call.image.url},
        "min_pixels": budget.min_pixels,
        "max_pixels": budget.max_pixels,
    }
    content: list[dict[str, Any]] = [image_part, {"type": "text", "text": prompt_for(call)}]
    if call.task is not None and call.prompt and call.spec.task_prompt_combines:
        content.append({"type": "text", "text": call.prompt})  # qwen3.5-ocr: the task and the prompt together

    body: dict[str, Any] = {"model": call.model}
    if stream:
        body["stream"] = True
    body["messages"] = [{"role": "user", "content": content}]
    body.update(base.generation_options(call))
    if stream:
        body["stream_options"] = {"include_usage": True}

    headers = {"Content-Type": "application/json", "Accept": "text/event-stream" if stream else "application/json"}
    headers.update(base.dashscope_headers(call, workspace=workspace, data_inspection=data_inspection))
    return HTTPRequest("POST", path if path.startswith("/") else "/" + path, headers, body)


def parse_usage(raw: Any) -> Usage:
    """Usage of a chat completion: ``prompt_tokens``, ``completion_tokens``, ``prompt_tokens_details.image_tokens``.

    A native-shaped usage (``input_tokens``, ``output_tokens``), as some gateways pass through, is read too.

    >>> parse_usage({"prompt_tokens": 519, "completion_tokens": 58, "total_tokens": 577,
    ...              "prompt_tokens_details": {"image_tokens": 310}})
    Usage(input_tokens=519, output_tokens=58, image_tokens=310, total_tokens=577)
    """
    if not isinstance(raw, Mapping):
        return Usage()
    if "prompt_tokens" not in raw and "completion_tokens" not in raw and "input_tokens" in raw:
        from .native import parse_usage as native_usage

        return native_usage(raw)
    inp = as_count(raw.get("prompt_tokens"))
    out = as_count(raw.get("completion_tokens"))
    details = raw.get("prompt_tokens_details")
    image = as_count(details.get("image_tokens")) if isinstance(details, Mapping) else 0
    if not image:
        image = as_count(raw.get("image_tokens"))
    total = as_count(raw.get("total_tokens")) or inp + out
    return Usage(input_tokens=inp, output_tokens=out, image_tokens=image, total_tokens=total)


def _rid(data: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> str | None:
    """The request id: the body's ``request_id``, else its ``id``, else the ``x-request-id`` header."""
    rid = data.get("request_id") or data.get("id") or header_value(headers, "x-request-id")
    return str(rid) if rid else None


def _text_of(content: Any) -> str:
    """A message's or delta's content: a string, or a list of ``{"type": "text", "text": ...}`` parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for item in content:
            if isinstance(item, str):
                parts.append(item)
            elif isinstance(item, Mapping) and isinstance(item.get("text"), str):
                parts.append(item["text"])
        return "".join(parts)
    return ""


def _is_error_body(data: Mapping[str, Any]) -> bool:
    return bool(data.get("error")) or (bool(data.get("code")) and "choices" not in data)


def parse_response(status: int, headers: Mapping[str, str] | None, content: bytes, call: OCRCall) -> OCRResult:
    """Read a non-streamed chat completion: the result, or the typed error its body carries.

    Both error bodies are understood: the compatible one (``{"error": {"code", "message", "type"}}``) and the
    native one (``{"code", "message", "request_id"}``), also when they come with HTTP 200.
    """
    if status != 200:
        raise error_from_response(status, content, headers, region=call.region)
    data = decode_json(content, status=status, request_id=header_value(headers, "x-request-id"))
    if not isinstance(data, Mapping):
        raise ResponseDecodeError("the service's reply is JSON but not an object.", status_code=status)
    if _is_error_body(data):
        raise error_from_response(status, data, headers)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        raise ResponseDecodeError(
            "the service's reply has no choices.", status_code=status, request_id=_rid(data, headers)
        )
    choice = choices[0]
    message = choice.get("message")
    text = _text_of(message.get("content")) if isinstance(message, Mapping) else ""
    return _result(
        call,
        text,
        base.as_finish_reason(choice.get("finish_reason")),
        parse_usage(data.get("usage")),
        _rid(data, headers),
    )


def _result(call: OCRCall, text: str, finish_reason: str | None, usage: Usage, request_id: str | None) -> OCRResult:
    return base.call_result(
        call, text, provider="openai", finish_reason=finish_reason, usage=usage, request_id=request_id
    )


_SERVER_ERROR_WORDS = ("internal", "server_error", "system_error", "unavailable", "timeout", "overloaded")


def _in_stream_status(event: SSEEvent, data: Mapping[str, Any]) -> int | None:
    """The HTTP status an in-stream error stands for: its ``:HTTP_STATUS/`` comment, else a guess from its code."""
    if event.status is not None and event.status >= 400:
        return event.status
    nested = data.get("error")
    source = nested if isinstance(nested, Mapping) else data
    words = f"{source.get('code') or ''} {source.get('type') or ''}".lower()
    if any(word in words for word in _SERVER_ERROR_WORDS):
        return 500
    if "rate_limit" in words or "throttling" in words:
        return 429
    return None


class OpenAIStreamAssembler:
    """Turns a chat-completions SSE stream into :class:`OCRChunk` deltas and, at the end, the :class:`OCRResult`.

    ``data: [DONE]`` ends the stream. The chunk that carries ``finish_reason`` is held back until the usage
    chunk (``"choices": []``) or ``[DONE]`` arrives, so that exactly one chunk, the last, has both
    ``finish_reason`` and ``usage``. An error frame (``data: {"error": {...}}``, or ``event: error`` with a flat
    body) raises its typed error; a stream that ends with neither ``[DONE]`` nor a finish reason raises
    :class:`~qwen_ocr.ResponseDecodeError`.

    Example::

        assembler = OpenAIStreamAssembler(call, response.headers)
        for data in response.iter_bytes():
            for chunk in assembler.feed(data):
                print(chunk.text, end="")
        assembler.close()
        result = assembler.result()
    """

    def __init__(self, call: OCRCall, headers: Mapping[str, str] | None = None) -> None:
        self._call = call
        self._headers = headers
        self._decoder = SSEDecoder()
        self._texts: list[str] = []
        self._usage: Usage | None = None
        self._header_rid: str | None = header_value(headers, "x-request-id")
        self._body_rid: str | None = None
        self._finish_reason: str | None = None
        self._held: OCRChunk | None = None
        self._done = False
        self._usage_after_finish = False

    @property
    def _request_id(self) -> str | None:
        return self._body_rid or self._header_rid

    @property
    def finished(self) -> bool:
        """Whether ``[DONE]`` or a finish reason has arrived."""
        return self._done or self._finish_reason is not None

    @property
    def complete(self) -> bool:
        """Whether the stream has said all it has to say: ``[DONE]``, or the finish reason and then the usage
        chunk (which releases the held final chunk)."""
        return self._done or self._usage_after_finish

    def feed(self, data: bytes) -> list[OCRChunk]:
        """Chunks completed by these bytes; raises the typed error of an in-stream error frame."""
        try:
            events = self._decoder.feed(data)
        except ValueError as exc:
            raise ResponseDecodeError(f"the stream is not valid SSE: {exc}", status_code=200) from None
        return self._events(events)

    def close(self) -> list[OCRChunk]:
        """Flush a last frame that lacked its blank line; raise if the stream ended before it finished."""
        chunks = self._events(self._decoder.close())
        if not self.finished:
            raise ResponseDecodeError(
                "the stream ended before the server sent its last chunk or [DONE] (connection cut mid-way); "
                "the text so far is incomplete.",
                status_code=200,
                request_id=self._request_id,
            )
        chunks.extend(self._release())
        return chunks

    def result(self) -> OCRResult:
        """Everything streamed, as one result with its views."""
        return _result(self._call, "".join(self._texts), self._finish_reason, self._usage or Usage(), self._request_id)

    def _events(self, events: list[SSEEvent]) -> list[OCRChunk]:
        chunks: list[OCRChunk] = []
        for event in events:
            chunks.extend(self._event(event))
        return chunks

    def _release(self) -> list[OCRChunk]:
        held, self._held = self._held, None
        if held is None:
            return []
        return [held.model_copy(update={"usage": self._usage or held.usage, "request_id": self._request_id})]

    def _event(self, event: SSEEvent) -> list[OCRChunk]:
        payload = event.data.strip()
        if self._done:
            return []
        if not payload:
            if event.event == "error":
                raise error_from_response(event.status or 500, b"", self._headers)
            return []
        if payload == "[DONE]":
            self._done = True
            return self._release()
        try:
            data = json.loads(payload)
        except (ValueError, RecursionError):
            if event.event == "error":
                raise error_from_response(event.status or 500, payload, self._headers) from None
            raise ResponseDecodeError(f"a stream frame is not valid JSON: {payload[:120]!r}", status_code=200) from None
        if not isinstance(data, Mapping):
            raise ResponseDecodeError("a stream frame is JSON but not an object.", status_code=200)
        if event.event == "error" or _is_error_body(data) or (event.status is not None and event.status >= 400):
            raise error_from_response(_in_stream_status(event, data), data, self._headers)
        rid = data.get("request_id") or data.get("id")
        if rid and not self._body_rid:
            self._body_rid = str(rid)
        if isinstance(data.get("usage"), Mapping):
            self._usage = parse_usage(data["usage"])
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            # The usage chunk of include_usage (or a keep-alive): it completes the held final chunk.
            if self._usage is None:
                return []
            self._usage_after_finish = self._finish_reason is not None
            return self._release()
        choice = choices[0] if isinstance(choices[0], Mapping) else {}
        delta = choice.get("delta")
        if not isinstance(delta, Mapping):
            delta = choice.get("message")
        text = _text_of(delta.get("content")) if isinstance(delta, Mapping) else ""
        finish = base.as_finish_reason(choice.get("finish_reason"))
        self._texts.append(text)
        chunks = self._release()  # a finish chunk followed by more text: let it go first
        if finish:
            self._finish_reason = finish
            self._held = OCRChunk(text=text, finish_reason=finish, usage=self._usage, request_id=self._request_id)
            return chunks
        if text:
            chunks.append(OCRChunk(text=text, usage=self._usage, request_id=self._request_id))
        return chunks

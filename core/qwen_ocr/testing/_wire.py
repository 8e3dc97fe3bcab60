"""Reply bodies and stream frames of both protocols, shared by the fake transport and the emulator (pure).

Everything here builds what the service sends: native bodies (``{"output", "usage", "request_id"}``), compatible
chat completions, error bodies of both shapes, and SSE frames in the framing of recorded streams.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal

from ..results import OCRResult, Usage
from ..tasks import TASK_PROMPTS, Task

__all__ = [
    "COMPAT_PATHS",
    "ERROR_CODES",
    "NATIVE_PATH",
    "RECORDINGS",
    "NativeParts",
    "WireProtocol",
    "compatible_error_body",
    "compatible_frame",
    "compatible_sse_frames",
    "compatible_stream_for",
    "compatible_usage_json",
    "decode_data_url",
    "default_usage",
    "dumps",
    "fake_compatible_response",
    "fake_native_response",
    "image_digest",
    "image_tokens_of",
    "image_url_of",
    "load_recording",
    "native_error_body",
    "native_frame",
    "native_parts",
    "native_sse_frames",
    "native_to_compatible",
    "native_usage_json",
    "new_request_id",
    "protocol_of",
    "result_to_native",
    "split_text",
    "task_from_prompt",
    "task_of",
    "wants_stream",
]

WireProtocol = Literal["dashscope", "openai"]

NATIVE_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
COMPAT_PATHS = ("/compatible-mode/v1/chat/completions", "/v1/chat/completions")

RECORDINGS: dict[Task | None, str] = {
    Task.ADVANCED_RECOGNITION: "cnblogs/multimodal-generation-vl-ocr-advanced-recognition-nosse.response.body.txt",
    Task.KEY_INFORMATION_EXTRACTION: (
        "cnblogs/multimodal-generation-vl-ocr-key-information-extraction-nosse.response.body.txt"
    ),
    Task.TEXT_RECOGNITION: "docs/native_text_recognition.response.json",
    Task.TABLE_PARSING: "docs/native_table_parsing.response.json",
    Task.DOCUMENT_PARSING: "docs/native_document_parsing.response.json",
    Task.FORMULA_RECOGNITION: "docs/native_formula_recognition.response.json",
    Task.MULTI_LAN: "docs/native_multi_lan.response.json",
    None: "cnblogs/multimodal-generation-vl-ocr-nosse.response.body.txt",
}
"""The recorded native reply the emulator answers with, by task (``None``: no task, or a custom prompt)."""

ERROR_CODES: dict[int, tuple[str, str]] = {
    400: ("InvalidParameter", "Required parameter(s) missing or invalid, please check the request parameters."),
    401: ("InvalidApiKey", "Invalid API-key provided."),
    403: ("AccessDenied", "Access denied."),
    404: ("ModelNotFound", "Model can not be found."),
    408: ("RequestTimeOut", "Request timed out, please try again later."),
    413: ("BadRequest.TooLarge", "Payload Too Large."),
    415: ("BadRequest.UnsupportedFileFormat", "Input file format is not supported."),
    429: ("Throttling.RateQuota", "Requests rate limit exceeded, please try again later."),
    500: ("InternalError", "An internal error has occured, please try again later or contact service support."),
    502: ("InternalError", "An internal error has occured, please try again later or contact service support."),
    503: ("ModelUnavailable", "Model is unavailable, please try again later."),
    504: (
        "InternalError.Timeout",
        "An internal timeout error has occured during execution, please try again later or contact service support.",
    ),
}
"""Code and message the service sends for each HTTP status (the vendor's error-code table)."""

_CACHE: dict[str, bytes] = {}


def load_recording(name: str) -> dict[str, Any]:
    """A recorded reply shipped in ``qwen_ocr/testing/recordings`` (a fresh copy each call; BOM stripped).

    >>> load_recording("docs/native_multi_lan.response.json")["usage"]["image_tokens"]
    8194
    """
    raw = _CACHE.get(name)
    if raw is None:
        raw = resources.files("qwen_ocr.testing").joinpath("recordings", *name.split("/")).read_bytes()
        _CACHE[name] = raw
    data = json.loads(raw.decode("utf-8-sig"))
    if not isinstance(data, dict):
        raise ValueError(f"recording {name} is not a JSON object")
    return data


def new_request_id() -> str:
    """A fresh request id in the service's format (a UUID)."""
    return str(uuid.uuid4())


def dumps(value: Any) -> str:
    """Compact JSON with UTF-8 text kept as is, as the service writes it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# ----------------------------------------------------------------------------------------------------------------
# Requests


def protocol_of(path: str) -> WireProtocol:
    """``"openai"`` for a chat-completions path, else ``"dashscope"``."""
    return "openai" if path.split("?", 1)[0].rstrip("/").endswith("/chat/completions") else "dashscope"


def wants_stream(protocol: WireProtocol, headers: Mapping[str, str], body: Any) -> bool:
    """Whether a request asks for a stream: ``X-DashScope-SSE: enable`` (native) or ``"stream": true``."""
    if protocol == "openai":
        return isinstance(body, Mapping) and body.get("stream") is True
    return any(key.lower() == "x-dashscope-sse" and value.strip().lower() == "enable" for key, value in headers.items())


def _user_content(protocol: WireProtocol, body: Any) -> list[Any]:
    if not isinstance(body, Mapping):
        return []
    messages = body.get("messages") if protocol == "openai" else None
    if protocol == "dashscope":
        inp = body.get("input")
        messages = inp.get("messages") if isinstance(inp, Mapping) else None
    if not isinstance(messages, list):
        return []
    for message in messages:
        if isinstance(message, Mapping) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return content
            if isinstance(content, str):
                return [{"type": "text", "text": content}]
    return []


def image_url_of(protocol: WireProtocol, body: Any) -> str | None:
    """The image of a request: ``content[].image`` (native) or ``content[].image_url.url`` (compatible)."""
    for part in _user_content(protocol, body):
        if not isinstance(part, Mapping):
            continue
        if protocol == "dashscope" and isinstance(part.get("image"), str):
            return str(part["image"])
        if protocol == "openai":
            image_url = part.get("image_url")
            if isinstance(image_url, Mapping) and isinstance(image_url.get("url"), str):
                return str(image_url["url"])
            if isinstance(image_url, str):
                return image_url
    return None


def image_tokens_of(protocol: WireProtocol, body: Any) -> int | None:
    """The image tokens the service bills for a request's inline image: its pixels at the budget the request
    states (``min_pixels``/``max_pixels`` on the image part), ``pixels / patch**2 + 2``; ``None`` for an image sent
    by URL or one that cannot be read."""
    for part in _user_content(protocol, body):
        if not isinstance(part, Mapping):
            continue
        url = part.get("image") if protocol == "dashscope" else part.get("image_url")
        if isinstance(url, Mapping):
            url = url.get("url")
        if not isinstance(url, str):
            continue
        data = decode_data_url(url)
        if data is None:
            return None
        import io

        from PIL import Image

        from ..imaging import tokens_for_size

        try:
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size
        except Exception:
            return None
        bounds = [part.get(name) for name in ("min_pixels", "max_pixels")]
        min_pixels, max_pixels = (
            v if isinstance(v, int) and not isinstance(v, bool) and v > 0 else None for v in bounds
        )
        model = body.get("model") if isinstance(body, Mapping) else None
        try:
            return tokens_for_size(
                width, height, model=str(model or "qwen-vl-ocr"), min_pixels=min_pixels, max_pixels=max_pixels
            )
        except Exception:
            return None
    return None


def _prompt_of(protocol: WireProtocol, body: Any) -> str | None:
    for part in _user_content(protocol, body):
        if isinstance(part, Mapping) and isinstance(part.get("text"), str):
            return str(part["text"])
    return None


_KIE_SCHEMA_PREFIX = Task.KEY_INFORMATION_EXTRACTION.prompt({"k": ""}).split("{", 1)[0]


def task_from_prompt(prompt: str | None) -> Task | None:
    """The built-in task whose official prompt this is (``text_recognition`` for the plain prompt, which
    ``multi_lan`` shares, and for no prompt at all); ``None`` for a custom prompt.

    >>> task_from_prompt(Task.TABLE_PARSING.prompt()).value
    'table_parsing'
    >>> task_from_prompt("What does the sign say?") is None
    True
    """
    if prompt is None:
        return Task.TEXT_RECOGNITION
    text = prompt.strip()
    for task, official in TASK_PROMPTS.items():
        if text == official:
            return task
    if text.startswith(_KIE_SCHEMA_PREFIX):
        return Task.KEY_INFORMATION_EXTRACTION
    return None


def task_of(protocol: WireProtocol, body: Any) -> Task | None:
    """The task a request asks for: ``parameters.ocr_options.task`` (native), the official prompt (compatible)."""
    if protocol == "openai":
        return task_from_prompt(_prompt_of(protocol, body))
    params = body.get("parameters") if isinstance(body, Mapping) else None
    options = params.get("ocr_options") if isinstance(params, Mapping) else None
    value = options.get("task") if isinstance(options, Mapping) else None
    if isinstance(value, str):
        try:
            return Task(value)
        except ValueError:
            return None
    return None


def decode_data_url(url: str) -> bytes | None:
    """The bytes of a ``data:...;base64,`` URL, or ``None``."""
    if not url.startswith("data:") or "," not in url:
        return None
    header, payload = url.split(",", 1)
    if not header.endswith(";base64"):
        return None
    try:
        return base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None


def image_digest(url: str | None) -> str | None:
    """SHA-256 of an image's content (``data:`` URL), or of the URL itself for remote images."""
    if url is None:
        return None
    data = decode_data_url(url)
    return hashlib.sha256(data if data is not None else url.encode("utf-8")).hexdigest()


# ----------------------------------------------------------------------------------------------------------------
# Reply bodies


def default_usage(text: str) -> Usage:
    """A plausible, deterministic usage for a fake reply of this text."""
    out = max(1, (len(text) + 3) // 4)
    return Usage(input_tokens=100, output_tokens=out, image_tokens=80, total_tokens=100 + out)


def _usage_of(usage: Usage | Mapping[str, Any] | None, text: str) -> Usage:
    if isinstance(usage, Usage):
        return usage
    if isinstance(usage, Mapping):
        from ..protocols.compatible import parse_usage as compat_usage
        from ..protocols.native import parse_usage as native_usage

        return compat_usage(usage) if "prompt_tokens" in usage else native_usage(usage)
    return default_usage(text)


def native_usage_json(usage: Usage) -> dict[str, Any]:
    """A native ``usage`` object in the current shape (with ``*_details``), keys in the recorded order."""
    return {
        "image_tokens": usage.image_tokens,
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "image_tokens": usage.image_tokens,
            "text_tokens": max(0, usage.input_tokens - usage.image_tokens),
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"text_tokens": usage.output_tokens},
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }


def compatible_usage_json(usage: Usage) -> dict[str, Any]:
    """A chat-completions ``usage`` object, as DashScope's compatible mode writes it."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {
            "image_tokens": usage.image_tokens,
            "text_tokens": max(0, usage.input_tokens - usage.image_tokens),
        },
        "completion_tokens_details": {"text_tokens": usage.output_tokens},
    }


def fake_native_response(
    text: str,
    *,
    ocr_result: Mapping[str, Any] | None = None,
    usage: Usage | Mapping[str, Any] | None = None,
    finish_reason: str = "stop",
    request_id: str | None = None,
) -> dict[str, Any]:
    """A native reply body, shaped like the recorded ones.

    Args:
        text: the model's text.
        ocr_result: the structured result: ``{"kv_result": {...}}`` (key extraction) or ``{"words_info": [...]}``.
        usage: a :class:`~qwen_ocr.Usage`, or a raw usage object sent as is; default: a plausible one.
        finish_reason: ``"stop"``, or ``"length"`` for an output cut off at ``max_tokens``.
        request_id: default: a fresh UUID.

    >>> body = fake_native_response("hello", request_id="r-1")
    >>> body["output"]["choices"][0]["message"]["content"], body["request_id"]
    ([{'text': 'hello'}], 'r-1')
    """
    item: dict[str, Any] = {}
    if ocr_result is not None:
        item["ocr_result"] = dict(ocr_result)
    item["text"] = text
    usage_json = dict(usage) if isinstance(usage, Mapping) else native_usage_json(_usage_of(usage, text))
    return {
        "output": {"choices": [{"finish_reason": finish_reason, "message": {"content": [item], "role": "assistant"}}]},
        "usage": usage_json,
        "request_id": request_id or new_request_id(),
    }


def fake_compatible_response(
    text: str,
    *,
    usage: Usage | Mapping[str, Any] | None = None,
    finish_reason: str = "stop",
    request_id: str | None = None,
    model: str = "qwen-vl-ocr",
    created: int | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body as DashScope's compatible mode sends it (see the docs example).

    ``id`` is ``chatcmpl-<request_id>``. ``usage`` is a :class:`~qwen_ocr.Usage` or a raw usage object.

    >>> body = fake_compatible_response("hello", request_id="r-1")
    >>> body["choices"][0]["message"]["content"], body["id"], body["object"]
    ('hello', 'chatcmpl-r-1', 'chat.completion')
    """
    usage_json = dict(usage) if isinstance(usage, Mapping) else compatible_usage_json(_usage_of(usage, text))
    return {
        "choices": [
            {
                "message": {"content": text, "role": "assistant"},
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
            }
        ],
        "object": "chat.completion",
        "usage": usage_json,
        "created": int(time.time()) if created is None else created,
        "system_fingerprint": None,
        "model": model,
        "id": f"chatcmpl-{request_id or new_request_id()}",
    }


@dataclass(frozen=True)
class NativeParts:
    """What a native reply body says: text, structured result, finish reason, usage, request id."""

    text: str
    ocr_result: dict[str, Any] | None
    finish_reason: str
    usage: Usage
    request_id: str | None


def native_parts(body: Mapping[str, Any]) -> NativeParts:
    """Take a native reply body apart."""
    from ..protocols.native import parse_usage

    output = body.get("output")
    choices = output.get("choices") if isinstance(output, Mapping) else None
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message")
    content = message.get("content") if isinstance(message, Mapping) else None
    texts: list[str] = []
    ocr_result: dict[str, Any] | None = None
    if isinstance(content, list):
        for item in content:
            if isinstance(item, Mapping):
                if isinstance(item.get("text"), str):
                    texts.append(item["text"])
                if isinstance(item.get("ocr_result"), Mapping):
                    ocr_result = dict(item["ocr_result"])
    elif isinstance(content, str):
        texts.append(content)
    finish = choice.get("finish_reason")
    rid = body.get("request_id")
    return NativeParts(
        text="".join(texts),
        ocr_result=ocr_result,
        finish_reason=finish if isinstance(finish, str) and finish != "null" else "stop",
        usage=parse_usage(body.get("usage")),
        request_id=str(rid) if rid else None,
    )


def native_to_compatible(
    body: Mapping[str, Any], *, model: str, request_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """The compatible-mode reply to the same request: the text only (no ``ocr_result``), usage renamed."""
    parts = native_parts(body)
    return fake_compatible_response(
        parts.text,
        usage=parts.usage,
        finish_reason=parts.finish_reason,
        request_id=request_id or parts.request_id,
        model=model,
        created=created,
    )


def result_to_native(result: OCRResult, *, request_id: str | None = None) -> dict[str, Any]:
    """A native reply that reads back as ``result``: ``raw_text``, ``fields`` as ``kv_result`` and ``lines`` as
    ``words_info``."""
    ocr_result: dict[str, Any] = {}
    if result.fields is not None:
        ocr_result["kv_result"] = result.fields
    if result.lines:
        ocr_result["words_info"] = [
            {"location": list(line.location), "rotate_rect": list(line.rotate_rect), "text": line.text}
            for line in result.lines
        ]
    return fake_native_response(
        result.raw_text or result.text,
        ocr_result=ocr_result or None,
        usage=result.usage if result.usage != Usage() else None,
        finish_reason=result.finish_reason or "stop",
        request_id=request_id or result.request_id,
    )


def native_error_body(
    status: int, *, code: str | None = None, message: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The native error body: ``{"code", "message", "request_id"}`` (the recorded key order)."""
    default_code, default_message = ERROR_CODES.get(status, ERROR_CODES[500])
    return {
        "code": code or default_code,
        "message": message or default_message,
        "request_id": request_id or new_request_id(),
    }


def compatible_error_body(
    status: int, *, code: str | None = None, message: str | None = None, request_id: str | None = None
) -> dict[str, Any]:
    """The compatible-mode error body: ``{"error": {"message", "type", "param", "code"}, "request_id"}``.

    A wrong key gets the compatible mode's own ``invalid_api_key`` body.
    """
    if status == 401 and code is None:
        return {
            "error": {
                "message": "Incorrect API key provided. ",
                "type": "invalid_request_error",
                "param": None,
                "code": "invalid_api_key",
            },
            "request_id": request_id or new_request_id(),
        }
    default_code, default_message = ERROR_CODES.get(status, ERROR_CODES[500])
    the_code = code or default_code
    return {
        "error": {"message": message or default_message, "type": the_code, "param": None, "code": the_code},
        "request_id": request_id or new_request_id(),
    }


# ----------------------------------------------------------------------------------------------------------------
# Stream frames


def split_text(text: str, chunk_chars: int) -> list[str]:
    """The text in pieces of at most ``chunk_chars`` characters (the stream's deltas)."""
    size = max(1, chunk_chars)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _native_stream_usage(usage: Usage, output_tokens: int) -> dict[str, Any]:
    # Key order of the recorded stream's frames.
    return {
        "total_tokens": usage.input_tokens + output_tokens,
        "input_tokens_details": {
            "image_tokens": usage.image_tokens,
            "text_tokens": max(0, usage.input_tokens - usage.image_tokens),
        },
        "output_tokens": output_tokens,
        "input_tokens": usage.input_tokens,
        "output_tokens_details": {"text_tokens": output_tokens},
        "image_tokens": usage.image_tokens,
    }


def native_sse_frames(
    body: Mapping[str, Any], *, chunk_chars: int = 8, request_id: str | None = None, incremental: bool = True
) -> list[bytes]:
    """A native reply as the SSE frames of ``incremental_output: true``, in the recorded framing::

        id:1
        event:result
        :HTTP_STATUS/200
        data:{"output":{"choices":[{"message":{"content":[{"text":"..."}],"role":"assistant"},"finish_reason":"null"}]},"usage":{...},"request_id":"..."}

    Text deltas with ``finish_reason`` the string ``"null"``, cumulative usage, then a last frame with empty
    content (or the ``ocr_result``, where the reply has one) and the real finish reason. With
    ``incremental=False`` (the service's default when ``incremental_output`` is not sent) each frame repeats the
    whole text so far instead of a delta.
    """
    parts = native_parts(body)
    rid = request_id or parts.request_id or new_request_id()
    pieces = split_text(parts.text, chunk_chars)
    total_out = parts.usage.output_tokens
    frames: list[bytes] = []
    n = len(pieces)
    so_far = ""
    for i, piece in enumerate(pieces, start=1):
        so_far += piece
        if not incremental:
            piece = so_far
        data = {
            "output": {
                "choices": [{"message": {"content": [{"text": piece}], "role": "assistant"}, "finish_reason": "null"}]
            },
            "usage": _native_stream_usage(parts.usage, total_out * i // (n + 1)),
            "request_id": rid,
        }
        frames.append(native_frame(i, data))
    last_content: list[dict[str, Any]] = [{"ocr_result": parts.ocr_result}] if parts.ocr_result else []
    last = {
        "output": {
            "choices": [
                {"message": {"content": last_content, "role": "assistant"}, "finish_reason": parts.finish_reason}
            ]
        },
        "usage": _native_stream_usage(parts.usage, total_out),
        "request_id": rid,
    }
    frames.append(native_frame(n + 1, last))
    return frames


def native_frame(index: int, data: Mapping[str, Any], *, event: str = "result", status: int = 200) -> bytes:
    """One native SSE frame: ``id:``, ``event:``, ``:HTTP_STATUS/``, ``data:`` and a blank line."""
    return f"id:{index}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{dumps(data)}\n\n".encode()


def compatible_frame(data: Mapping[str, Any] | str, *, event: str | None = None) -> bytes:
    """One compatible-mode SSE frame: ``data: {...}`` (optionally after ``event:``) and a blank line."""
    payload = data if isinstance(data, str) else dumps(data)
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


def compatible_sse_frames(
    text: str,
    *,
    usage: Usage,
    finish_reason: str = "stop",
    model: str = "qwen-vl-ocr",
    request_id: str | None = None,
    include_usage: bool = True,
    chunk_chars: int = 8,
    created: int | None = None,
) -> list[bytes]:
    """A chat completion as ``chat.completion.chunk`` frames: a role chunk, text deltas, the finish chunk,
    the usage chunk (``"choices": []``, with ``include_usage``), then ``data: [DONE]``."""
    cid = f"chatcmpl-{request_id or new_request_id()}"
    stamp = int(time.time()) if created is None else created

    def chunk(choices: list[dict[str, Any]], usage_json: dict[str, Any] | None = None) -> bytes:
        return compatible_frame(
            {
                "choices": choices,
                "object": "chat.completion.chunk",
                "usage": usage_json,
                "created": stamp,
                "system_fingerprint": None,
                "model": model,
                "id": cid,
            }
        )

    frames = [
        chunk([{"delta": {"content": "", "role": "assistant"}, "index": 0, "logprobs": None, "finish_reason": None}])
    ]
    for piece in split_text(text, chunk_chars):
        frames.append(chunk([{"finish_reason": None, "delta": {"content": piece}, "index": 0, "logprobs": None}]))
    frames.append(chunk([{"finish_reason": finish_reason, "delta": {"content": ""}, "index": 0, "logprobs": None}]))
    if include_usage:
        frames.append(chunk([], compatible_usage_json(usage)))
    frames.append(compatible_frame("[DONE]"))
    return frames


def compatible_stream_for(
    native: Mapping[str, Any], request: Any, *, model: str, request_id: str | None, chunk_chars: int
) -> list[bytes]:
    """The compatible-mode stream answering ``request`` (its JSON body) with the reading in a native reply."""
    parts = native_parts(native)
    options = request.get("stream_options") if isinstance(request, Mapping) else None
    return compatible_sse_frames(
        parts.text,
        usage=parts.usage,
        finish_reason=parts.finish_reason,
        model=model,
        request_id=request_id,
        include_usage=isinstance(options, Mapping) and options.get("include_usage") is True,
        chunk_chars=chunk_chars,
    )

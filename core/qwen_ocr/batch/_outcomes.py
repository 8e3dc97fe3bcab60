"""Reading the lines of a batch's output and error files (pure), and keeping local errors in a job's files.

An output line is ``{"id", "custom_id", "response": {"status_code", "request_id", "body": <chat.completion>},
"error": null}``; a failed line carries ``error {code, message}`` and/or a response whose status is not 200 (no
failed line of the live service is recorded, so both shapes are read). Each becomes a :class:`LineOutcome`: the
answer's body, or the typed error the same failure gets in real time (:func:`qwen_ocr.errors.error_from_response`),
and whether the page may be sent again (a server error, a timeout, an expired batch) or not (a bad image, a
cancelled batch).

>>> read_line(b'{"custom_id": "p7", "response": null, "error": {"code": "server_error", "message": "boom"}}').flag
2
>>> custom_id(7), page_number("p7"), page_number("x")
('p7', 7, None)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .. import errors as _errors
from ..documents import errors as _document_errors
from ..errors import (
    APITimeoutError,
    BatchCancelledError,
    BatchExpiredError,
    QwenOCRError,
    ResponseDecodeError,
    error_from_response,
    is_retryable,
)
from ._store import Flag

__all__ = ["LineOutcome", "custom_id", "error_from_json", "error_to_json", "page_number", "read_line"]

_ID = re.compile(r"p(\d{1,12})")
_TIMEOUT_CODES = ("timeout", "timed_out", "request_timeout", "deadline")
_SERVER_CODES = ("server_error", "internal", "system_error", "unavailable", "overloaded", "service")
_THROTTLED = ("rate_limit", "throttl", "too_many")


def custom_id(n: int) -> str:
    """The ``custom_id`` of page ``n`` of a job."""
    return f"p{n}"


def page_number(value: object) -> int | None:
    """The page a ``custom_id`` stands for, or ``None`` when it is not one of ours."""
    if not isinstance(value, str):
        return None
    match = _ID.fullmatch(value)
    return int(match.group(1)) if match else None


@dataclass
class LineOutcome:
    """One line of an output or error file, read.

    Attributes:
        n: the page (from the ``custom_id``), ``None`` when the line names none of ours.
        flag: :class:`~qwen_ocr.batch._store.Flag` ``OK``, ``RETRYABLE``, ``PERMANENT`` or ``CANCELLED``.
        body: the chat completion of a successful line (its ``request_id`` set to the line's).
        error: the typed error of a failed line.
    """

    n: int | None
    flag: int
    body: dict[str, Any] | None = None
    error: QwenOCRError | None = None


def read_line(raw: bytes) -> LineOutcome:
    """Read one line of an output or error file (never raises: a line that cannot be read is a retryable
    :class:`~qwen_ocr.ResponseDecodeError`)."""
    try:
        item = json.loads(raw)
    except (ValueError, RecursionError):
        return LineOutcome(None, Flag.RETRYABLE, error=_garbled("a line of the batch's output is not JSON"))
    if not isinstance(item, Mapping):
        return LineOutcome(None, Flag.RETRYABLE, error=_garbled("a line of the batch's output is not an object"))
    n = page_number(item.get("custom_id"))
    response = item.get("response") if isinstance(item.get("response"), Mapping) else None
    error = item.get("error") if isinstance(item.get("error"), Mapping) else None
    status = response.get("status_code") if response is not None else None
    body = response.get("body") if response is not None else None
    request_id = response.get("request_id") if response is not None else None
    request_id = str(request_id) if request_id else (str(item["id"]) if item.get("id") else None)
    if error is None and status == 200 and isinstance(body, Mapping):
        if body.get("error") or not isinstance(body.get("choices"), list):
            return LineOutcome(n, Flag.RETRYABLE, error=_garbled("an answer of the batch has no choices", request_id))
        answer = dict(body)
        answer["request_id"] = request_id or answer.get("request_id") or answer.get("id")
        return LineOutcome(n, Flag.OK, body=answer)
    failure = line_error(status, body, error, request_id)
    return LineOutcome(n, _flag_of(failure), error=failure)


def line_error(status: Any, body: Any, error: Mapping[str, Any] | None, request_id: str | None) -> QwenOCRError:
    """The typed error of a failed line: as :func:`~qwen_ocr.errors.error_from_response` types the same reply in
    real time; ``batch_cancelled`` / ``batch_expired`` lines as :class:`~qwen_ocr.errors.BatchCancelledError` /
    :class:`~qwen_ocr.errors.BatchExpiredError`; a timeout as :class:`~qwen_ocr.APITimeoutError`."""
    code = str((error or {}).get("code") or "")
    message = str((error or {}).get("message") or "")
    lowered = code.lower()
    if "cancel" in lowered:
        return BatchCancelledError(
            message or "the page was not read: its batch was cancelled first.", code=code, request_id=request_id
        )
    if "expire" in lowered:
        return BatchExpiredError(
            message or "the page was not read within the batch's completion window.", code=code, request_id=request_id
        )
    if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
        return error_from_response(status, body if isinstance(body, Mapping) else {"error": error or {}}, None)
    if any(word in lowered for word in _TIMEOUT_CODES):
        return APITimeoutError(f"the service timed out on this page in the batch: {message or code}.", code=code)
    if any(word in lowered for word in _THROTTLED):
        return error_from_response(429, {"error": {"code": code, "message": message}, "request_id": request_id})
    if any(word in lowered for word in _SERVER_CODES) or not code:
        return error_from_response(500, {"error": {"code": code or "server_error", "message": message}})
    return error_from_response(400, {"error": {"code": code, "message": message}, "request_id": request_id})


def _flag_of(error: QwenOCRError) -> int:
    if isinstance(error, BatchCancelledError):
        return Flag.CANCELLED
    if isinstance(error, BatchExpiredError) or is_retryable(error):
        return Flag.RETRYABLE
    return Flag.PERMANENT


def _garbled(message: str, request_id: str | None = None) -> ResponseDecodeError:
    return ResponseDecodeError(message + ".", status_code=200, request_id=request_id)


def error_to_json(error: QwenOCRError) -> dict[str, Any]:
    """A local error as a job keeps it: its class name, code and message."""
    return {"type": type(error).__name__, "code": error.code, "message": error.message}


def error_from_json(data: Mapping[str, Any]) -> QwenOCRError:
    """The error :func:`error_to_json` kept, of its class again (a :class:`~qwen_ocr.QwenOCRError` when the class
    is not one of ours)."""
    name = str(data.get("type") or "")
    cls = getattr(_errors, name, None) or getattr(_document_errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, QwenOCRError)):
        cls = QwenOCRError
    error = cls.__new__(cls)
    QwenOCRError.__init__(error, str(data.get("message") or ""), code=str(data.get("code") or "") or None)
    return error

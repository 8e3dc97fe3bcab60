"""The exception tree, and the pure mapping from a service error reply to the right exception.

Every error this library raises is a :class:`QwenOCRError`. Errors that come from the service carry the service's
``code``, ``message``, ``request_id`` and HTTP ``status_code``; errors found on our side (a bad image, a missing key)
carry a ``code`` of their own and say what to do about it.

Example::

    from qwen_ocr import QwenOCR, RateLimitError, AuthenticationError

    try:
        QwenOCR().ocr("receipt.jpg")
    except AuthenticationError as exc:
        print("fix the key:", exc.message)
    except RateLimitError as exc:
        print("slow down; retry after", exc.retry_after, "seconds")

The service's codes (``ERROR_CODE_TABLE.md`` in the protocol notes) map as follows:

========================  ======================================================================
exception                 codes
========================  ======================================================================
AuthenticationError       401 ``InvalidApiKey`` (and the missing or malformed key errors raised before any request)
PermissionDeniedError     403 ``AccessDenied``, ``Workspace.AccessDenied``, ``Model.AccessDenied``,
                          ``AccessDenied.Unpurchased``
NotFoundError             404 ``ModelNotFound``, ``WorkSpaceNotFound``
BadRequestError           400 ``InvalidParameter``, ``BadRequest.*``, ``UnsupportedOperation``,
                          ``invalid_request_error``, 413 ``BadRequest.TooLarge``
InvalidImageError         400 ``InvalidURL``, ``InvalidURL.*``, "url error", the download timeout
                          ``InvalidParameter.DataInspection`` ("Unable to download the media
                          resource"), an image-size refusal (also the compatible mode's
                          ``invalid_parameter_error``), 415 ``BadRequest.InputDownloadFailed``,
                          ``BadRequest.UnsupportedFileFormat``, and every image we refuse locally
ContentFilteredError      400 ``DataInspectionFailed``
QuotaExceededError        400 ``Arrearage``, 403 ``AllocationQuota.FreeTierOnly``, 429
                          ``PrepaidBillOverdue``, ``PostpaidBillOverdue``, ``CommodityNotPurchased``,
                          ``Throttling.AllocationQuota`` "Free allocated quota exceeded"
RateLimitError            429 ``Throttling``, ``Throttling.RateQuota``, ``Throttling.AllocationQuota``,
                          ``LimitRequests``, the compatible mode's ``insufficient_quota`` (per-minute
                          token throttling, not billing)
ServerError               408 ``RequestTimeOut``, 5xx ``InternalError*``, ``SystemError``,
                          ``ModelServiceFailed``, ``ModelUnavailable``
========================  ======================================================================
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import OCRResult

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BatchCancelledError",
    "BatchError",
    "BatchExpiredError",
    "BatchJobError",
    "BatchLineTooLargeError",
    "BatchNotFinishedError",
    "BatchOCRError",
    "BatchUnavailableError",
    "BatchValidationError",
    "BatchWaitTimeoutError",
    "ContentFilteredError",
    "InvalidArgumentError",
    "InvalidImageError",
    "MalformedAPIKeyError",
    "MissingAPIKeyError",
    "MissingDependencyError",
    "NotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "QwenOCRError",
    "RateLimitError",
    "RequestCancelledError",
    "ResponseDecodeError",
    "ResponseTooLargeError",
    "ServerError",
    "TableTooLargeError",
    "UnsupportedTaskError",
    "error_from_response",
    "header_value",
    "is_retryable",
    "parse_retry_after",
]


class QwenOCRError(Exception):
    """Base class of every error raised by this library.

    Attributes:
        message: what went wrong and, where we know it, how to fix it.
        code: the service's error code (``"InvalidApiKey"``) or one of ours (``"MissingAPIKey"``).
        request_id: the service's request id, to quote to support; ``None`` for local errors.
        status_code: the HTTP status of the reply; ``None`` for local errors.
    """

    default_code: str = "QwenOCRError"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        request_id: str | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.request_id = request_id
        self.status_code = status_code

    def __str__(self) -> str:
        details = [f"code={self.code}"]
        if self.status_code is not None:
            details.insert(0, f"HTTP {self.status_code}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        return f"{self.message} ({', '.join(details)})"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, code={self.code!r}, "
            f"status_code={self.status_code!r}, request_id={self.request_id!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep keyword attributes across pickling (multiprocessing, joblib, Ray).
        return (_rebuild, (type(self), self.message, self.__dict__))


def _rebuild(cls: type[QwenOCRError], message: str, state: dict[str, Any]) -> QwenOCRError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


class InvalidArgumentError(QwenOCRError, ValueError):
    """A call's arguments are wrong (an unknown task, a schema nested too deeply, ...). Nothing was sent."""

    default_code = "InvalidArgument"


class UnsupportedTaskError(InvalidArgumentError):
    """The chosen provider or model cannot do this task; the message names one that can."""

    default_code = "UnsupportedTask"


class MissingDependencyError(QwenOCRError, ImportError):
    """An optional part of the library needs a package that is not installed; the message names the extra to
    install (``pip install "qwen-ocr[ray]"``)."""

    default_code = "MissingDependency"


class TableTooLargeError(QwenOCRError, ValueError):
    """A table read from the model's output is too large to lay out as a grid: its row and column spans would
    expand it past ``qwen_ocr.results.MAX_TABLE_CELLS`` slots (or ``MAX_TABLE_CHARS`` characters). Raised only by
    ``Table.grid()``; the table's cells stay in ``Table.rows`` and its HTML in ``Table.to_html()``."""

    default_code = "TableTooLarge"


class APIError(QwenOCRError):
    """The service answered with an error."""

    default_code = "APIError"


class AuthenticationError(APIError):
    """The API key is missing, wrong, or from another region (HTTP 401)."""

    default_code = "InvalidApiKey"


class MissingAPIKeyError(AuthenticationError):
    """No API key was configured; raised at the first call, before any request is sent."""

    default_code = "MissingAPIKey"


class MalformedAPIKeyError(AuthenticationError, InvalidArgumentError):
    """The configured API key cannot be a key: it holds a space, a line break, another control character or a
    non-ASCII character (a key file with two lines, a key pasted with a non-breaking space). Raised when the client
    is built, before any request; the message says where the key came from and what is wrong, never the key."""

    default_code = "MalformedAPIKey"


class PermissionDeniedError(APIError):
    """The key may not use this model or workspace (HTTP 403)."""

    default_code = "AccessDenied"


class NotFoundError(APIError):
    """The model or workspace does not exist in this region (HTTP 404)."""

    default_code = "ModelNotFound"


class BadRequestError(APIError):
    """The service rejected the request as malformed (HTTP 400, 413, 415). Never retried."""

    default_code = "InvalidParameter"


class InvalidImageError(BadRequestError):
    """The image cannot be used: refused locally before sending, or refused by the service."""

    default_code = "InvalidImage"


class ContentFilteredError(BadRequestError):
    """The service's content inspection refused the input or the output (``DataInspectionFailed``)."""

    default_code = "DataInspectionFailed"


class QuotaExceededError(APIError):
    """Billing or quota problem (arrears, overdue bill, model not purchased, free quota used up). Never retried."""

    default_code = "Arrearage"


class RateLimitError(APIError):
    """Too many requests (HTTP 429 throttling). Retried with backoff, honouring ``retry_after``."""

    default_code = "Throttling"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """The service failed (HTTP 408 or 5xx). Retried."""

    default_code = "InternalError"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ResponseDecodeError(APIError):
    """The service's reply could not be read (garbled JSON, a stream cut short). Retried."""

    default_code = "ResponseDecodeError"


class ResponseTooLargeError(APIError):
    """The reply was larger than the client's ``max_response_bytes`` once decoded (32 MiB by default); reading
    stopped there. No OCR reply is that large, so the server misbehaves (a "gzip bomb", an endless stream) or is not
    Qwen-OCR. Never retried."""

    default_code = "ResponseTooLarge"


class APIConnectionError(QwenOCRError):
    """The request did not get an answer: connection refused or dropped, DNS failure. Retried."""

    default_code = "ConnectionError"


class APITimeoutError(APIConnectionError):
    """No complete answer within the configured ``timeout`` (a deadline for each attempt as a whole: connecting,
    sending, and receiving the whole reply or stream). Retried, each attempt with a deadline of its own.

    Named so that it does not shadow the builtin :class:`TimeoutError`.
    """

    default_code = "Timeout"


class RequestCancelledError(QwenOCRError):
    """The reading this request belonged to was closed (``break``, ``close()``, Ctrl-C): it was not sent, or not
    sent again. Raised inside a :func:`qwen_ocr.retry.cancel_scope` only; never retried."""

    default_code = "Cancelled"


class BatchOCRError(QwenOCRError):
    """Some items of an ``ocr_many`` call failed; raised after every item finished.

    Attributes:
        results: one entry per input, in input order: an ``OCRResult`` or the ``QwenOCRError`` of that item.
        errors: ``(index, error)`` pairs of the failed items.
    """

    default_code = "BatchFailed"

    def __init__(self, results: Sequence[OCRResult | QwenOCRError]) -> None:
        self.results: list[OCRResult | QwenOCRError] = list(results)
        self.errors: list[tuple[int, QwenOCRError]] = [
            (i, r) for i, r in enumerate(self.results) if isinstance(r, QwenOCRError)
        ]
        first_index, first = self.errors[0] if self.errors else (-1, None)
        super().__init__(
            f"{len(self.errors)} of {len(self.results)} items failed; the others succeeded and are in "
            f".results. First failure, item {first_index}: {first}",
            code=first.code if first else None,
        )
        self.__cause__ = first

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.results,))


class BatchError(QwenOCRError):
    """A problem of a Batch API job (:mod:`qwen_ocr.batch`)."""

    default_code = "BatchError"


class BatchUnavailableError(BatchError, InvalidArgumentError):
    """The Batch API cannot take this job: OCR batches are served in the Beijing region only, for the models
    ``qwen-vl-ocr`` and ``qwen-vl-ocr-latest`` (and the free ``batch-test-model``). Raised before anything is
    uploaded."""

    default_code = "BatchUnavailable"


class BatchLineTooLargeError(BatchError, InvalidArgumentError):
    """A page's request is larger than a batch line may be (6 MB); nothing was uploaded. Lower the budget
    (``resolution="standard"``, ``max_pixels=``) or pass ``image_url=`` to send the page by URL."""

    default_code = "BatchLineTooLarge"


class BatchValidationError(BatchError):
    """The service refused a batch at validation (``status: "failed"``): nothing of it was run or billed.

    Attributes:
        line: the 1-based line of the input file the first problem is on (``None`` when it is the whole file's).
        param: the field at fault (``"custom_id"``, ``"url"``, ``"body.model"``), when the service names one.
        batch_id: the refused batch.
        errors: every problem the service listed: ``{"code", "message", "param", "line"}`` dicts.
    """

    default_code = "BatchValidationFailed"

    def __init__(
        self,
        message: str,
        *,
        line: int | None = None,
        param: str | None = None,
        batch_id: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.line = line
        self.param = param
        self.batch_id = batch_id
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors]


class BatchCancelledError(BatchError):
    """The page was not read: its batch was cancelled before it ran (it was not billed)."""

    default_code = "batch_cancelled"


class BatchExpiredError(BatchError):
    """The page was not read within the batch's completion window (it was not billed); the job resubmits such pages
    while it has rounds left (``max_rounds``)."""

    default_code = "batch_expired"


class BatchJobError(BatchError):
    """A job directory cannot be used as asked: not a job, a different job, written by a newer version, or for
    another host."""

    default_code = "BatchJobError"


class BatchNotFinishedError(BatchJobError):
    """The job's results were asked for before it finished: call ``job.wait()`` first (or look at
    ``job.status()``)."""

    default_code = "BatchNotFinished"


class BatchWaitTimeoutError(BatchError):
    """``job.wait(timeout=...)`` ran out of time; the job goes on at the service (wait again, or reopen it later
    with ``BatchJob.open(job_dir)``)."""

    default_code = "BatchWaitTimeout"


# --------------------------------------------------------------------------------------------------------------
# Mapping a service reply to an exception (pure).

_BILLING_CODES = frozenset(
    {"Arrearage", "PrepaidBillOverdue", "PostpaidBillOverdue", "CommodityNotPurchased", "AllocationQuota.FreeTierOnly"}
)
_THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "Throttling.RateQuota",
        "Throttling.AllocationQuota",
        "LimitRequests",
        "rate_limit_exceeded",
        # The compatible mode's name for the per-minute token limit (the error-code page's "token limit"), in
        # the OpenAI wording "You exceeded your current quota": throttling, not billing.
        "insufficient_quota",
    }
)
_IMAGE_CODES = frozenset({"InvalidURL", "BadRequest.InputDownloadFailed", "BadRequest.UnsupportedFileFormat"})
_DOWNLOAD_WORDS = ("unable to download the media resource", "failed to download")
_IMAGE_SIZE = re.compile(
    r"image length and width|data-uri item|\bimage\b[^.]{0,60}\b(?:too (?:large|big|small)|size|exceed\w*|"
    r"resolution|dimensions?|aspect ratio|width|height|format|illegal)\b",
    re.IGNORECASE,
)
_PARAMETER_CODES = frozenset(
    {"InvalidParameter", "invalid_parameter_error", "invalid_request_error", "InternalError.Algo.InvalidParameter"}
)
_REGION_LIST = (
    "region='intl' (Singapore), 'cn' (Beijing), 'us' (Virginia), or 'cn-hongkong', 'eu-central-1', "
    "'ap-northeast-1' (those with workspace=)"
)

_HINTS: dict[type[APIError], str] = {
    AuthenticationError: (
        "Check the key in api_key= or DASHSCOPE_API_KEY. Keys are bound to a region: a key from Beijing works only "
        "with region='cn', one from Singapore only with region='intl', one from Virginia only with region='us'."
    ),
    PermissionDeniedError: "Check that this key's account and workspace may use the model (Model Studio console).",
    NotFoundError: (
        "Check the model name and region: Singapore and Virginia offer qwen-vl-ocr and qwen-vl-ocr-2025-11-20 only; "
        "qwen-vl-ocr-latest, the 28-px snapshots and qwen3.5-ocr are Beijing only (region='cn'), with a Beijing key."
    ),
    QuotaExceededError: "This is a billing problem of the account; retrying will not help. See the Model Studio "
    "console's billing page.",
    ContentFilteredError: "The service's content inspection refused the input or output; retrying will not help.",
    RateLimitError: "The account's rate limit was hit; lower max_concurrency or let the client retry.",
}


def _is_download_failure(code: str, message: str) -> bool:
    lowered = message.lower()
    return code == "InvalidParameter.DataInspection" or any(w in lowered for w in _DOWNLOAD_WORDS)


def _is_image_refusal(status: int | None, code: str, message: str) -> bool:
    """An image the service refused: its URL (``InvalidURL.*``, "url error"), its download, its size or format."""
    if code in _IMAGE_CODES or code.startswith("InvalidURL") or "url error" in message.lower():
        return True
    if _is_download_failure(code, message):
        return True
    return (status in (None, 400, 413, 415) or code in _PARAMETER_CODES) and _IMAGE_SIZE.search(message) is not None


def _hint(cls: type[APIError], code: str, message: str, region: str | None) -> str | None:
    """What to do about an error, knowing the region of the host that answered when we do."""
    if cls is AuthenticationError:
        if region is None:
            where = "The server at base_url (or DASHSCOPE_BASE_URL) refused the key"
        else:
            from .config import describe_region  # config imports this module

            where = f"The key was refused by the host of {describe_region(region)}"
        return (
            f"{where}. Keys are bound to the region they were created in: use a key of this region (api_key= or "
            f"DASHSCOPE_API_KEY), or change the region to the key's own: {_REGION_LIST}, or DASHSCOPE_API_REGION."
        )
    if cls is QuotaExceededError and code == "AllocationQuota.FreeTierOnly":
        return (
            "The account is set to use its free quota only ('free tier only') and that quota is used up; retrying "
            "will not help. Turn 'free tier only' off for this model in the Model Studio console to be billed "
            "beyond it."
        )
    if cls is RateLimitError and code in ("insufficient_quota", "Throttling.AllocationQuota"):
        return (
            "The account's tokens-per-minute limit (TPM) of this model was hit; the client waits and retries. Lower "
            "max_concurrency or the image budget (max_pixels) to stay under it."
        )
    if cls is InvalidImageError:
        if _is_download_failure(code, message):
            return (
                "The service could not download the image in time: check that the URL is public and answers "
                "quickly (from mainland China for region='cn'), or pass the file itself so that it is sent inline."
            )
        if code.startswith("InvalidURL") or "url" in message.lower():
            return "Check that the URL is public, starts with http:// or https:// (or oss://) and points at an image."
        return (
            "Check the image: BMP, JPEG, PNG, TIFF, WEBP or HEIC, at least 10 px on each side, an aspect ratio up to "
            "200:1, at most 10 MB (10,000,000 bytes; 20 MB by URL for qwen3.5-ocr), JPEG or PNG above 4K."
        )
    return _HINTS.get(cls)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Read a ``Retry-After`` header (seconds, or an HTTP date) as seconds from now; ``None`` if absent or unreadable.

    >>> parse_retry_after("2")
    2.0
    >>> parse_retry_after(None) is None
    True
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        import email.utils  # an HTTP date: rare, and 15 ms to import (issue 17: the client's import stays light)

        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def _class_for(status: int | None, code: str, message: str) -> type[APIError]:
    if code in _BILLING_CODES or (code == "Throttling.AllocationQuota" and "free" in message.lower()):
        return QuotaExceededError
    if code == "DataInspectionFailed" or code == "data_inspection_failed":
        return ContentFilteredError
    if _is_image_refusal(status, code, message):
        return InvalidImageError
    if code in _THROTTLING_CODES:
        return RateLimitError
    if code == "InvalidApiKey" or code == "invalid_api_key":
        return AuthenticationError
    if status == 401:
        return AuthenticationError
    if status == 403 or code.startswith("AccessDenied") or code.endswith(".AccessDenied"):
        return PermissionDeniedError
    if status == 404 or code in ("ModelNotFound", "WorkSpaceNotFound", "model_not_found"):
        return NotFoundError
    if status == 429:
        return RateLimitError
    if status == 408 or (status is not None and status >= 500):
        return ServerError
    if code.startswith(("InternalError", "SystemError")) or code in (
        "ModelServiceFailed",
        "ModelUnavailable",
    ):
        return ServerError if status is None or status >= 500 or status == 200 else BadRequestError
    return BadRequestError


def error_from_response(
    status_code: int | None,
    body: Mapping[str, Any] | bytes | str | None,
    headers: Mapping[str, str] | None = None,
    *,
    region: str | None = None,
) -> APIError:
    """Build the exception for an error reply of either protocol.

    Accepts the native body (``{"code", "message", "request_id"}``), the OpenAI-compatible body
    (``{"error": {"code", "message", "type"}, "request_id"}``), raw bytes, or nothing at all. ``region`` is the
    region id of the host that answered, named in the hint of a refused key (keys are region-bound).

    >>> err = error_from_response(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided."})
    >>> type(err).__name__, err.code
    ('AuthenticationError', 'InvalidApiKey')
    """
    data: Mapping[str, Any] = {}
    raw_text = ""
    if isinstance(body, (bytes, bytearray)):
        raw_text = bytes(body).decode("utf-8", "replace")
    elif isinstance(body, str):
        raw_text = body
    elif isinstance(body, Mapping):
        data = body
    if raw_text:
        try:
            parsed = json.loads(raw_text)
        except ValueError:
            parsed = None
        if isinstance(parsed, Mapping):
            data = parsed

    nested = data.get("error")
    if isinstance(nested, Mapping):
        code = nested.get("code") or nested.get("type") or ""
        message = nested.get("message") or ""
    else:
        code = data.get("code") or ""
        message = data.get("message") or ""
    code = str(code)
    message = str(message) if message else ""
    request_id = data.get("request_id") or data.get("id")
    if not request_id and headers is not None:
        request_id = header_value(headers, "x-request-id") or header_value(headers, "x-dashscope-request-id")
    request_id = str(request_id) if request_id else None

    cls = _class_for(status_code, code, message)
    if not message:
        snippet = raw_text.strip()[:200]
        message = f"The service answered HTTP {status_code} without an error message" + (
            f": {snippet!r}" if snippet else "."
        )
    hint = _hint(cls, code, message, region)
    full = f"{message} {hint}" if hint and hint not in message else message
    retry_after = parse_retry_after(header_value(headers, "retry-after")) if headers is not None else None
    kwargs: dict[str, Any] = {"code": code or None, "request_id": request_id, "status_code": status_code}
    if cls in (RateLimitError, ServerError):
        kwargs["retry_after"] = retry_after
    return cls(full, **kwargs)


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, looked up without regard to case, in any mapping (``httpx.Headers`` or a plain dict)."""
    if headers is None:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


def is_retryable(error: BaseException) -> bool:
    """Whether a failed request may be sent again: throttling, 408/5xx, transport errors, garbled replies.

    Billing codes, bad requests, authentication and permission errors are never retried.
    """
    return isinstance(error, (RateLimitError, ServerError, APIConnectionError, ResponseDecodeError))

"""Every code of the service's error-code table maps to one typed error; retryable exactly as the protocol says."""

from __future__ import annotations

import json
import pickle
import re

import pytest

from qwen_ocr import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BatchOCRError,
    ContentFilteredError,
    InvalidImageError,
    NotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    QwenOCRError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
)
from qwen_ocr.errors import error_from_response, is_retryable, parse_retry_after
from tests.conftest import PROTOCOL

TABLE = (PROTOCOL / "errors" / "ERROR_CODE_TABLE.md").read_text(encoding="utf-8")
ROWS = [
    (int(m.group(1)), m.group(2).strip(), m.group(3).strip())
    for m in re.finditer(r"^\|\s*(\d{3})\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$", TABLE, re.MULTILINE)
]

EXPECTED: dict[tuple[int, str], type[QwenOCRError]] = {
    (400, "InvalidParameter"): BadRequestError,
    (400, "DataInspectionFailed"): ContentFilteredError,
    (400, "BadRequest.EmptyInput"): BadRequestError,
    (400, "BadRequest.EmptyParameters"): BadRequestError,
    (400, "BadRequest.EmptyModel"): BadRequestError,
    (400, "InvalidURL"): InvalidImageError,
    (400, "Arrearage"): QuotaExceededError,
    (400, "UnsupportedOperation"): BadRequestError,
    (400, "InternalError.Algo"): BadRequestError,
    (400, "invalid_request_error"): BadRequestError,
    (401, "InvalidApiKey"): AuthenticationError,
    (403, "AccessDenied"): PermissionDeniedError,
    (403, "Workspace.AccessDenied"): PermissionDeniedError,
    (403, "Model.AccessDenied"): PermissionDeniedError,
    (403, "AccessDenied.Unpurchased"): PermissionDeniedError,
    (404, "WorkSpaceNotFound"): NotFoundError,
    (404, "ModelNotFound"): NotFoundError,
    (408, "RequestTimeOut"): ServerError,
    (413, "BadRequest.TooLarge"): BadRequestError,
    (415, "BadRequest.InputDownloadFailed"): InvalidImageError,
    (415, "BadRequest.UnsupportedFileFormat"): InvalidImageError,
    (429, "Throttling"): RateLimitError,
    (429, "Throttling.RateQuota"): RateLimitError,
    (429, "Throttling.AllocationQuota"): RateLimitError,  # "Allocated quota exceeded": a rate limit
    (429, "LimitRequests"): RateLimitError,
    (429, "PrepaidBillOverdue"): QuotaExceededError,
    (429, "PostpaidBillOverdue"): QuotaExceededError,
    (429, "CommodityNotPurchased"): QuotaExceededError,
    (500, "InternalError"): ServerError,
    (500, "InternalError.Algo"): ServerError,
    (500, "SystemError"): ServerError,
    (500, "InternalError.Timeout"): ServerError,
    (500, "ModelServiceFailed"): ServerError,
    (503, "ModelUnavailable"): ServerError,
}
RETRYABLE_STATUSES = {408, 429, 500, 502, 503, 504}


def test_the_table_was_read_whole() -> None:
    assert len(ROWS) == 35
    assert {(s, c) for s, c, _ in ROWS} == set(EXPECTED)


@pytest.mark.parametrize(("status", "code", "message"), ROWS, ids=[f"{s}-{c}-{i}" for i, (s, c, _) in enumerate(ROWS)])
def test_every_code_maps_to_its_error(status: int, code: str, message: str) -> None:
    err = error_from_response(status, {"code": code, "message": message, "request_id": "rid-1"})
    expected = EXPECTED[(status, code)]
    if code == "Throttling.AllocationQuota" and "Free" in message:
        expected = QuotaExceededError  # "Free allocated quota exceeded" is billing, not a rate limit
    assert type(err) is expected
    assert err.code == code
    assert err.status_code == status
    assert err.request_id == "rid-1"
    assert message in err.message
    assert isinstance(err, QwenOCRError)
    # Retry exactly the retryable ones.
    should_retry = expected in (RateLimitError, ServerError) and status in RETRYABLE_STATUSES
    assert is_retryable(err) is should_retry


@pytest.mark.parametrize(
    ("file", "expected"),
    [
        ("native_400_InvalidParameter.cnblogs.json", BadRequestError),
        ("native_401_InvalidApiKey.cnblogs.json", AuthenticationError),
        ("native_400_DataInspectionFailed.logged.json", ContentFilteredError),
        ("native_400_InvalidParameter_url_error.agentscope1295.json", InvalidImageError),
        ("compatible_400_Arrearage.logged.json", QuotaExceededError),
        ("compatible_400_invalid_parameter_error.langchain4j_log.json", BadRequestError),
        ("compatible_400_file_purpose.cnblogs.json", BadRequestError),
    ],
)
def test_recorded_error_bodies(file: str, expected: type[QwenOCRError]) -> None:
    record = json.loads((PROTOCOL / "errors" / file).read_text(encoding="utf-8"))
    err = error_from_response(record["http_status"], json.dumps(record["body"]).encode())
    assert type(err) is expected
    assert err.status_code == record["http_status"]
    assert not is_retryable(err)


def test_messages_say_how_to_fix() -> None:
    auth = error_from_response(401, {"code": "InvalidApiKey", "message": "Invalid API-key provided."})
    assert "region" in auth.message
    assert "DASHSCOPE_API_KEY" in auth.message
    quota = error_from_response(400, {"code": "Arrearage", "message": "Access denied."})
    assert "billing" in quota.message


def test_compatible_error_shape_and_request_id_from_header() -> None:
    body = {"error": {"code": "invalid_api_key", "message": "Incorrect API key", "type": "invalid_request_error"}}
    err = error_from_response(401, body, {"X-Request-ID": "hdr-rid"})
    assert isinstance(err, AuthenticationError)
    assert err.request_id == "hdr-rid"


def test_garbage_and_empty_bodies_still_give_typed_errors() -> None:
    err = error_from_response(502, b"<html>Bad Gateway</html>")
    assert isinstance(err, ServerError)
    assert "502" in err.message
    assert isinstance(error_from_response(503, None), ServerError)
    assert isinstance(error_from_response(418, b""), BadRequestError)


def test_retry_after_is_read_from_headers() -> None:
    err = error_from_response(429, {"code": "Throttling.RateQuota", "message": "slow"}, {"Retry-After": "3"})
    assert isinstance(err, RateLimitError)
    assert err.retry_after == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0
    assert parse_retry_after("nan") is None


def test_transport_level_errors_are_retryable() -> None:
    assert is_retryable(APIConnectionError("dropped"))
    assert is_retryable(APITimeoutError("slow"))
    assert is_retryable(ResponseDecodeError("garbled"))
    assert not is_retryable(ValueError("x"))


def test_str_and_repr_carry_code_status_and_request_id() -> None:
    err = error_from_response(429, {"code": "Throttling", "message": "m", "request_id": "r"})
    assert "HTTP 429" in str(err)
    assert "code=Throttling" in str(err)
    assert "request_id=r" in str(err)
    assert "RateLimitError(" in repr(err)


def test_errors_pickle_with_their_attributes() -> None:
    err = error_from_response(429, {"code": "Throttling", "message": "m", "request_id": "r"}, {"Retry-After": "1"})
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is RateLimitError
    assert (back.code, back.status_code, back.request_id, back.retry_after) == ("Throttling", 429, "r", 1.0)
    batch = BatchOCRError([err])
    again = pickle.loads(pickle.dumps(batch))
    assert isinstance(again.errors[0][1], RateLimitError)


def test_a_200_body_with_code_is_an_error() -> None:
    from qwen_ocr.protocols import native

    with pytest.raises(BadRequestError):
        native.parse_response(200, {}, b'{"code":"InvalidParameter","message":"bad"}', None)  # type: ignore[arg-type]

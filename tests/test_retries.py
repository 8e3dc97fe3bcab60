"""Which failures are retried, how often, and how long we wait; sync and async alike."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from qwen_ocr import (
    APIConnectionError,
    APITimeoutError,
    AsyncQwenOCR,
    AuthenticationError,
    BadRequestError,
    MissingAPIKeyError,
    QuotaExceededError,
    QwenOCR,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
)
from qwen_ocr.retry import backoff_delay
from tests.conftest import FAST_RETRY, PROTOCOL

URL = "https://example.com/receipt.png"
OK_BODY = json.dumps(
    {
        "output": {
            "choices": [{"finish_reason": "stop", "message": {"role": "assistant", "content": [{"text": "ok"}]}}]
        },
        "usage": {"input_tokens": 10, "output_tokens": 1, "image_tokens": 8},
        "request_id": "rid-ok",
    }
).encode()
AUTH_BODY = (PROTOCOL / "recorded" / "auth-error-nosse.response.body.txt").read_bytes()
PARAM_BODY = (PROTOCOL / "recorded" / "parameter-error-nosse.response.body.txt").read_bytes()

Step = Callable[[httpx.Request], httpx.Response]


def status(code: int, body: bytes | dict[str, Any] = b"", headers: dict[str, str] | None = None) -> Step:
    content = json.dumps(body).encode() if isinstance(body, dict) else body
    return lambda request: httpx.Response(code, content=content, headers=headers)


def ok() -> Step:
    return status(200, OK_BODY, {"content-type": "application/json"})


def fail(exc: type[httpx.HTTPError]) -> Step:
    def step(request: httpx.Request) -> httpx.Response:
        raise exc("boom", request=request)

    return step


class Script:
    """A transport that answers each request with the next step, and counts requests."""

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0) if len(self.steps) > 1 else self.steps[0]
        return step(request)

    def client(self, **kwargs: Any) -> QwenOCR:
        kwargs.setdefault("retry", FAST_RETRY)
        return QwenOCR(api_key="sk-test", http_client=httpx.Client(transport=httpx.MockTransport(self)), **kwargs)

    def aclient(self, **kwargs: Any) -> AsyncQwenOCR:
        kwargs.setdefault("retry", FAST_RETRY)
        transport = httpx.MockTransport(self)
        return AsyncQwenOCR(api_key="sk-test", http_client=httpx.AsyncClient(transport=transport), **kwargs)


def test_wrong_key_raises_after_exactly_one_request() -> None:
    script = Script(status(401, AUTH_BODY))
    with pytest.raises(AuthenticationError) as info:
        script.client().ocr(URL)
    assert len(script.requests) == 1
    assert info.value.code == "InvalidApiKey"
    assert info.value.request_id == "a1c0561c-1dfe-98a6-a62f-983577b8bc5e"


def test_missing_key_raises_before_any_request() -> None:
    script = Script(ok())
    client = QwenOCR(provider="dashscope", http_client=httpx.Client(transport=httpx.MockTransport(script)))
    with pytest.raises(MissingAPIKeyError) as info:
        client.ocr(URL)
    assert script.requests == []
    assert "DASHSCOPE_API_KEY" in info.value.message
    assert "~/.alibabacloud/credentials" in info.value.message
    assert isinstance(info.value, AuthenticationError)


@pytest.mark.parametrize(
    "first",
    [
        status(429, {"code": "Throttling.RateQuota", "message": "Requests rate limit exceeded"}),
        status(429, {"code": "Throttling"}, {"Retry-After": "0"}),
        status(500, {"code": "InternalError", "message": "internal"}),
        status(502, b"<html>bad gateway</html>"),
        status(503, {"code": "ModelUnavailable", "message": "later"}),
        status(504, b""),
        status(408, {"code": "RequestTimeOut", "message": "timeout"}),
        status(200, b"{garbled", {"content-type": "application/json"}),
        fail(httpx.ConnectError),
        fail(httpx.RemoteProtocolError),
        fail(httpx.ReadError),
        fail(httpx.ReadTimeout),
    ],
    ids=[
        "429",
        "429-retry-after",
        "500",
        "502",
        "503",
        "504",
        "408",
        "garbled",
        "connect",
        "dropped",
        "read",
        "timeout",
    ],
)
def test_transient_failures_are_retried_and_succeed(first: Step) -> None:
    script = Script(first, ok())
    result = script.client().ocr(URL)
    assert result.text == "ok"
    assert len(script.requests) == 2


@pytest.mark.parametrize(
    ("step", "error"),
    [
        (status(400, PARAM_BODY), BadRequestError),
        (status(400, {"code": "Arrearage", "message": "arrears"}), QuotaExceededError),
        (status(429, {"code": "PrepaidBillOverdue", "message": "bill"}), QuotaExceededError),
        (
            status(429, {"code": "Throttling.AllocationQuota", "message": "Free allocated quota exceeded."}),
            QuotaExceededError,
        ),
        (status(403, {"code": "AccessDenied", "message": "no"}), Exception),
        (status(404, {"code": "ModelNotFound", "message": "no"}), Exception),
        (status(413, {"code": "BadRequest.TooLarge", "message": "big"}), BadRequestError),
    ],
    ids=["400", "arrearage", "prepaid", "free-quota", "403", "404", "413"],
)
def test_permanent_failures_are_never_retried(step: Step, error: type[Exception]) -> None:
    script = Script(step, ok())
    with pytest.raises(error):
        script.client().ocr(URL)
    assert len(script.requests) == 1


def test_retries_are_bounded() -> None:
    script = Script(status(503, {"code": "ModelUnavailable"}))
    with pytest.raises(ServerError):
        script.client(retry=RetryPolicy(max_retries=3, initial_delay=0, jitter=0)).ocr(URL)
    assert len(script.requests) == 4
    script = Script(status(503, {"code": "ModelUnavailable"}))
    with pytest.raises(ServerError):
        script.client(max_retries=0).ocr(URL)
    assert len(script.requests) == 1


def test_timeouts_and_dropped_connections_surface_as_typed_errors() -> None:
    with pytest.raises(APITimeoutError):
        Script(fail(httpx.ReadTimeout)).client().ocr(URL)
    with pytest.raises(APIConnectionError):
        Script(fail(httpx.RemoteProtocolError)).client().ocr(URL)
    with pytest.raises(ResponseDecodeError):
        Script(status(200, b"not json")).client().ocr(URL)


def test_retry_after_is_honoured() -> None:
    script = Script(status(429, {"code": "Throttling.RateQuota"}, {"Retry-After": "0.3"}), ok())
    started = time.monotonic()
    script.client(retry=RetryPolicy(initial_delay=0, max_delay=0, jitter=0)).ocr(URL)
    assert time.monotonic() - started >= 0.3  # a lower bound: never flaky
    assert len(script.requests) == 2


def test_backoff_grows_exponentially_with_jitter_and_caps() -> None:
    policy = RetryPolicy(initial_delay=0.5, max_delay=4.0, jitter=0.0)
    assert [backoff_delay(policy, n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    jittered = RetryPolicy(initial_delay=1.0, max_delay=10.0, jitter=0.5)
    delays = {backoff_delay(jittered, 2) for _ in range(50)}
    assert all(1.0 <= d <= 2.0 for d in delays)
    assert len(delays) > 1
    assert backoff_delay(policy, 1, retry_after=999) == 60.0  # capped by max_retry_after


async def test_async_retries_and_permanent_errors() -> None:
    script = Script(status(500, {"code": "InternalError"}), fail(httpx.RemoteProtocolError), ok())
    async with script.aclient() as client:
        result = await client.ocr(URL)
    assert result.text == "ok"
    assert len(script.requests) == 3
    script = Script(status(401, AUTH_BODY))
    async with script.aclient() as client:
        with pytest.raises(AuthenticationError):
            await client.ocr(URL)
    assert len(script.requests) == 1


def test_stream_retries_before_the_first_chunk() -> None:
    sse = (PROTOCOL / "recorded" / "multimodal-generation-vl-ocr-sse.response.body.txt").read_bytes()
    script = Script(
        status(503, {"code": "ModelUnavailable"}),
        status(200, sse, {"content-type": "text/event-stream;charset=UTF-8"}),
    )
    chunks = list(script.client().stream(URL))
    assert len(script.requests) == 2
    assert chunks[-1].finish_reason == "stop"

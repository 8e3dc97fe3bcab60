"""qwen_ocr.testing.FakeTransport: the client gets the replies chosen, in both protocols, sync and async."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from qwen_ocr import (
    APIConnectionError,
    APITimeoutError,
    AsyncQwenOCR,
    AuthenticationError,
    BadRequestError,
    OCRResult,
    QwenOCR,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    Task,
    TextLine,
    Usage,
)
from qwen_ocr.imaging import prepare_image
from qwen_ocr.models import model_spec
from qwen_ocr.protocols import compatible as compat
from qwen_ocr.protocols import native
from qwen_ocr.protocols.base import OCRCall
from qwen_ocr.testing import FakeRequest, FakeTransport, fake_compatible_response, fake_native_response

NO_WAIT = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0, jitter=0)


def png(size: tuple[int, int] = (224, 96)) -> bytes:
    # Sides are multiples of 32, so the client sends the image unscaled and boxes come back unchanged.
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((10, 30), "Hello", fill="black")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "x.png"
    path.write_bytes(png())
    return path


def client_for(transport: FakeTransport, **kwargs: Any) -> QwenOCR:
    return QwenOCR(api_key="test", http_client=httpx.Client(transport=transport), retry=NO_WAIT, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Native protocol through the client


def test_the_documented_example(image: Path) -> None:
    transport = FakeTransport(["hello"])
    client = QwenOCR(api_key="test", http_client=httpx.Client(transport=transport))
    assert client.ocr(image).text == "hello"
    request = transport.requests[0]
    assert isinstance(request, FakeRequest)
    assert request.method == "POST"
    assert request.path == native.GENERATION_PATH
    assert request.protocol == "dashscope"
    assert request.stream is False
    assert request.task is None
    assert request.json["model"] == "qwen-vl-ocr"
    assert request.json["parameters"] == {}
    assert request.headers["authorization"] == "Bearer test"
    assert request.image is not None and request.image.startswith("data:image/png;base64,")
    assert transport.calls == 1


def test_results_in_order_then_the_last_repeats(image: Path) -> None:
    transport = FakeTransport(["one", "two"])
    client = client_for(transport)
    assert [client.ocr(image).text for _ in range(4)] == ["one", "two", "two", "two"]


def test_repeat_false_raises_when_results_run_out(image: Path) -> None:
    client = client_for(FakeTransport("only", repeat=False))
    assert client.ocr(image).text == "only"
    with pytest.raises(AssertionError, match="ran out of results"):
        client.ocr(image)


def test_task_recorded_and_fields_from_a_dict(image: Path) -> None:
    transport = FakeTransport([{"fields": {"Total": "12.50", "Items": [{"name": "tea"}]}, "request_id": "rid-1"}])
    result = client_for(transport).ocr(image, schema={"Total": "", "Items": [{"name": ""}]})
    assert result.fields == {"Total": "12.50", "Items": [{"name": "tea"}]}
    assert result.request_id == "rid-1"
    assert result.raw_text.startswith("```json")
    assert transport.requests[0].task is Task.KEY_INFORMATION_EXTRACTION
    ocr_options = transport.requests[0].json["parameters"]["ocr_options"]
    assert ocr_options["task_config"]["result_schema"] == {"Total": "", "Items": [{"name": ""}]}


def test_words_info_usage_and_finish_reason_from_a_dict(image: Path) -> None:
    words = [{"text": "Hello", "location": [10, 30, 60, 30, 60, 45, 10, 45], "rotate_rect": [35, 37, 15, 50, 90]}]
    usage = Usage(input_tokens=50, output_tokens=7, image_tokens=40, total_tokens=57)
    transport = FakeTransport([{"words_info": words, "usage": usage, "finish_reason": "length"}])
    result = client_for(transport).ocr(image, task="advanced_recognition", model="qwen-vl-ocr-latest")
    assert [line.text for line in result.lines] == ["Hello"]
    assert result.lines[0].location == (10, 30, 60, 30, 60, 45, 10, 45)
    assert result.usage == usage
    assert result.truncated


def test_an_ocr_result_round_trips(image: Path) -> None:
    given = OCRResult(
        text="A\nB",
        raw_text="A\nB",
        lines=[
            TextLine(text="A", location=(1, 2, 11, 2, 11, 12, 1, 12), rotate_rect=(6, 7, 10, 10, 0)),
            TextLine(text="B", location=(1, 22, 11, 22, 11, 32, 1, 32), rotate_rect=(6, 27, 10, 10, 0)),
        ],
        usage=Usage(input_tokens=9, output_tokens=2, image_tokens=4, total_tokens=11),
    )
    result = client_for(FakeTransport([given])).ocr(image, task="advanced_recognition", model="qwen-vl-ocr-latest")
    assert [line.text for line in result.lines] == ["A", "B"]
    assert result.lines[1].location == given.lines[1].location
    assert result.usage == given.usage


def test_a_complete_body_is_sent_as_is(image: Path) -> None:
    body = fake_native_response("verbatim", ocr_result={"kv_result": {"a": "1"}}, request_id="r-9")
    result = client_for(FakeTransport([body])).ocr(image, task="key_information_extraction")
    assert result.text == "verbatim"
    assert result.fields == {"a": "1"}
    assert result.request_id == "r-9"


def test_errors_first_are_retried_then_success(image: Path) -> None:
    transport = FakeTransport(["ok"], errors=[503, "drop", 429])
    result = client_for(transport).ocr(image)
    assert result.text == "ok"
    assert transport.calls == 4


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (401, AuthenticationError),
        (400, BadRequestError),
        (BadRequestError("nope", code="InvalidParameter"), BadRequestError),
        (AuthenticationError("bad key"), AuthenticationError),
    ],
)
def test_errors_that_are_not_retried(image: Path, error: Any, expected: type[Exception]) -> None:
    transport = FakeTransport(["never"], errors=[error])
    with pytest.raises(expected):
        client_for(transport).ocr(image)
    assert transport.calls == 1


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("timeout", APITimeoutError),
        ("drop", APIConnectionError),
        ("garbled", ResponseDecodeError),
        (429, RateLimitError),
        (RateLimitError("slow down", code="Throttling"), RateLimitError),
        (APIConnectionError("gone"), APIConnectionError),
        (httpx.ConnectError("refused"), APIConnectionError),
    ],
)
def test_retryable_errors_surface_when_retries_run_out(image: Path, error: Any, expected: type[Exception]) -> None:
    transport = FakeTransport(["never"], errors=[error] * 3)
    client = QwenOCR(
        api_key="t", http_client=httpx.Client(transport=transport), retry=RetryPolicy(max_retries=2, initial_delay=0)
    )
    with pytest.raises(expected):
        client.ocr(image)
    assert transport.calls == 3


def test_rate_limit_error_keeps_its_code(image: Path) -> None:
    transport = FakeTransport(["x"], errors=[RateLimitError("slow", code="Throttling.AllocationQuota")])
    client = QwenOCR(api_key="t", http_client=httpx.Client(transport=transport), max_retries=0)
    with pytest.raises(RateLimitError) as info:
        client.ocr(image)
    assert info.value.code == "Throttling.AllocationQuota"
    assert info.value.status_code == 429


def test_an_httpx_response_is_returned_as_is(image: Path) -> None:
    response = httpx.Response(200, json=fake_native_response("raw", request_id="r"))
    assert client_for(FakeTransport([response])).ocr(image).text == "raw"


def test_stream_through_the_client(image: Path) -> None:
    text = "A longer text that streams in several pieces."
    transport = FakeTransport([text], chunk_chars=5)
    chunks = list(client_for(transport).stream(image))
    assert "".join(chunk.text for chunk in chunks) == text
    assert len(chunks) > 5
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens > 0
    assert all(chunk.finish_reason is None for chunk in chunks[:-1])
    assert transport.requests[0].stream is True
    assert transport.requests[0].headers["x-dashscope-sse"] == "enable"


def test_reset(image: Path) -> None:
    transport = FakeTransport(["a"])
    client = client_for(transport)
    client.ocr(image)
    transport.reset(["b"], errors=[500])
    assert client.ocr(image).text == "b"
    assert transport.calls == 2


def test_invalid_construction() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FakeTransport([])


# ----------------------------------------------------------------------------------------------------------------
# Async


async def test_async_client(image: Path) -> None:
    transport = FakeTransport(["first", {"text": "second", "fields": {"k": "v"}}], errors=[500])
    async with httpx.AsyncClient(transport=transport) as http:
        client = AsyncQwenOCR(api_key="test", http_client=http, retry=NO_WAIT)
        first = await client.ocr(image)
        second = await client.ocr(image, task="key_information_extraction")
        chunks = [chunk async for chunk in client.stream(image)]
    assert first.text == "first"
    assert second.fields == {"k": "v"}
    assert "".join(c.text for c in chunks) == "second"
    assert chunks[-1].finish_reason == "stop"
    assert transport.calls == 4


async def test_async_ocr_many(image: Path) -> None:
    transport = FakeTransport(["same"])
    async with httpx.AsyncClient(transport=transport) as http:
        client = AsyncQwenOCR(api_key="test", http_client=http, retry=NO_WAIT)
        results = await client.ocr_many([image] * 5)
    assert [r.text for r in results if isinstance(r, OCRResult)] == ["same"] * 5
    assert transport.calls == 5


# ----------------------------------------------------------------------------------------------------------------
# Compatible protocol through the pure functions and httpx


def compat_call(task: Task | None = None, **kwargs: Any) -> OCRCall:
    spec = model_spec("qwen-vl-ocr-latest")
    return OCRCall(image=prepare_image(png(), model=spec), spec=spec, task=task, **kwargs)


def send(http: httpx.Client, call: OCRCall, *, stream: bool = False) -> httpx.Response:
    request = compat.build_request(call, stream=stream)
    return http.post(request.path, content=request.content(), headers=request.headers)


def test_compatible_reply_through_httpx() -> None:
    transport = FakeTransport([{"text": "plain", "usage": Usage(input_tokens=5, output_tokens=1, image_tokens=3)}])
    with httpx.Client(transport=transport, base_url="https://example.invalid") as http:
        call = compat_call()
        response = send(http, call)
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "qwen-vl-ocr-latest"
    result = compat.parse_response(response.status_code, response.headers, response.content, call)
    assert result.text == "plain"
    assert result.provider == "openai"
    assert result.usage == Usage(input_tokens=5, output_tokens=1, image_tokens=3, total_tokens=6)
    assert result.request_id == body["id"]
    request = transport.requests[0]
    assert request.protocol == "openai"
    assert request.task is Task.TEXT_RECOGNITION
    assert request.json["messages"][0]["content"][1]["text"] == Task.TEXT_RECOGNITION.prompt()


def test_compatible_fields_come_back_through_the_text() -> None:
    transport = FakeTransport([{"fields": {"Invoice Number": "10283819"}}])
    call = compat_call(Task.KEY_INFORMATION_EXTRACTION, schema={"Invoice Number": ""})
    with httpx.Client(transport=transport, base_url="https://example.invalid") as http:
        response = send(http, call)
    result = compat.parse_response(response.status_code, response.headers, response.content, call)
    assert result.fields == {"Invoice Number": "10283819"}
    assert "ocr_result" not in response.text
    assert transport.requests[0].task is Task.KEY_INFORMATION_EXTRACTION


def test_compatible_stream_with_done_and_usage() -> None:
    text = "<table><tr><td>a</td><td>b</td></tr></table>"
    transport = FakeTransport([text], chunk_chars=6)
    call = compat_call(Task.TABLE_PARSING)
    request = compat.build_request(call, stream=True)
    with (
        httpx.Client(transport=transport, base_url="https://example.invalid") as http,
        http.stream("POST", request.path, content=request.content(), headers=request.headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = b"".join(response.iter_bytes())
    assert raw.endswith(b"data: [DONE]\n\n")
    assembler = compat.OpenAIStreamAssembler(call, response.headers)
    chunks = assembler.feed(raw) + assembler.close()
    assert "".join(c.text for c in chunks) == text
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.output_tokens > 0
    assert assembler.result().tables[0].grid() == [["a", "b"]]
    assert transport.requests[0].stream is True


async def test_compatible_async_errors_use_the_compatible_body() -> None:
    transport = FakeTransport(["x"], errors=[429, 401])
    call = compat_call()
    request = compat.build_request(call)
    async with httpx.AsyncClient(transport=transport, base_url="https://example.invalid") as http:
        first = await http.post(request.path, content=request.content(), headers=request.headers)
        second = await http.post(request.path, content=request.content(), headers=request.headers)
        third = await http.post(request.path, content=request.content(), headers=request.headers)
    assert set(first.json()) == {"error", "request_id"}
    with pytest.raises(RateLimitError):
        compat.parse_response(first.status_code, first.headers, first.content, call)
    assert second.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(AuthenticationError):
        compat.parse_response(second.status_code, second.headers, second.content, call)
    assert compat.parse_response(third.status_code, third.headers, third.content, call).text == "x"


# ----------------------------------------------------------------------------------------------------------------
# The body helpers


def test_fake_native_response_parses_with_the_native_protocol() -> None:
    body = fake_native_response(
        '```json\n{"a": 1}\n```',
        ocr_result={"kv_result": {"a": 1}},
        usage={"input_tokens": 3, "output_tokens": 2},
        finish_reason="length",
        request_id="r",
    )
    call = compat_call(Task.KEY_INFORMATION_EXTRACTION)
    result = native.parse_response(200, {}, json.dumps(body).encode(), call)
    assert result.fields == {"a": 1}
    assert result.usage == Usage(input_tokens=3, output_tokens=2, total_tokens=5)
    assert result.truncated
    assert result.request_id == "r"


def test_fake_compatible_response_parses_with_the_compatible_protocol() -> None:
    body = fake_compatible_response("hi", usage=Usage(input_tokens=7, output_tokens=1, image_tokens=5), model="m")
    assert list(body) == ["choices", "object", "usage", "created", "system_fingerprint", "model", "id"]
    result = compat.parse_response(200, {}, json.dumps(body).encode(), compat_call())
    assert result.text == "hi"
    assert result.usage == Usage(input_tokens=7, output_tokens=1, image_tokens=5, total_tokens=8)
    assert body["usage"]["prompt_tokens_details"] == {"image_tokens": 5, "text_tokens": 2}


def test_client_in_compatible_mode(image: Path) -> None:
    transport = FakeTransport([{"fields": {"Total": "9.99"}}, "streamed text"], errors=[503])
    client = QwenOCR(api_key="test", protocol="openai", http_client=httpx.Client(transport=transport), retry=NO_WAIT)
    result = client.ocr(image, schema={"Total": ""})
    assert result.provider == "openai"
    assert result.fields == {"Total": "9.99"}
    chunks = list(client.stream(image))
    assert "".join(c.text for c in chunks) == "streamed text"
    assert chunks[-1].usage is not None
    assert [r.protocol for r in transport.requests] == ["openai"] * 3
    assert transport.requests[1].task is Task.KEY_INFORMATION_EXTRACTION
    assert transport.requests[2].json["stream_options"] == {"include_usage": True}

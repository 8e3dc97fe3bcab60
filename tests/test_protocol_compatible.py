"""The OpenAI-compatible protocol: request shape against the openai SDK's captures, replies of every task, streams,
error bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr import (
    AuthenticationError,
    BadRequestError,
    QuotaExceededError,
    RateLimitError,
    ResponseDecodeError,
    ServerError,
    Task,
    Usage,
)
from qwen_ocr.imaging import PreparedImage
from qwen_ocr.models import model_spec
from qwen_ocr.protocols import native
from qwen_ocr.protocols.base import OCRCall
from qwen_ocr.protocols.compatible import (
    COMPAT_PATH,
    SELF_HOSTED_PATH,
    OpenAIStreamAssembler,
    build_request,
    parse_response,
    parse_usage,
    prompt_for,
)
from qwen_ocr.testing import fake_compatible_response, load_recording
from qwen_ocr.testing._wire import RECORDINGS, compatible_sse_frames, native_to_compatible

SDK = Path(__file__).parent / "data" / "sdk_requests"
DOC_URL = "https://help-static-aliyun-doc.aliyuncs.com/file-manage-files/zh-CN/20241108/ctdzex/biaozhun.jpg"
SDK_PROMPT = "Read all the text in the image."


def sdk_request(name: str) -> dict[str, Any]:
    capture = json.loads((SDK / f"{name}.json").read_text(encoding="utf-8"))
    request = capture["requests"][0]
    assert request["path"] == COMPAT_PATH
    body: dict[str, Any] = request["body"]["json"]
    return body


def make_call(
    url: str = DOC_URL,
    *,
    model: str = "qwen-vl-ocr-latest",
    original_size: tuple[int, int] | None = None,
    **kwargs: Any,
) -> OCRCall:
    image = PreparedImage(url=url, original_size=original_size, sent_size=original_size)
    return OCRCall(image=image, spec=model_spec(model), **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Requests


def test_request_matches_sdk_https_url() -> None:
    call = make_call(prompt=SDK_PROMPT, min_pixels=3072, max_pixels=8388608)
    request = build_request(call)
    expected = sdk_request("openai_nonstream_https_url")
    assert request.method == "POST"
    assert request.path == COMPAT_PATH
    assert request.json == expected
    assert list(request.json) == list(expected)
    assert list(request.json["messages"][0]["content"][0]) == ["type", "image_url", "min_pixels", "max_pixels"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Accept"] == "application/json"
    assert "Authorization" not in request.headers
    assert json.loads(request.content()) == expected


def test_request_matches_sdk_async_capture() -> None:
    call = make_call(prompt=SDK_PROMPT, min_pixels=3072, max_pixels=8388608)
    assert build_request(call).json == sdk_request("openai_async_nonstream")


def test_request_matches_sdk_data_url_with_max_tokens_and_temperature() -> None:
    expected = sdk_request("openai_nonstream_data_url")
    url = expected["messages"][0]["content"][0]["image_url"]["url"]
    call = make_call(url, prompt=SDK_PROMPT, min_pixels=3072, max_pixels=8388608, max_tokens=4096, temperature=0.01)
    request = build_request(call)
    assert request.json == expected
    assert list(request.json) == ["model", "messages", "max_tokens", "temperature"]


def test_stream_request_matches_sdk_include_usage() -> None:
    expected = sdk_request("openai_stream_include_usage")
    call = make_call(prompt=SDK_PROMPT, min_pixels=3072, max_pixels=8388608)
    request = build_request(call, stream=True)
    assert request.json == expected
    assert list(request.json) == list(expected) == ["model", "stream", "messages", "stream_options"]
    assert request.headers["Accept"] == "text/event-stream"
    assert "X-DashScope-SSE" not in request.headers


def test_extra_parameters_land_at_the_top_level_like_extra_body() -> None:
    expected = sdk_request("openai_nonstream_extra_body_ocr_options")
    call = make_call(
        prompt=SDK_PROMPT,
        min_pixels=3072,
        max_pixels=8388608,
        extra_parameters={"ocr_options": {"task": "advanced_recognition"}},
    )
    assert build_request(call).json == expected


@pytest.mark.parametrize("task", list(Task))
def test_tasks_become_their_official_prompts(task: Task) -> None:
    call = make_call(task=task, prompt="ignored when a task is set")
    content = build_request(call).json["messages"][0]["content"]
    assert content[1] == {"type": "text", "text": task.prompt()}
    assert "ocr_options" not in build_request(call).json


def test_key_information_extraction_with_schema_sends_the_schema_prompt() -> None:
    schema = {"Seller": "", "Items": [{"name": "", "price": ""}]}
    call = make_call(task=Task.KEY_INFORMATION_EXTRACTION, schema=schema)
    text = build_request(call).json["messages"][0]["content"][1]["text"]
    assert text == Task.KEY_INFORMATION_EXTRACTION.prompt(schema)
    assert json.dumps(schema, ensure_ascii=False) in text
    assert text.startswith("Assume you are an information extraction expert.")


def test_custom_prompt_without_task_and_default_prompt() -> None:
    assert prompt_for(make_call(prompt="What is the total?")) == "What is the total?"
    assert prompt_for(make_call()) == Task.TEXT_RECOGNITION.prompt()
    assert prompt_for(make_call(prompt="")) == Task.TEXT_RECOGNITION.prompt()


def test_enable_rotate_is_not_sent_and_pixels_always_are() -> None:
    # Issue 16: every request states its pixel budget (the default level when the call sets none).
    body = build_request(make_call(enable_rotate=True)).json
    part = body["messages"][0]["content"][0]
    assert part == {"type": "image_url", "image_url": {"url": DOC_URL}, "min_pixels": 3072, "max_pixels": 2_621_440}
    assert "enable_rotate" not in json.dumps(body)


def test_headers_workspace_inspection_and_oss() -> None:
    request = build_request(make_call("oss://dir/a.png"), workspace="ws-1", data_inspection=True)
    assert request.headers["X-DashScope-WorkSpace"] == "ws-1"
    assert request.headers["X-DashScope-DataInspection"] == "enable"
    assert request.headers["X-DashScope-OssResourceResolve"] == "enable"
    plain = build_request(make_call()).headers
    assert set(plain) == {"Content-Type", "Accept"}


def test_self_hosted_path() -> None:
    assert SELF_HOSTED_PATH == "/v1/chat/completions"
    assert build_request(make_call(), path=SELF_HOSTED_PATH).path == "/v1/chat/completions"
    assert build_request(make_call(), path="v1/chat/completions").path == "/v1/chat/completions"


# ----------------------------------------------------------------------------------------------------------------
# Replies


def test_official_compatible_ticket_example() -> None:
    body = load_recording("docs/compatible_getting_started_ticket.response.json")
    call = make_call(task=Task.KEY_INFORMATION_EXTRACTION)
    result = parse_response(200, {}, json.dumps(body).encode(), call)
    assert result.provider == "openai"
    assert result.finish_reason == "stop"
    assert result.request_id == "chatcmpl-20e5d9ed-e8a3-947d-bebb-c47ef1378598"
    assert result.usage == Usage(input_tokens=606, output_tokens=159, image_tokens=0, total_tokens=765)
    assert isinstance(result.fields, dict)
    assert result.fields["Train Number"] == "G1948"
    assert result.fields["Ticket Price"] == "￥337.50"
    assert result.raw_text.startswith("```json")
    assert result.model == "qwen-vl-ocr-latest"


def test_official_compatible_key_information_example_with_image_tokens() -> None:
    body = load_recording("docs/compatible_key_information_extraction_prompted.response.json")
    call = make_call(task=Task.KEY_INFORMATION_EXTRACTION, schema={"Ride Date": "", "Invoice Code": ""})
    result = parse_response(200, {"x-request-id": "hdr"}, json.dumps(body).encode(), call)
    assert result.usage == Usage(input_tokens=519, output_tokens=58, image_tokens=310, total_tokens=577)
    assert result.fields == {"Ride Date": "2013-06-29", "Invoice Code": "221021325353", "Invoice Number": "10283819"}
    assert result.request_id == "chatcmpl-f10aeae3-b305-4b2d-80ad-37728a5bce4a"


def _native_and_compatible(task: Task | None, original_size: tuple[int, int] | None = None) -> tuple[Any, Any]:
    recorded = load_recording(RECORDINGS[task])
    call = make_call(task=task, original_size=original_size)
    native_result = native.parse_response(200, {}, json.dumps(recorded).encode(), call)
    compat_body = native_to_compatible(recorded, model=call.model)
    assert "ocr_result" not in json.dumps(compat_body)
    compat_result = parse_response(200, {}, json.dumps(compat_body).encode(), call)
    return native_result, compat_result


@pytest.mark.parametrize(
    "task",
    [
        Task.TEXT_RECOGNITION,
        Task.MULTI_LAN,
        Task.TABLE_PARSING,
        Task.DOCUMENT_PARSING,
        Task.FORMULA_RECOGNITION,
        Task.KEY_INFORMATION_EXTRACTION,
        None,
    ],
)
def test_views_match_native_for_text_tasks(task: Task | None) -> None:
    native_result, compat_result = _native_and_compatible(task)
    assert compat_result.provider == "openai"
    assert native_result.provider == "dashscope"
    assert compat_result.raw_text == native_result.raw_text
    assert compat_result.text == native_result.text
    assert compat_result.tables == native_result.tables
    assert compat_result.latex == native_result.latex
    assert compat_result.formulas == native_result.formulas
    assert compat_result.fields == native_result.fields
    assert compat_result.usage == native_result.usage
    assert compat_result.finish_reason == "stop"


def test_views_per_task_are_filled() -> None:
    assert _native_and_compatible(Task.TABLE_PARSING)[1].tables[0].n_rows > 5
    assert _native_and_compatible(Task.DOCUMENT_PARSING)[1].latex.startswith("\\documentclass")
    assert _native_and_compatible(Task.FORMULA_RECOGNITION)[1].formulas
    fields = _native_and_compatible(Task.KEY_INFORMATION_EXTRACTION)[1].fields
    assert fields == {"乘车日期": "2013-06-29", "发票": {"发票代码": "221021325353", "发票号码": "10283819"}}
    assert _native_and_compatible(Task.MULTI_LAN)[1].text.startswith("INTERNATIONAL")


def test_advanced_recognition_lines_from_normalised_boxes() -> None:
    # The recorded image is about 6000 x 3000 px (its words_info in pixels, its text in 0..1000 units).
    native_result, compat_result = _native_and_compatible(Task.ADVANCED_RECOGNITION, original_size=(6000, 3000))
    assert [line.text for line in compat_result.lines] == [line.text for line in native_result.lines]
    assert len(compat_result.lines) == 12
    for ours, theirs in zip(compat_result.lines, native_result.lines, strict=True):
        # The axis-aligned boxes agree within a few pixels (the text's boxes are rounded to 1/1000).
        assert all(abs(a - b) <= 10 for a, b in zip(ours.bbox, theirs.bbox, strict=True)), (ours, theirs)
        assert abs(ours.rotate_rect[0] - theirs.rotate_rect[0]) <= 10
        assert abs(ours.rotate_rect[1] - theirs.rotate_rect[1]) <= 10
    assert compat_result.text.splitlines()[0] == "INTERNATIONAL"


def test_length_finish_reason_is_surfaced() -> None:
    body = fake_compatible_response("<table><tr><td>a</td>", finish_reason="length")
    result = parse_response(200, {}, json.dumps(body).encode(), make_call(task=Task.TABLE_PARSING))
    assert result.finish_reason == "length"
    assert result.truncated
    assert result.tables[0].truncated


def test_request_id_order_body_then_header() -> None:
    body = fake_compatible_response("x", request_id="abc")
    assert parse_response(200, {"x-request-id": "hdr"}, json.dumps(body).encode(), make_call()).request_id == (
        "chatcmpl-abc"
    )
    body["request_id"] = "rid"
    assert parse_response(200, {}, json.dumps(body).encode(), make_call()).request_id == "rid"
    del body["request_id"], body["id"]
    assert parse_response(200, {"X-Request-ID": "hdr"}, json.dumps(body).encode(), make_call()).request_id == "hdr"


def test_content_as_a_list_of_parts_and_missing_usage() -> None:
    body = {"choices": [{"message": {"role": "assistant", "content": [{"type": "text", "text": "a"}, "b"]}}]}
    result = parse_response(200, {}, json.dumps(body).encode(), make_call())
    assert result.text == "ab"
    assert result.usage == Usage()
    assert result.finish_reason is None


def test_parse_usage_shapes() -> None:
    assert parse_usage(None) == Usage()
    assert parse_usage({"prompt_tokens": 10, "completion_tokens": 5}) == Usage(
        input_tokens=10, output_tokens=5, total_tokens=15
    )
    assert parse_usage({"input_tokens": 3, "output_tokens": 4, "image_tokens": 2}) == Usage(
        input_tokens=3, output_tokens=4, image_tokens=2, total_tokens=7
    )
    assert parse_usage({"prompt_tokens": "x", "completion_tokens": True}) == Usage()


# Error bodies, copied from the project's protocol notes (errors/*.json).
ARREARAGE = {
    "error": {
        "message": "Access denied, please make sure your account is in good standing. For details, see: "
        "https://help.aliyun.com/zh/model-studio/error-code#overdue-payment",
        "type": "Arrearage",
        "param": None,
        "code": "Arrearage",
    }
}
INVALID_PARAMETER = {
    "error": {
        "code": "invalid_parameter_error",
        "param": None,
        "message": "<400> InternalError.Algo.InvalidParameter: 'messages' must contain the word 'json' in some "
        "form, to use 'response_format' of type 'json_object'.",
        "type": "invalid_request_error",
    },
    "id": "chatcmpl-b41c1495-d9a4-4878-8ec5-48bb55fc921b",
    "request_id": "b41c1495-d9a4-4878-8ec5-48bb55fc921b",
}


@pytest.mark.parametrize(
    ("status", "body", "headers", "error", "code"),
    [
        (400, ARREARAGE, {}, QuotaExceededError, "Arrearage"),
        (400, INVALID_PARAMETER, {}, BadRequestError, "invalid_parameter_error"),
        (
            401,
            {
                "error": {
                    "message": "Incorrect API key provided. ",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
            {},
            AuthenticationError,
            "invalid_api_key",
        ),
        (
            401,
            {"code": "InvalidApiKey", "message": "Invalid API-key provided.", "request_id": "r"},
            {},
            AuthenticationError,
            "InvalidApiKey",
        ),
        (
            429,
            {"error": {"code": "Throttling.RateQuota", "message": "slow", "type": "x"}},
            {"Retry-After": "3"},
            RateLimitError,
            "Throttling.RateQuota",
        ),
        (500, {"error": {"code": "InternalError", "message": "boom", "type": "x"}}, {}, ServerError, "InternalError"),
        (200, INVALID_PARAMETER, {}, BadRequestError, "invalid_parameter_error"),
        (
            200,
            {"code": "DataInspectionFailed", "message": "no", "request_id": "r"},
            {},
            BadRequestError,
            "DataInspectionFailed",
        ),
    ],
)
def test_error_bodies(
    status: int, body: dict[str, Any], headers: dict[str, str], error: type[Exception], code: str
) -> None:
    with pytest.raises(error) as info:
        parse_response(status, headers, json.dumps(body).encode(), make_call())
    assert getattr(info.value, "code", None) == code
    if "Retry-After" in headers:
        assert info.value.retry_after == 3.0  # type: ignore[attr-defined]
    if body.get("request_id"):
        assert info.value.request_id == body["request_id"]  # type: ignore[attr-defined]


def test_garbled_and_shapeless_replies() -> None:
    with pytest.raises(ResponseDecodeError):
        parse_response(200, {}, b'{"choices": [{"mess', make_call())
    with pytest.raises(ResponseDecodeError):
        parse_response(200, {}, b"[1, 2]", make_call())
    with pytest.raises(ResponseDecodeError):
        parse_response(200, {"x-request-id": "h"}, b'{"choices": []}', make_call())


# ----------------------------------------------------------------------------------------------------------------
# Streams


def feed_all(assembler: OpenAIStreamAssembler, data: bytes, step: int = 7) -> list[Any]:
    chunks = []
    for i in range(0, len(data), step):
        chunks.extend(assembler.feed(data[i : i + step]))
    chunks.extend(assembler.close())
    return chunks


def sdk_stream_bytes() -> bytes:
    """The chunks of the SDK capture's (synthetic) stream, framed as DashScope frames them."""
    capture = json.loads((SDK / "openai_stream_include_usage.json").read_text(encoding="utf-8"))
    frames = [f"data: {json.dumps(chunk)}\n\n" for chunk in capture["sdk_side_result"]]
    return ("".join(frames) + "data: [DONE]\n\n").encode()


@pytest.mark.parametrize("step", [1, 5, 64, 100000])
def test_stream_with_done_and_include_usage(step: int) -> None:
    assembler = OpenAIStreamAssembler(make_call(), {"x-request-id": "hdr"})
    chunks = feed_all(assembler, sdk_stream_bytes(), step)
    assert "".join(c.text for c in chunks) == "Hello OCR"
    assert [c.finish_reason for c in chunks] == [None] * (len(chunks) - 1) + ["stop"]
    usage = Usage(input_tokens=100, output_tokens=5, image_tokens=80, total_tokens=105)
    assert chunks[-1].usage == usage
    result = assembler.result()
    assert result.text == "Hello OCR"
    assert result.usage == usage
    assert result.finish_reason == "stop"
    assert result.provider == "openai"
    assert result.request_id == "chatcmpl-b48c44be8df5433fb04d2fef"


@pytest.mark.parametrize("task", [Task.TABLE_PARSING, Task.KEY_INFORMATION_EXTRACTION, Task.ADVANCED_RECOGNITION])
def test_stream_assembles_the_same_result_as_the_reply(task: Task) -> None:
    recorded = load_recording(RECORDINGS[task])
    call = make_call(task=task, original_size=(6000, 3000))
    whole = parse_response(200, {}, json.dumps(native_to_compatible(recorded, model=call.model)).encode(), call)
    frames = compatible_sse_frames(whole.raw_text, usage=whole.usage, model=call.model, request_id="r1")
    assembler = OpenAIStreamAssembler(call, {})
    chunks = feed_all(assembler, b"".join(frames), 13)
    streamed = assembler.result()
    assert "".join(c.text for c in chunks) == whole.raw_text
    assert streamed.raw_text == whole.raw_text
    assert streamed.fields == whole.fields
    assert streamed.tables == whole.tables
    assert streamed.lines == whole.lines
    assert streamed.usage == whole.usage
    assert chunks[-1].usage == whole.usage
    assert streamed.request_id == "chatcmpl-r1"


def test_stream_without_usage_chunk_ends_on_done() -> None:
    frames = compatible_sse_frames("abc", usage=Usage(), include_usage=False, request_id="r")
    assembler = OpenAIStreamAssembler(make_call())
    chunks = feed_all(assembler, b"".join(frames))
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is None
    assert assembler.result().text == "abc"


def test_stream_ending_with_finish_reason_but_no_done_is_complete() -> None:
    frames = compatible_sse_frames("abc", usage=Usage(input_tokens=1, output_tokens=1), request_id="r")
    assembler = OpenAIStreamAssembler(make_call())
    chunks = feed_all(assembler, b"".join(frames[:-1]))  # every frame but [DONE]
    assert chunks[-1].finish_reason == "stop"
    assert assembler.result().usage.output_tokens == 1


def test_stream_cut_raises_response_decode_error() -> None:
    frames = compatible_sse_frames("abcdefghijklmnop", usage=Usage(), request_id="r", chunk_chars=2)
    assembler = OpenAIStreamAssembler(make_call(), {"x-request-id": "hdr"})
    for frame in frames[:4]:
        assembler.feed(frame)
    with pytest.raises(ResponseDecodeError) as info:
        assembler.close()
    assert info.value.request_id == "chatcmpl-r"


def test_stream_cut_without_trailing_blank_line_flushes_the_last_frame() -> None:
    frames = compatible_sse_frames("ab", usage=Usage(), request_id="r", include_usage=False)
    data = b"".join(frames[:-1]).rstrip(b"\n")  # the finish chunk, without its blank line and no [DONE]
    assembler = OpenAIStreamAssembler(make_call())
    chunks = feed_all(assembler, data)
    assert chunks[-1].finish_reason == "stop"


# Both in-stream error shapes, copied from errors/compatible_sse_in_stream_error.logged.txt.
SHAPE_A = (
    b'data: {"error":{"code":"invalid_parameter_error","param":null,"message":"Range of top_logprobs should be '
    b'[0, 5]","type":"invalid_request_error"},"id":"chatcmpl-54036480-037a-9e3e-b1fe-50453ba831a1"}\n\n'
)
SHAPE_B = (
    b'event: error\ndata: {"code":"invalid_model_error","message":"Unsupported model \\"\\"","request_id":"..."}\n\n'
)


def test_in_stream_error_shape_a() -> None:
    assembler = OpenAIStreamAssembler(make_call())
    with pytest.raises(BadRequestError) as info:
        assembler.feed(SHAPE_A)
    assert info.value.code == "invalid_parameter_error"
    assert info.value.request_id == "chatcmpl-54036480-037a-9e3e-b1fe-50453ba831a1"


def test_in_stream_error_shape_b() -> None:
    assembler = OpenAIStreamAssembler(make_call())
    with pytest.raises(BadRequestError) as info:
        assembler.feed(SHAPE_B)
    assert info.value.code == "invalid_model_error"


def test_in_stream_server_errors_are_retryable_server_errors() -> None:
    frames = compatible_sse_frames("abcdef", usage=Usage(), request_id="r", chunk_chars=2)
    nested = b'data: {"error":{"code":"InternalError","message":"boom","type":"internal_error"},"request_id":"x"}\n\n'
    flat = b'event: error\ndata: {"code":"InternalError","message":"boom","request_id":"y"}\n\n'
    native_style = b'event:error\n:HTTP_STATUS/503\ndata:{"code":"ModelUnavailable","message":"later"}\n\n'
    for bad in (nested, flat, native_style):
        assembler = OpenAIStreamAssembler(make_call())
        chunks = [chunk for frame in frames[:2] for chunk in assembler.feed(frame)]
        with pytest.raises(ServerError):
            assembler.feed(bad)
        assert "".join(c.text for c in chunks) == "ab"


def test_in_stream_throttling() -> None:
    assembler = OpenAIStreamAssembler(make_call())
    with pytest.raises(RateLimitError):
        assembler.feed(b'data: {"error":{"code":"rate_limit_exceeded","message":"slow","type":"requests"}}\n\n')


def test_garbled_frame_and_non_object_frame() -> None:
    with pytest.raises(ResponseDecodeError):
        OpenAIStreamAssembler(make_call()).feed(b"data: {not json\n\n")
    with pytest.raises(ResponseDecodeError):
        OpenAIStreamAssembler(make_call()).feed(b"data: [1]\n\n")


def test_frames_after_done_are_ignored_and_comments_skipped() -> None:
    data = b": keep-alive\n\n" + b"".join(compatible_sse_frames("hi", usage=Usage(), request_id="r")) + b"data: x\n\n"
    assembler = OpenAIStreamAssembler(make_call())
    chunks = feed_all(assembler, data)
    assert "".join(c.text for c in chunks) == "hi"


def test_usage_on_every_chunk_like_vllm_continuous_usage() -> None:
    def chunk(content: str | None, finish: str | None, tokens: int) -> bytes:
        body = {
            "id": "cmpl-1",
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens},
        }
        return f"data: {json.dumps(body)}\n\n".encode()

    data = chunk("a", None, 1) + chunk("b", None, 2) + chunk("", "length", 2) + b"data: [DONE]\n\n"
    assembler = OpenAIStreamAssembler(make_call())
    chunks = feed_all(assembler, data)
    assert [c.text for c in chunks] == ["a", "b", ""]
    assert chunks[-1].finish_reason == "length"
    assert chunks[-1].usage == Usage(input_tokens=10, output_tokens=2, total_tokens=12)
    assert assembler.result().truncated

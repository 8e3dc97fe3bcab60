"""qwen_ocr.testing.Emulator: both endpoints over real HTTP on 127.0.0.1, streams, RPM, faults, keys, stats, CLI."""

from __future__ import annotations

import io
import itertools
import json
import re
import subprocess
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image, ImageDraw

from qwen_ocr import (
    AsyncQwenOCR,
    AuthenticationError,
    OCRResult,
    QwenOCR,
    RateLimitError,
    ResponseDecodeError,
    RetryPolicy,
    ServerError,
    Task,
    TextLine,
    Usage,
)
from qwen_ocr.imaging import prepare_image
from qwen_ocr.models import model_spec
from qwen_ocr.protocols import compatible as compat
from qwen_ocr.protocols import native
from qwen_ocr.protocols.base import HTTPRequest, OCRCall
from qwen_ocr.testing import FAULT_KINDS, Emulator, load_recording

MODEL = "qwen-vl-ocr-latest"
NO_WAIT = RetryPolicy(initial_delay=0, max_delay=0)

# The first frame of the recorded native stream (cnblogs multimodal-generation-vl-ocr-sse), for its framing.
RECORDED_FIRST_FRAME = (
    "id:1\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":[{"text":"产品"}],"role":"assistant"},"finish_reason":"null"}]},'
    '"usage":{"total_tokens":972,"input_tokens_details":{"image_tokens":947,"text_tokens":24},"output_tokens":1,'
    '"input_tokens":971,"output_tokens_details":{"text_tokens":1},"image_tokens":947},'
    '"request_id":"6aaa3c55-98fc-498f-baa5-37ba21a708a3"}\n\n'
)
NATIVE_FRAME = re.compile(r"id:(\d+)\nevent:(result|error)\n:HTTP_STATUS/(\d+)\ndata:(.*)\n\n")

# What the recordings say, per task (see core/qwen_ocr/testing/recordings/SOURCES.md).
EXPECTED_START = {
    Task.TEXT_RECOGNITION: "Audience",
    Task.MULTI_LAN: "INTERNATIONAL",
    Task.ADVANCED_RECOGNITION: "INTERNATIONAL",
    Task.KEY_INFORMATION_EXTRACTION: "{",
    Task.TABLE_PARSING: "<table>",
    Task.DOCUMENT_PARSING: "\\documentclass",
    Task.FORMULA_RECOGNITION: "$$",
}


def png(size: tuple[int, int] = (224, 96), text: str = "Hello") -> bytes:
    im = Image.new("RGB", size, "white")
    ImageDraw.Draw(im).text((10, 30), text, fill="black")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "page.png"
    path.write_bytes(png())
    return path


def make_call(task: Task | None = None, *, data: bytes | None = None, **kwargs: Any) -> OCRCall:
    spec = model_spec(MODEL)
    return OCRCall(image=prepare_image(data or png(), model=spec), spec=spec, task=task, **kwargs)


def post(emulator: Emulator, request: HTTPRequest, key: str | None = "k") -> httpx.Response:
    headers = dict(request.headers)
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return httpx.post(emulator.base_url + request.path, content=request.content(), headers=headers, timeout=10)


def stream_bytes(emulator: Emulator, request: HTTPRequest) -> tuple[httpx.Response, bytes]:
    headers = {**request.headers, "Authorization": "Bearer k"}
    with httpx.stream(
        "POST", emulator.base_url + request.path, content=request.content(), headers=headers, timeout=10
    ) as response:
        return response, response.read()


# ----------------------------------------------------------------------------------------------------------------
# Every task on both protocols, with httpx


@pytest.mark.parametrize("task", list(Task))
def test_native_every_task(emu: Emulator, task: Task) -> None:
    call = make_call(task, schema={"k": ""} if task is Task.KEY_INFORMATION_EXTRACTION else None)
    response = post(emu, native.build_request(call))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-request-id"] == response.json()["request_id"]
    result = native.parse_response(response.status_code, response.headers, response.content, call)
    assert result.text.startswith(EXPECTED_START[task]), result.text[:40]
    assert result.usage.input_tokens > 0
    assert emu.request_log[-1].task is task
    check_views(task, result)


def check_views(task: Task, result: OCRResult) -> None:
    if task is Task.ADVANCED_RECOGNITION:
        assert len(result.lines) == 12
    if task is Task.KEY_INFORMATION_EXTRACTION:
        assert result.fields == {"乘车日期": "2013-06-29", "发票": {"发票代码": "221021325353", "发票号码": "10283819"}}
    if task is Task.TABLE_PARSING:
        assert result.tables and result.tables[0].n_rows > 5
    if task is Task.DOCUMENT_PARSING:
        assert result.latex is not None and "\\begin{document}" in result.latex
    if task is Task.FORMULA_RECOGNITION:
        assert result.formulas


@pytest.mark.parametrize("task", list(Task))
def test_compatible_every_task(emu: Emulator, task: Task) -> None:
    call = make_call(task)
    response = post(emu, compat.build_request(call))
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == MODEL
    assert body["id"] == f"chatcmpl-{response.headers['x-request-id']}"
    assert "ocr_result" not in response.text
    result = compat.parse_response(response.status_code, response.headers, response.content, call)
    assert result.provider == "openai"
    # text_recognition and multi_lan share one official prompt: the emulator answers both as text_recognition.
    expected = Task.TEXT_RECOGNITION if task is Task.MULTI_LAN else task
    assert emu.request_log[-1].task is expected
    assert result.text.startswith(EXPECTED_START[expected]), result.text[:40]
    assert result.usage.image_tokens > 0
    if task is not Task.ADVANCED_RECOGNITION:  # its lines come from normalised boxes, checked below
        check_views(expected, result)


def test_compatible_advanced_recognition_lines_from_the_text(emu: Emulator) -> None:
    call = make_call(Task.ADVANCED_RECOGNITION)
    response = post(emu, compat.build_request(call))
    result = compat.parse_response(200, response.headers, response.content, call)
    assert [line.text for line in result.lines][:3] == ["INTERNATIONAL", "MOTHER LANGUAGE", "DAY"]
    assert all(0 <= line.rotate_rect[0] <= 224 for line in result.lines)  # mapped onto the 224 px wide image


def test_custom_prompt_and_no_task_get_the_plain_recording(emu: Emulator) -> None:
    plain = load_recording("cnblogs/multimodal-generation-vl-ocr-nosse.response.body.txt")
    plain_text = plain["output"]["choices"][0]["message"]["content"][0]["text"]
    for request in (
        native.build_request(make_call(prompt="What does it say?")),
        native.build_request(make_call()),
        compat.build_request(make_call(prompt="What does it say?")),
    ):
        response = post(emu, request)
        assert plain_text in response.text
    assert [entry.task for entry in emu.request_log] == [None, None, None]


def test_self_hosted_path_is_served(emu: Emulator) -> None:
    call = make_call(Task.TABLE_PARSING)
    response = post(emu, compat.build_request(call, path=compat.SELF_HOSTED_PATH))
    assert compat.parse_response(200, response.headers, response.content, call).tables


def test_request_log_and_stats(emu: Emulator) -> None:
    first, second = png(text="one"), png(text="two")
    for data in (first, first, second):
        post(emu, native.build_request(make_call(Task.TEXT_RECOGNITION, data=data)))
    entry = emu.request_log[0]
    assert entry.method == "POST"
    assert entry.path == native.GENERATION_PATH
    assert entry.protocol == "dashscope"
    assert entry.json["parameters"]["ocr_options"] == {"task": "text_recognition"}
    assert entry.headers["Authorization"] == "<redacted>"
    assert "Bearer k" not in json.dumps([e.headers for e in emu.request_log])
    stats = emu.stats
    assert stats.requests == 3
    assert stats.responses == {200: 3}
    assert sorted(stats.successes_by_image.values()) == [1, 2]
    assert stats.successes == 3
    emu.reset()
    assert emu.stats.requests == 0
    assert emu.request_log == []


def test_malformed_requests_get_the_service_codes(emu: Emulator) -> None:
    url = emu.base_url + native.GENERATION_PATH
    no_parameters = {"model": MODEL, "input": {"messages": [{"role": "user", "content": [{"image": "https://x"}]}]}}
    response = httpx.post(url, json=no_parameters)
    assert response.status_code == 400
    assert response.json()["code"] == "BadRequest.EmptyParameters"
    assert httpx.post(url, json={"input": {}, "parameters": {}}).json()["code"] == "BadRequest.EmptyModel"
    assert httpx.post(url, content=b"not json").status_code == 400
    missing = httpx.post(emu.base_url + "/api/v1/nothing", json={})
    assert missing.status_code == 404
    no_image = httpx.post(emu.base_url + compat.COMPAT_PATH, json={"model": MODEL, "messages": [{"role": "user"}]})
    assert no_image.status_code == 400
    assert "error" in no_image.json()
    assert httpx.get(emu.base_url + "/health").json()["status"] == "ok"


# ----------------------------------------------------------------------------------------------------------------
# Streams


def test_native_stream_follows_the_recorded_framing(emu: Emulator) -> None:
    recorded = NATIVE_FRAME.fullmatch(RECORDED_FIRST_FRAME)
    assert recorded is not None
    recorded_data = json.loads(recorded.group(4))

    call = make_call(Task.TABLE_PARSING)
    whole = native.parse_response(200, {}, post(emu, native.build_request(call)).content, call)
    response, raw = stream_bytes(emu, native.build_request(call, stream=True))
    assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert response.headers["transfer-encoding"] == "chunked"
    text = raw.decode("utf-8")
    frames = NATIVE_FRAME.findall(text)
    assert "".join(m.group(0) for m in NATIVE_FRAME.finditer(text)) == text  # nothing but frames
    assert [int(f[0]) for f in frames] == list(range(1, len(frames) + 1))
    assert {f[1] for f in frames} == {"result"}
    assert {f[2] for f in frames} == {"200"}
    datas = [json.loads(f[3]) for f in frames]
    # Same keys, in the same order, as the recorded frame.
    assert list(datas[0]) == list(recorded_data)
    assert list(datas[0]["usage"]) == list(recorded_data["usage"])
    assert list(datas[0]["output"]["choices"][0]) == list(recorded_data["output"]["choices"][0])
    assert [d["output"]["choices"][0]["finish_reason"] for d in datas] == ["null"] * (len(datas) - 1) + ["stop"]
    outputs = [d["usage"]["output_tokens"] for d in datas]
    assert outputs == sorted(outputs)
    assert outputs[-1] == whole.usage.output_tokens
    assert {d["request_id"] for d in datas} == {response.headers["x-request-id"]}
    assert datas[-1]["output"]["choices"][0]["message"]["content"] == []
    deltas = "".join(c["text"] for d in datas for c in d["output"]["choices"][0]["message"]["content"])
    assert deltas == whole.raw_text

    assembler = native.NativeStreamAssembler(call, response.headers)
    chunks = assembler.feed(raw) + assembler.close()
    assert assembler.result().tables == whole.tables
    assert chunks[-1].usage == whole.usage


def test_native_stream_carries_ocr_result_in_the_last_frame(emu: Emulator) -> None:
    call = make_call(Task.KEY_INFORMATION_EXTRACTION)
    response, raw = stream_bytes(emu, native.build_request(call, stream=True))
    assembler = native.NativeStreamAssembler(call, response.headers)
    assembler.feed(raw)
    assembler.close()
    assert assembler.result().fields == {
        "乘车日期": "2013-06-29",
        "发票": {"发票代码": "221021325353", "发票号码": "10283819"},
    }


def test_native_stream_without_incremental_output_repeats_the_text(emu: Emulator) -> None:
    call = make_call(Task.FORMULA_RECOGNITION)
    request = native.build_request(call, stream=True)
    del request.json["parameters"]["incremental_output"]
    _, raw = stream_bytes(emu, request)
    datas = [json.loads(f[3]) for f in NATIVE_FRAME.findall(raw.decode("utf-8"))]
    texts = [c["text"] for d in datas[:-1] for c in d["output"]["choices"][0]["message"]["content"]]
    assert all(later.startswith(earlier) for earlier, later in itertools.pairwise(texts))
    assert texts[-1].startswith("$$") and texts[-1].endswith("$$")


@pytest.mark.parametrize("task", [Task.TEXT_RECOGNITION, Task.KEY_INFORMATION_EXTRACTION, Task.DOCUMENT_PARSING])
def test_compatible_stream_with_done_and_usage(emu: Emulator, task: Task) -> None:
    call = make_call(task)
    whole = compat.parse_response(200, {}, post(emu, compat.build_request(call)).content, call)
    response, raw = stream_bytes(emu, compat.build_request(call, stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = raw.decode("utf-8").split("\n\n")
    assert frames[-1] == ""
    assert frames[-2] == "data: [DONE]"
    usage_chunk = json.loads(frames[-3][len("data: ") :])
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == whole.usage.input_tokens
    assert all(f.startswith("data: ") for f in frames[:-1])
    assembler = compat.OpenAIStreamAssembler(call, response.headers)
    chunks = assembler.feed(raw) + assembler.close()
    result = assembler.result()
    assert result.raw_text == whole.raw_text
    assert result.usage == whole.usage
    assert result.fields == whole.fields
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage == whole.usage


def test_compatible_stream_without_include_usage(emu: Emulator) -> None:
    request = compat.build_request(make_call(), stream=True)
    del request.json["stream_options"]
    _, raw = stream_bytes(emu, request)
    assert b'"choices":[]' not in raw
    assert raw.endswith(b"data: [DONE]\n\n")


# ----------------------------------------------------------------------------------------------------------------
# Rate limit, keys, latency


def test_rpm_limit_answers_429_with_retry_after() -> None:
    with Emulator(rpm=2) as emu:
        call = make_call()
        assert post(emu, native.build_request(call)).status_code == 200
        assert post(emu, native.build_request(call)).status_code == 200
        refused = post(emu, native.build_request(call))
        compat_refused = post(emu, compat.build_request(call))
        stats = emu.stats
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "Throttling.RateQuota"
    assert body["message"] == "Requests rate limit exceeded, please try again later."
    assert body["request_id"] == refused.headers["x-request-id"]
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    with pytest.raises(RateLimitError) as info:
        native.parse_response(429, refused.headers, refused.content, call)
    assert info.value.retry_after == float(retry_after)
    assert compat_refused.status_code == 429
    assert compat_refused.json()["error"]["code"] == "Throttling.RateQuota"
    assert stats.throttled == 2
    assert stats.responses == {200: 2, 429: 2}


def test_api_key_check() -> None:
    recorded = load_recording("cnblogs/auth-error-nosse.response.body.txt")
    with Emulator(valid_keys={"good"}) as emu:
        call = make_call()
        assert post(emu, native.build_request(call), key="good").status_code == 200
        wrong = post(emu, native.build_request(call), key="bad")
        missing = post(emu, native.build_request(call), key=None)
        compat_wrong = post(emu, compat.build_request(call), key="bad")
        assert emu.stats.unauthorized == 3
    assert wrong.status_code == 401
    assert {k: v for k, v in wrong.json().items() if k != "request_id"} == {
        k: v for k, v in recorded.items() if k != "request_id"
    }
    assert missing.status_code == 401
    with pytest.raises(AuthenticationError):
        native.parse_response(401, wrong.headers, wrong.content, call)
    assert compat_wrong.status_code == 401
    assert compat_wrong.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(AuthenticationError):
        compat.parse_response(401, compat_wrong.headers, compat_wrong.content, call)


def test_latency_per_request_and_spread_over_stream_frames() -> None:
    with Emulator(latency=0.2) as emu:
        call = make_call(Task.FORMULA_RECOGNITION)
        start = time.monotonic()
        post(emu, native.build_request(call))
        assert time.monotonic() - start >= 0.2
        start = time.monotonic()
        with httpx.stream(
            "POST",
            emu.base_url + native.GENERATION_PATH,
            content=native.build_request(call, stream=True).content(),
            headers={"X-DashScope-SSE": "enable", "Content-Type": "application/json"},
        ) as response:
            first_at = None
            for _ in response.iter_bytes():
                if first_at is None:
                    first_at = time.monotonic() - start
        total = time.monotonic() - start
    assert total >= 0.2
    assert first_at is not None and first_at < total


# ----------------------------------------------------------------------------------------------------------------
# Faults


@pytest.mark.parametrize("status", [429, 500, 503])
def test_status_faults(emu: Emulator, status: int) -> None:
    emu.inject(str(status))
    call = make_call()
    response = post(emu, native.build_request(call))
    assert response.status_code == status
    assert set(response.json()) == {"code", "message", "request_id"}
    with pytest.raises(RateLimitError if status == 429 else ServerError):
        native.parse_response(status, response.headers, response.content, call)
    emu.inject(str(status))
    response = post(emu, compat.build_request(call))
    assert response.status_code == status
    assert set(response.json()) == {"error", "request_id"}
    assert post(emu, native.build_request(call)).status_code == 200
    assert emu.stats.faults == {str(status): 2}


def test_drop_fault_closes_without_an_answer(emu: Emulator) -> None:
    emu.inject("drop")
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, native.build_request(make_call()))
    assert emu.stats.responses == {}
    assert post(emu, native.build_request(make_call())).status_code == 200


def test_garbled_fault(emu: Emulator) -> None:
    emu.inject("garbled", "garbled")
    call = make_call()
    response = post(emu, native.build_request(call))
    assert response.status_code == 200
    with pytest.raises(ResponseDecodeError):
        native.parse_response(200, response.headers, response.content, call)
    response = post(emu, compat.build_request(call))
    with pytest.raises(ResponseDecodeError):
        compat.parse_response(200, response.headers, response.content, call)


def test_native_stream_error_fault(emu: Emulator) -> None:
    emu.inject("stream_error")
    call = make_call(Task.TEXT_RECOGNITION)
    response, raw = stream_bytes(emu, native.build_request(call, stream=True))
    assert response.status_code == 200
    frames = NATIVE_FRAME.findall(raw.decode("utf-8"))
    assert frames[-1][1:3] == ("error", "500")
    assert json.loads(frames[-1][3])["code"] == "InternalError"
    assert len(frames) > 2
    assembler = native.NativeStreamAssembler(call, response.headers)
    with pytest.raises(ServerError):
        assembler.feed(raw)
    assert emu.stats.successes == 0


def test_compatible_stream_error_fault_in_both_shapes(emu: Emulator) -> None:
    call = make_call(Task.TEXT_RECOGNITION)
    shapes = set()
    for _ in range(8):
        emu.inject("stream_error")
        _, raw = stream_bytes(emu, compat.build_request(call, stream=True))
        assert b"[DONE]" not in raw
        last = raw.decode("utf-8").rstrip("\n").split("\n\n")[-1]
        shapes.add("B" if last.startswith("event: error\n") else "A")
        assembler = compat.OpenAIStreamAssembler(call, {})
        with pytest.raises(ServerError):
            assembler.feed(raw)
    assert shapes == {"A", "B"}


@pytest.mark.parametrize("protocol", ["dashscope", "openai"])
def test_stream_cut_fault(emu: Emulator, protocol: str) -> None:
    emu.inject("stream_cut")
    call = make_call(Task.TEXT_RECOGNITION)
    module: Any = native if protocol == "dashscope" else compat
    response, raw = stream_bytes(emu, module.build_request(call, stream=True))
    assert response.status_code == 200
    assert b"[DONE]" not in raw
    assert b'"finish_reason":"stop"' not in raw
    assembler = (
        native.NativeStreamAssembler(call, response.headers)
        if protocol == "dashscope"
        else compat.OpenAIStreamAssembler(call, response.headers)
    )
    chunks = assembler.feed(raw)
    assert chunks
    with pytest.raises(ResponseDecodeError):
        assembler.close()


def test_stream_only_faults_on_plain_requests(emu: Emulator) -> None:
    emu.inject("stream_error", "stream_cut")
    assert post(emu, native.build_request(make_call())).status_code == 500
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, native.build_request(make_call()))


def test_random_faults_are_seeded_and_reproducible() -> None:
    def run(seed: int) -> list[int]:
        with Emulator(faults=["500", "503", "429"], fault_rate=0.5, seed=seed) as emu:
            return [post(emu, native.build_request(make_call())).status_code for _ in range(16)]

    first = run(3)
    assert first == run(3)
    assert set(first) - {200}
    assert 200 in first


def test_weighted_faults_and_validation() -> None:
    with Emulator(faults={"503": 1.0}) as emu:
        assert post(emu, native.build_request(make_call())).status_code == 503
    with pytest.raises(ValueError, match="unknown fault"):
        Emulator(faults=["404"])
    with pytest.raises(ValueError, match="fault_rate"):
        Emulator(fault_rate=2)
    with pytest.raises(ValueError, match="unknown fault"):
        Emulator().inject("nope")
    assert set(FAULT_KINDS) == {
        *("429", "429_retry_after", "500", "503", "drop", "timeout", "garbled", "stream_error", "stream_cut"),
        "insufficient_quota",  # the compatible mode's token throttling (issue 16)
        *("400", "401", "403", "DataInspectionFailed", "Arrearage"),
    }


# ----------------------------------------------------------------------------------------------------------------
# Through the real client


@pytest.mark.parametrize("task", list(Task))
def test_client_every_task(emu: Emulator, image: Path, task: Task) -> None:
    with QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_WAIT, model=MODEL) as client:
        result = client.ocr(image, task=task)
        chunks = list(client.stream(image, task=task))
    assert result.text.startswith(EXPECTED_START[task]), result.text[:40]
    assert result.provider == "dashscope"
    check_views(task, result)
    assert "".join(c.text for c in chunks) == result.raw_text
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage == result.usage
    assert emu.request_log[0].json["parameters"]["ocr_options"]["task"] == task.value


@pytest.mark.parametrize("fault", ["500", "503", "429", "drop", "garbled"])
def test_client_retries_survive_faults(emu: Emulator, image: Path, fault: str) -> None:
    emu.inject(fault, fault)
    with QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_WAIT) as client:
        result = client.ocr(image, task="table_parsing", model=MODEL)
    assert result.tables
    stats = emu.stats
    assert stats.requests == 3
    assert stats.faults == {fault: 2}
    assert stats.successes == 1


def test_client_retries_a_mix_of_faults_and_counts_one_success_per_image(emu: Emulator, image: Path) -> None:
    emu.inject("500", "503", "429", "drop")
    policy = RetryPolicy(max_retries=4, initial_delay=0, max_delay=0)
    with QwenOCR(api_key="k", base_url=emu.base_url, retry=policy) as client:
        assert client.ocr(image).text
    stats = emu.stats
    assert stats.requests == 5
    assert list(stats.successes_by_image.values()) == [1]


def test_client_stream_faults(emu: Emulator, image: Path) -> None:
    with QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_WAIT) as client:
        emu.inject("stream_error")
        with pytest.raises(ServerError):
            list(client.stream(image))
        emu.inject("stream_cut")
        with pytest.raises(ResponseDecodeError):
            list(client.stream(image))
        emu.inject("503")  # before the first chunk: retried
        assert "".join(c.text for c in client.stream(image))


def test_client_wrong_key_and_rate_limit() -> None:
    with Emulator(valid_keys={"right"}, rpm=1) as emu:
        data = png()
        with (
            QwenOCR(api_key="wrong", base_url=emu.base_url, retry=NO_WAIT) as client,
            pytest.raises(AuthenticationError),
        ):
            client.ocr(data)
        policy = RetryPolicy(max_retries=0)
        with QwenOCR(api_key="right", base_url=emu.base_url, retry=policy) as client:
            assert client.ocr(data).text
            with pytest.raises(RateLimitError) as info:
                client.ocr(data)
        assert info.value.retry_after is not None and info.value.retry_after > 0


async def test_async_client_through_the_emulator(image: Path) -> None:
    with Emulator(faults=["500"], fault_rate=0.3, seed=1) as emu:
        policy = RetryPolicy(max_retries=8, initial_delay=0, max_delay=0)
        async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=policy, max_concurrency=4) as client:
            results = await client.ocr_many([image] * 6, task="formula_recognition", model=MODEL)
        stats = emu.stats
    assert all(isinstance(r, OCRResult) and r.formulas for r in results)
    assert stats.successes == 6
    assert stats.requests == 6 + stats.faults.get("500", 0)


# ----------------------------------------------------------------------------------------------------------------
# The local reader (the engine is stubbed here) and the command line


def test_local_reader_uses_the_local_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[bytes, Task | None]] = []

    class StubEngine:
        def ocr(self, image: bytes, *, task: Task | None = None) -> OCRResult:
            seen.append((image, task))
            line = TextLine(text="Hello", location=(10, 30, 60, 30, 60, 45, 10, 45), rotate_rect=(35, 37, 15, 50, 0))
            return OCRResult(text="Hello", raw_text="Hello", lines=[line], usage=Usage(input_tokens=1))

    module = types.ModuleType("qwen_ocr.local")
    module.get_engine = StubEngine  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qwen_ocr.local", module)
    data = png()
    with Emulator(reader="local") as emu:
        call = make_call(Task.ADVANCED_RECOGNITION, data=data)
        response = post(emu, native.build_request(call))
        result = native.parse_response(200, response.headers, response.content, call)
        compat_response = post(emu, compat.build_request(make_call(data=data)))
        remote = post(emu, native.build_request(OCRCall(image=prepare_image("https://x/a.png"), spec=call.spec)))
    assert result.lines[0].text == "Hello"
    assert result.lines[0].location == (10, 30, 60, 30, 60, 45, 10, 45)
    assert compat_response.json()["choices"][0]["message"]["content"] == "Hello"
    assert seen[0] == (data, Task.ADVANCED_RECOGNITION)
    assert seen[1] == (data, Task.TEXT_RECOGNITION)
    assert remote.status_code == 400


def test_local_reader_with_the_real_engine() -> None:
    pytest.importorskip("rapidocr")
    pytest.importorskip("onnxruntime")
    from PIL import ImageFont

    im = Image.new("RGB", (640, 160), "white")
    ImageDraw.Draw(im).text((20, 50), "Hello OCR 2025", fill="black", font=ImageFont.load_default(size=48))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    with Emulator(reader="local") as emu, QwenOCR(api_key="k", base_url=emu.base_url, timeout=120) as client:
        result = client.ocr(buf.getvalue(), task="advanced_recognition", model=MODEL)
    assert [line.text for line in result.lines] == ["Hello OCR 2025"]
    left, top, right, bottom = result.lines[0].bbox
    assert left < 60 and right > 300 and top < 80 < bottom


def test_local_reader_without_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "qwen_ocr.local", None)  # makes the import fail
    with Emulator(reader="local") as emu:
        response = post(emu, native.build_request(make_call()))
    assert response.status_code == 500
    assert "qwen-ocr[local]" in response.json()["message"]


def test_command_line_starts_serves_and_stops() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "qwen_ocr.testing.emulator", "--port", "0", "--rpm", "100", "--api-key", "cli-key"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
        assert httpx.get(url + "/health", timeout=5).json()["status"] == "ok"
        call = make_call(Task.FORMULA_RECOGNITION)
        request = native.build_request(call)
        headers = {**request.headers, "Authorization": "Bearer cli-key"}
        response = httpx.post(url + request.path, content=request.content(), headers=headers, timeout=5)
        assert native.parse_response(200, response.headers, response.content, call).formulas
        headers["Authorization"] = "Bearer other"
        assert httpx.post(url + request.path, content=request.content(), headers=headers).status_code == 401
        stats = httpx.get(url + "/stats", timeout=5).json()
        assert stats["responses"]["401"] == 1 and stats["successes"] == 1 and stats["unauthorized"] == 1
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "RuntimeWarning" not in stderr
    assert "qwen-ocr emulator on" in stderr


def test_command_line_rejects_unknown_faults() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "qwen_ocr.testing.emulator", "--port", "0", "--faults", "500,boom"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "unknown fault" in done.stderr


# ----------------------------------------------------------------------------------------------------------------
# Through the real client in compatible mode (DashScope's path, and a self-hosted server's /v1)


@pytest.mark.parametrize("task", list(Task))
def test_client_compatible_mode_every_task(emu: Emulator, image: Path, task: Task) -> None:
    with QwenOCR(api_key="k", base_url=emu.base_url, protocol="openai", retry=NO_WAIT, model=MODEL) as client:
        result = client.ocr(image, task=task)
        chunks = list(client.stream(image, task=task))
    expected = Task.TEXT_RECOGNITION if task is Task.MULTI_LAN else task
    assert result.provider == "openai"
    assert result.text.startswith(EXPECTED_START[expected]), result.text[:40]
    if task is not Task.ADVANCED_RECOGNITION:
        check_views(expected, result)
    else:
        assert len(result.lines) == 12
    assert "".join(c.text for c in chunks) == result.raw_text
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage == result.usage
    log = emu.request_log
    assert {entry.path for entry in log} == {compat.COMPAT_PATH}
    assert log[0].json["messages"][0]["content"][1]["text"] == task.prompt()


def test_client_self_hosted_v1_base_url(emu: Emulator, image: Path) -> None:
    with QwenOCR(base_url=emu.base_url + "/v1", protocol="openai", retry=NO_WAIT, model=MODEL) as client:
        result = client.ocr(image, task="table_parsing")
    assert result.tables
    entry = emu.request_log[0]
    assert entry.path == compat.SELF_HOSTED_PATH
    assert "Authorization" not in entry.headers


def test_per_second_limit_refuses_a_burst_under_the_minute_limit() -> None:
    with Emulator(rpm=120, per_second=True) as emu:  # 2 per second
        call = make_call(Task.TEXT_RECOGNITION)
        request = native.build_request(call)
        headers = {**request.headers, "Authorization": "Bearer k"}
        codes = [
            httpx.post(emu.base_url + request.path, content=request.content(), headers=headers).status_code
            for _ in range(4)
        ]
    assert codes == [200, 200, 429, 429]
    assert emu.stats.throttled == 2


def test_the_digest_reader_gives_each_image_its_own_text() -> None:
    first, second = _digest_png(1), _digest_png(2)
    with Emulator(reader="digest") as emu:
        client = QwenOCR(api_key="sk-test", base_url=emu.base_url, protocol="openai")
        texts = [client.ocr(first).text, client.ocr(second).text, client.ocr(first, task="table_parsing").text]
        client.close()
    from qwen_ocr.testing._wire import image_digest

    sent = image_digest(prepare_image(first).url)
    assert sent is not None
    assert texts[0] == f"image {sent[:16]}" and texts[0] != texts[1] and texts[2] == texts[0]
    with pytest.raises(ValueError, match="'recorded', 'digest' or 'local'"):
        Emulator(reader="echo")  # type: ignore[arg-type]


def _digest_png(index: int) -> bytes:
    im = Image.new("L", (64, 32), 255)
    ImageDraw.Draw(im).text((4, 10), str(index), fill=0)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()

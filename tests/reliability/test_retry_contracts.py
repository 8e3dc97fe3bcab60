"""Regressions found by this suite: what the retry contract promises, checked where it used to break.

- A stream's failures before its first chunk are retried (the docstring's promise): a garbled non-SSE reply, an
  error frame or the end of the stream before any text used to reach the caller on the first attempt.
- A ``Retry-After`` is honoured up to ``RetryPolicy.max_retry_after`` by the retry *and* by the pacer: the pacer
  used to pause every sender for the full value (30 s here) although the policy caps it at 50 ms.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from qwen_ocr import AsyncQwenOCR, QwenOCR, RetryPolicy, ServerError
from qwen_ocr.testing import Emulator, load_recording

from ._support import numbered_png

FAST = RetryPolicy(max_retries=3, initial_delay=0, max_delay=0, jitter=0)
PLAIN = load_recording("cnblogs/multimodal-generation-vl-ocr-nosse.response.body.txt")
PLAIN_TEXT = PLAIN["output"]["choices"][0]["message"]["content"][0]["text"]


def sse(*frames: dict[str, object], event: str = "result", status: int = 200) -> bytes:
    return b"".join(
        f"id:{i + 1}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{json.dumps(f)}\n\n".encode()
        for i, f in enumerate(frames)
    )


def text_frame(text: str, finish: str = "null") -> dict[str, object]:
    return {
        "output": {
            "choices": [{"message": {"content": [{"text": text}], "role": "assistant"}, "finish_reason": finish}]
        },
        "usage": {"input_tokens": 10, "output_tokens": 1},
        "request_id": "rid",
    }


ERROR_FRAME = {"code": "InternalError", "message": "boom", "request_id": "rid"}
GOOD = sse(text_frame("Hello "), text_frame("world"), text_frame("", finish="stop"))
BAD_STARTS = {
    "garbled JSON instead of a stream": (b'{"output":{"choi', "application/json"),
    "an error frame first": (sse(ERROR_FRAME, event="error", status=500), "text/event-stream"),
    "the end of the stream before any text": (b"", "text/event-stream"),
    "a cut frame and nothing else": (b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{", "text/event-stream"),
}


def scripted(first: tuple[bytes, str]) -> tuple[list[int], httpx.MockTransport]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        body, mime = first if len(calls) == 1 else (GOOD, "text/event-stream")
        return httpx.Response(200, content=body, headers={"content-type": mime})

    return calls, httpx.MockTransport(handler)


@pytest.mark.parametrize("name", list(BAD_STARTS))
def test_a_failure_before_the_first_chunk_is_retried(name: str) -> None:
    calls, transport = scripted(BAD_STARTS[name])
    client = QwenOCR(api_key="k", retry=FAST, http_client=httpx.Client(transport=transport))
    assert "".join(chunk.text for chunk in client.stream(numbered_png(1))) == "Hello world"
    assert len(calls) == 2


@pytest.mark.parametrize("name", list(BAD_STARTS))
async def test_a_failure_before_the_first_chunk_is_retried_async(name: str) -> None:
    calls, transport = scripted(BAD_STARTS[name])
    client = AsyncQwenOCR(api_key="k", retry=FAST, http_client=httpx.AsyncClient(transport=transport))
    assert "".join([chunk.text async for chunk in client.stream(numbered_png(1))]) == "Hello world"
    assert len(calls) == 2


def test_an_error_after_the_first_chunk_is_raised_not_retried() -> None:
    # Text already given to the caller cannot be taken back: the caller decides (see test_fault_job's stream pass).
    pieces = [sse(text_frame("Hello ")), sse(ERROR_FRAME, event="error", status=500)]
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(200, content=iter(pieces), headers={"content-type": "text/event-stream"})

    client = QwenOCR(api_key="k", retry=FAST, http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    seen: list[str] = []
    with pytest.raises(ServerError):
        seen.extend(chunk.text for chunk in client.stream(numbered_png(1)))
    assert seen == ["Hello "]
    assert len(calls) == 1


@pytest.fixture
def long_retry_after() -> Iterator[Emulator]:
    with Emulator(fault_retry_after=30) as emu:
        yield emu


def test_the_pacer_caps_retry_after_like_the_retry_does(long_retry_after: Emulator) -> None:
    emu = long_retry_after
    policy = RetryPolicy(max_retries=2, initial_delay=0, max_delay=0, max_retry_after=0.05)
    client = QwenOCR(api_key="k", base_url=emu.base_url, retry=policy)  # paced: a host of our own, rpm learned
    assert client.pacer is not None
    emu.inject("429_retry_after")
    done = threading.Event()
    started = time.monotonic()
    thread = threading.Thread(target=lambda: (client.ocr(numbered_png(2)), done.set()), daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert done.is_set(), "the pacer waited out the server's 30 s Retry-After instead of the policy's 50 ms"
    assert time.monotonic() - started < 10
    assert client.pacer.stats.throttled == 1
    assert client.pacer.stats.waited < 1.0
    assert emu.stats.successes == 1


async def test_the_async_pacer_caps_retry_after_too(long_retry_after: Emulator) -> None:
    emu = long_retry_after
    policy = RetryPolicy(max_retries=2, initial_delay=0, max_delay=0, max_retry_after=0.05)
    emu.inject("429_retry_after")
    async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=policy) as client:
        result = await asyncio.wait_for(client.ocr(numbered_png(3)), timeout=20)
    assert result.text == PLAIN_TEXT

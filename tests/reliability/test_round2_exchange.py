"""Reliability round 2, the request exchange written once for both clients (``qwen_ocr._exchange``): the defects the
two hand-written shells had drifted into, and the contracts the single exchange must keep.

- the async ``stream()`` checked its arguments only at the first ``__anext__`` (the sync one when called);
- a stream read whole (the local engine) was one chunk of ``text``, a whole reply of the service one chunk of
  ``raw_text``: the chunks of a stream add up to the model's text as written, ``raw_text``, everywhere;
- a sync stream waited for its request slot deaf to :func:`~qwen_ocr.retry.cancel_scope`;
- ``ClientSettings`` silently dropped a setting it did not know (``tiemout=``), and lacked ``cache``.

Every test runs under a hang guard (``time_budget``). Nothing reaches the network: replies come from
``httpx.MockTransport`` or from the loopback emulator.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from qwen_ocr import (
    AsyncQwenOCR,
    InvalidArgumentError,
    MissingAPIKeyError,
    OCRResult,
    QwenOCR,
    RetryPolicy,
    UnsupportedTaskError,
)
from qwen_ocr.errors import RequestCancelledError
from qwen_ocr.retry import cancel_scope
from qwen_ocr.settings import ClientSettings
from qwen_ocr.testing import Emulator

from ._support import numbered_png, time_budget

BUDGET = 30.0
NO_RETRY = RetryPolicy(max_retries=0, initial_delay=0.0, max_delay=0.0, jitter=0.0)
URL = "https://example.com/page.png"
FENCED = "```html\n<table><tr><td>1</td></tr></table>\n```"


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    with time_budget(BUDGET):
        yield


class Counting:
    """A mock transport that answers every request with a native JSON reply of ``text``, counting requests."""

    def __init__(self, text: str = "hello") -> None:
        self.text = text
        self.requests = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        body = {
            "output": {"choices": [{"finish_reason": "stop", "message": {"content": [{"text": self.text}]}}]},
            "usage": {"input_tokens": 3, "output_tokens": 2},
            "request_id": "r-1",
        }
        return httpx.Response(200, json=body, headers={"content-type": "application/json"})


# ----------------------------------------------------------------------------------------------------------------
# The async stream checks its arguments when called, as the sync one does

BAD_CALLS: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"task": "summarise"}, InvalidArgumentError),
    ({"temperature": 5}, InvalidArgumentError),
    ({"max_tokens": 0}, InvalidArgumentError),
    ({"min_pixels": 10, "max_pixels": 5}, InvalidArgumentError),
    ({"task": "table_parsing", "schema": {"Total": ""}}, InvalidArgumentError),
    ({"task": "table_parsing", "model": "qwen-vl-ocr-2024-10-28"}, UnsupportedTaskError),
]


@pytest.mark.parametrize(("options", "error"), BAD_CALLS)
def test_async_stream_refuses_bad_arguments_when_called_as_sync_does(
    options: dict[str, Any], error: type[Exception]
) -> None:
    transport = Counting()
    sync = QwenOCR(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(transport)))
    aclient = AsyncQwenOCR(api_key="k", http_client=httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    with pytest.raises(error):
        sync.stream(URL, **options)
    with pytest.raises(error):
        aclient.stream(URL, **options)  # not iterated: the error is the call's
    assert transport.requests == 0


def test_async_stream_refuses_a_missing_key_when_called(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    aclient = AsyncQwenOCR(provider="dashscope")
    with pytest.raises(MissingAPIKeyError):
        aclient.stream(URL)


def test_async_stream_reads_its_image_when_iterated_not_when_called() -> None:
    transport = Counting()
    aclient = AsyncQwenOCR(api_key="k", http_client=httpx.AsyncClient(transport=httpx.MockTransport(transport)))

    async def main() -> list[str]:
        chunks = aclient.stream(numbered_png(1))  # checked, not read: no CPU work on the event loop here
        assert transport.requests == 0
        return [chunk.text async for chunk in chunks]

    assert asyncio.run(main()) == ["hello"]
    assert transport.requests == 1


# ----------------------------------------------------------------------------------------------------------------
# A stream read whole is one chunk of raw_text, whoever read it


class _Engine:
    """A local engine whose text differs from its raw text (as a tidied reading would)."""

    def ocr(self, image: Any, **options: Any) -> OCRResult:
        return OCRResult(text="tidy", raw_text=FENCED, provider="local", model="fake", finish_reason="stop")


def test_a_local_stream_is_one_chunk_of_raw_text_sync_and_async(monkeypatch: pytest.MonkeyPatch) -> None:
    module = SimpleNamespace(get_engine=lambda: _Engine(), is_available=lambda: True)
    monkeypatch.setattr("qwen_ocr._base._local_module", lambda: module)
    client = QwenOCR(provider="local")
    assert [c.text for c in client.stream(b"ignored")] == [FENCED]

    async def main() -> list[str]:
        return [c.text async for c in AsyncQwenOCR(provider="local").stream(b"ignored")]

    assert asyncio.run(main()) == [FENCED]


def test_a_whole_reply_to_a_stream_is_one_chunk_of_raw_text_sync_and_async() -> None:
    transport = Counting(FENCED)
    sync = QwenOCR(api_key="k", http_client=httpx.Client(transport=httpx.MockTransport(transport)))
    aclient = AsyncQwenOCR(api_key="k", http_client=httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    whole = sync.ocr(URL, task="table_parsing")
    assert whole.raw_text == FENCED and whole.text != FENCED  # the fences are the raw text's only
    (chunk,) = list(sync.stream(URL, task="table_parsing"))

    async def main() -> list[str]:
        return [c.text async for c in aclient.stream(URL, task="table_parsing")]

    assert chunk.text == FENCED and asyncio.run(main()) == [FENCED]
    assert chunk.finish_reason == "stop" and chunk.usage is not None and chunk.usage.output_tokens == 2


# ----------------------------------------------------------------------------------------------------------------
# Request slots


def test_a_sync_stream_waiting_for_a_slot_stops_when_its_reading_is_cancelled() -> None:
    with Emulator() as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=1, retry=NO_RETRY)
        holder = client.stream(numbered_png(1))
        next(holder)  # the only request slot is held by this stream until it is closed
        stop = threading.Event()
        outcome: list[str] = []

        def waiter() -> None:
            with cancel_scope(stop):
                try:
                    list(client.stream(numbered_png(2)))
                    outcome.append("read")
                except RequestCancelledError:
                    outcome.append("cancelled")

        thread = threading.Thread(target=waiter, daemon=True)
        thread.start()
        time.sleep(0.2)
        stop.set()
        thread.join(5.0)
        held = list(outcome)
        holder.close()
        thread.join(5.0)
        client.close()
    assert held == ["cancelled"]


def test_a_stream_closed_early_frees_its_slot_sync_and_async() -> None:
    with Emulator() as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=1, retry=NO_RETRY)
        stream = client.stream(numbered_png(3))
        next(stream)
        stream.close()
        assert client.ocr(numbered_png(4)).text  # the slot is free again
        client.close()

        async def main() -> str:
            async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=1, retry=NO_RETRY) as aclient:
                chunks = aclient.stream(numbered_png(5))
                await chunks.__anext__()
                await chunks.aclose()  # type: ignore[attr-defined]
                return (await asyncio.wait_for(aclient.ocr(numbered_png(6)), 10)).text

        assert asyncio.run(main())


def test_streams_and_readings_of_both_clients_agree() -> None:
    with Emulator(chunk_chars=3) as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY)
        whole = client.ocr(numbered_png(7), task="text_recognition")
        chunks = list(client.stream(numbered_png(7), task="text_recognition"))
        client.close()

        async def main() -> list[str]:
            async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, retry=NO_RETRY) as aclient:
                return [c.text async for c in aclient.stream(numbered_png(7), task="text_recognition")]

        achunks = asyncio.run(main())
    assert len(chunks) > 1 and "".join(c.text for c in chunks) == whole.raw_text == "".join(achunks)
    assert chunks[-1].finish_reason == "stop"


# ----------------------------------------------------------------------------------------------------------------
# Settings


def test_client_settings_refuse_an_unknown_setting_instead_of_dropping_it() -> None:
    with pytest.raises(InvalidArgumentError, match="did you mean 'timeout'"):
        ClientSettings(api_key="k", tiemout=5)  # type: ignore[call-arg]


def test_client_settings_build_clients_with_the_cache(tmp_path: Any) -> None:
    transport = Counting()
    settings = ClientSettings(api_key="k", cache=str(tmp_path))  # type: ignore[call-arg]
    for _ in range(2):
        client = QwenOCR(
            **{**settings.client_kwargs(), "http_client": httpx.Client(transport=httpx.MockTransport(transport))}
        )
        assert client.ocr(URL).text == "hello"
    assert transport.requests == 1
    assert json.loads(settings.model_dump_json())["cache"] == str(tmp_path)

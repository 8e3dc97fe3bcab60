"""Choosing the provider and protocol: DashScope native, OpenAI-compatible (DashScope or self-hosted), local."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from qwen_ocr import AsyncQwenOCR, MissingAPIKeyError, OCRResult, QwenOCR, Task
from qwen_ocr.testing import Emulator
from tests.conftest import FAST_RETRY, make_image


@pytest.fixture(scope="module")
def emulator() -> Any:
    with Emulator() as emu:
        yield emu


@pytest.mark.parametrize("task", [None, *Task])
def test_openai_protocol_through_the_client_for_every_task(emulator: Any, task: Task | None) -> None:
    with QwenOCR(api_key="k", base_url=emulator.base_url, protocol="openai", retry=FAST_RETRY) as client:
        result = client.ocr("https://example.com/page.png", task=task)
    assert result.provider == "openai"
    assert result.task == task
    assert result.raw_text
    if task is Task.TABLE_PARSING:
        assert result.tables
    if task is Task.KEY_INFORMATION_EXTRACTION:
        assert isinstance(result.fields, dict)
    if task is Task.DOCUMENT_PARSING:
        assert result.latex
    if task is Task.FORMULA_RECOGNITION:
        assert result.formulas
    if task is Task.ADVANCED_RECOGNITION:
        assert result.lines


def test_openai_protocol_streams_sync_and_async(emulator: Any) -> None:
    with QwenOCR(api_key="k", base_url=emulator.base_url, provider="openai", retry=FAST_RETRY) as client:
        chunks = list(client.stream("https://example.com/page.png", task="text_recognition"))
    assert chunks[-1].finish_reason == "stop"
    assert "".join(c.text for c in chunks)

    async def run() -> list[Any]:
        async with AsyncQwenOCR(api_key="k", base_url=emulator.base_url, protocol="openai") as client:
            return [c async for c in client.stream("https://example.com/page.png")]

    import asyncio

    assert asyncio.run(run())[-1].finish_reason == "stop"


def test_native_protocol_against_the_emulator(emulator: Any) -> None:
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST_RETRY) as client:
        result = client.ocr("https://example.com/poster.png", task="advanced_recognition")
    assert result.provider == "dashscope"
    assert result.lines[0].text == "INTERNATIONAL"


def test_self_hosted_openai_server_path_and_no_key() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]})

    client = QwenOCR(
        base_url="http://127.0.0.1:8000/v1",
        protocol="openai",
        model="Qwen/Qwen2.5-VL-7B-Instruct",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    assert client.ocr("https://example.com/a.png").text == "hi"
    assert seen[0].url.path == "/v1/chat/completions"
    assert "Authorization" not in seen[0].headers
    body = json.loads(seen[0].content)
    assert body["model"] == "Qwen/Qwen2.5-VL-7B-Instruct"
    assert body["messages"][0]["content"][0]["type"] == "image_url"


def test_dashscope_compatible_mode_path() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]})

    client = QwenOCR(api_key="k", protocol="openai", http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    client.ocr("https://example.com/a.png")
    assert str(seen[0].url) == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1/chat/completions"
    assert seen[0].headers["Authorization"] == "Bearer k"


class _FakeEngine:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def ocr(self, image: Any, **options: Any) -> OCRResult:
        self.calls.append(options)
        return OCRResult(
            text="offline text", raw_text="offline text", provider="local", model="fake-local", finish_reason="stop"
        )  # as the real engine: its raw text is its text


@pytest.fixture
def fake_local(monkeypatch: pytest.MonkeyPatch) -> _FakeEngine:
    engine = _FakeEngine()
    module = SimpleNamespace(get_engine=lambda: engine, is_available=lambda: True)
    monkeypatch.setattr("qwen_ocr._base._local_module", lambda: module)
    return engine


def test_auto_never_switches_to_the_local_engine_by_itself(fake_local: _FakeEngine) -> None:
    # Issue 18: with no key and the local extra installed, "auto" used to switch to RapidOCR with one log line.
    client = QwenOCR()
    assert client.provider == "dashscope"
    with pytest.raises(MissingAPIKeyError, match="DASHSCOPE_API_KEY") as caught:
        client.ocr(make_image(), task="text_recognition")
    assert "provider='local'" in caught.value.message
    assert fake_local.calls == []


def test_explicit_local_provider(fake_local: _FakeEngine) -> None:
    client = QwenOCR(provider="local")
    assert client.provider == "local"
    assert client.ocr(b"ignored by the fake", task="text_recognition").text == "offline text"
    assert fake_local.calls[0]["task"] is Task.TEXT_RECOGNITION
    chunks = list(client.stream(b"x"))
    assert [c.text for c in chunks] == ["offline text"]
    assert chunks[0].finish_reason == "stop"


async def test_async_local_provider(fake_local: _FakeEngine) -> None:
    async with AsyncQwenOCR(provider="local") as client:
        assert (await client.ocr(b"x")).text == "offline text"
        assert [c.text async for c in client.stream(b"x")] == ["offline text"]
        results = await client.ocr_many([b"a", b"b"])
    assert [r.text for r in results if isinstance(r, OCRResult)] == ["offline text"] * 2


def test_auto_with_a_key_uses_dashscope(fake_local: _FakeEngine) -> None:
    assert QwenOCR(api_key="k").provider == "dashscope"
    assert QwenOCR(api_key="k", protocol="openai").provider == "openai"
    assert QwenOCR(base_url="http://127.0.0.1:9").provider == "dashscope"  # your own server: no local fallback


def test_auto_without_key_or_engine_reports_the_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("qwen_ocr.local.is_available", lambda: False)
    client = QwenOCR()
    assert client.provider == "dashscope"
    with pytest.raises(MissingAPIKeyError, match="provider='local'"):
        client.ocr("https://example.com/a.png")


def test_unknown_provider_or_protocol() -> None:
    with pytest.raises(ValueError, match="provider"):
        QwenOCR(provider="azure")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="protocol"):
        QwenOCR(protocol="grpc")  # type: ignore[arg-type]

"""ocr_many: input order, bounded concurrency, and no lost work when some items fail."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from qwen_ocr import AsyncQwenOCR, BatchOCRError, InvalidImageError, OCRResult, QwenOCR, RateLimitError
from tests.conftest import FAST_RETRY


class Server:
    """Answers with the image URL's name as text, slowly for some, and refuses 'bad' ones with a 400."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = json.loads(request.content)["input"]["messages"][0]["content"][0]["image"]
        name = url.rsplit("/", 1)[-1]
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        try:
            time.sleep(0.02 if name.endswith("0") else 0.001)
        finally:
            with self.lock:
                self.in_flight -= 1
        if name.startswith("bad"):
            return httpx.Response(400, json={"code": "InvalidParameter", "message": f"bad {name}"})
        if name.startswith("busy"):
            return httpx.Response(429, json={"code": "Throttling.RateQuota", "message": "slow down"})
        content = [{"text": name}]
        return httpx.Response(
            200, json={"output": {"choices": [{"finish_reason": "stop", "message": {"content": content}}]}}
        )


async def _async_handler(server: Server, request: httpx.Request) -> httpx.Response:
    return server(request)


def urls(*names: str) -> list[str]:
    return [f"https://example.com/{n}" for n in names]


def test_results_in_input_order_with_bounded_concurrency() -> None:
    server = Server()
    client = QwenOCR(
        api_key="k",
        retry=FAST_RETRY,
        rpm=None,
        tpm=None,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    names = [f"img{i}" for i in range(40)]
    results = client.ocr_many(iter(urls(*names)), max_concurrency=4)
    assert [r.text for r in results if isinstance(r, OCRResult)] == names
    assert 1 < server.peak <= 4


def test_a_failure_raises_only_after_the_others_finished_and_carries_every_result() -> None:
    server = Server()
    client = QwenOCR(
        api_key="k",
        retry=FAST_RETRY,
        rpm=None,
        tpm=None,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    with pytest.raises(BatchOCRError) as info:
        client.ocr_many([*urls("a", "bad1", "c"), b"not an image", *urls("busy", "f")])
    err = info.value
    assert len(err.results) == 6
    assert [r.text for r in err.results if isinstance(r, OCRResult)] == ["a", "c", "f"]
    assert [i for i, _ in err.errors] == [1, 3, 4]
    assert isinstance(err.results[3], InvalidImageError)
    assert isinstance(err.results[4], RateLimitError)
    assert "3 of 6 items failed" in err.message


def test_return_exceptions_puts_errors_in_place() -> None:
    server = Server()
    client = QwenOCR(
        api_key="k",
        retry=FAST_RETRY,
        rpm=None,
        tpm=None,
        http_client=httpx.Client(transport=httpx.MockTransport(server)),
    )
    results = client.ocr_many(urls("a", "bad", "c"), return_exceptions=True)
    assert isinstance(results[1], Exception)
    assert [r.text for r in results if isinstance(r, OCRResult)] == ["a", "c"]
    assert client.ocr_many([]) == []


def test_unknown_options_are_rejected_up_front() -> None:
    client = QwenOCR(api_key="k")
    with pytest.raises(ValueError, match="unknown option"):
        client.ocr_many(urls("a"), tasks="oops")


async def test_async_ocr_many_order_concurrency_and_failures() -> None:
    server = Server()
    transport = httpx.MockTransport(lambda r: _async_handler(server, r))
    async with AsyncQwenOCR(
        api_key="k", retry=FAST_RETRY, rpm=None, tpm=None, http_client=httpx.AsyncClient(transport=transport)
    ) as client:
        names = [f"img{i}" for i in range(30)]
        results = await client.ocr_many(urls(*names), max_concurrency=5)
        assert [r.text for r in results if isinstance(r, OCRResult)] == names
        assert server.peak <= 5
        with pytest.raises(BatchOCRError) as info:
            await client.ocr_many(urls("a", "bad", "c"))
        assert [i for i, _ in info.value.errors] == [1]
        mixed = await client.ocr_many(urls("a", "bad"), return_exceptions=True)
        assert isinstance(mixed[1], Exception)

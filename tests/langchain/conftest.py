"""Fixtures of the LangChain tests.

``emu``: a loopback emulator for the test; ``client``: a sync client on it (``test_loader_support.sync_client``).

``image_ocr_stub``: a Qwen-OCR service stub (an ``httpx`` transport, no sockets) that answers by image content, so a
test can say "this image reads 'A', that one fails", and that counts requests in flight (peak concurrency).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx
import pytest

from qwen_ocr import AsyncQwenOCR, QwenOCR, prepare_image
from qwen_ocr.testing import Emulator, fake_native_response
from tests.langchain.test_loader_support import sync_client

Reply = str | int
"""A stub reply: the image's text, or an HTTP status for a failure."""

STUB_KEY = "sk-stub-secret-4242"
"""The API key the stub's clients carry; tests check that it never leaks."""

STUB_BASE_URL = "http://127.0.0.1:9"
"""Never contacted (the transport answers); a host of our own, so the client does not pace to DashScope's limits."""


def _find_image(value: Any) -> str | None:
    """The first image URL (``data:`` or remote) in a request body, wherever the protocol puts it."""
    if isinstance(value, str):
        return value if value.startswith(("data:", "http://", "https://", "oss://")) else None
    if isinstance(value, Mapping):
        for key in ("image", "image_url", "url"):
            if key in value:
                found = _find_image(value[key])
                if found:
                    return found
        values: Any = value.values()
    elif isinstance(value, list):
        values = value
    else:
        return None
    for item in values:
        found = _find_image(item)
        if found:
            return found
    return None


class ImageOCRStub:
    """Answers each OCR request by the image it carries.

    Args:
        replies: image (bytes, or a remote URL string) -> text, or an HTTP status for a failure, or a list of
            those for successive requests of that image (the last one repeats).
        default: the text for any other image.
        delay: seconds each request takes (so that concurrent requests overlap and can be counted).
        delays: seconds for particular images (to make replies arrive in another order than the requests).
    """

    def __init__(
        self,
        replies: Mapping[bytes | str, Reply | list[Reply]],
        *,
        default: str = "?",
        delay: float = 0.0,
        delays: Mapping[bytes | str, float] | None = None,
    ) -> None:
        self._replies: dict[str, list[Reply]] = {}
        for image, reply in replies.items():
            self._replies[self._key(image)] = list(reply) if isinstance(reply, list) else [reply]
        self._delays = {self._key(image): seconds for image, seconds in (delays or {}).items()}
        self.default = default
        self.delay = delay
        self.seen: list[str] = []
        """The image of each request, in arrival order (a ``data:`` URL or the remote URL)."""
        self.bodies: list[Any] = []
        self.peak = 0
        """The most requests in flight at once."""
        self._in_flight = 0
        self._lock = threading.Lock()

    @staticmethod
    def _key(image: bytes | str) -> str:
        return image if isinstance(image, str) else prepare_image(image).url

    @property
    def calls(self) -> int:
        return len(self.seen)

    def _enter(self, request: httpx.Request) -> tuple[Reply, float]:
        body = json.loads(request.content)
        image = _find_image(body) or ""
        with self._lock:
            self.seen.append(image)
            self.bodies.append(body)
            self._in_flight += 1
            self.peak = max(self.peak, self._in_flight)
            queue = self._replies.get(image)
            reply: Reply = self.default if not queue else (queue.pop(0) if len(queue) > 1 else queue[0])
        return reply, self._delays.get(image, self.delay)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    @staticmethod
    def _response(reply: Reply) -> httpx.Response:
        if isinstance(reply, int):
            body = {"code": "InvalidParameter", "message": "The stub cannot read this image.", "request_id": "stub-err"}
            return httpx.Response(reply, json=body)
        return httpx.Response(200, json=fake_native_response(reply))

    def _handle(self, request: httpx.Request) -> httpx.Response:
        reply, delay = self._enter(request)
        try:
            if delay:
                time.sleep(delay)
            return self._response(reply)
        finally:
            self._leave()

    async def _ahandle(self, request: httpx.Request) -> httpx.Response:
        reply, delay = self._enter(request)
        try:
            if delay:
                await asyncio.sleep(delay)
            return self._response(reply)
        finally:
            self._leave()

    def client(self, **kwargs: Any) -> QwenOCR:
        """A sync client answered by this stub."""
        options: dict[str, Any] = {"api_key": STUB_KEY, "base_url": STUB_BASE_URL, "max_retries": 0, **kwargs}
        return QwenOCR(http_client=httpx.Client(transport=httpx.MockTransport(self._handle)), **options)

    def aclient(self, **kwargs: Any) -> AsyncQwenOCR:
        """An async client answered by this stub (natively async: the handler awaits)."""
        options: dict[str, Any] = {"api_key": STUB_KEY, "base_url": STUB_BASE_URL, "max_retries": 0, **kwargs}
        return AsyncQwenOCR(http_client=httpx.AsyncClient(transport=httpx.MockTransport(self._ahandle)), **options)

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self.bodies.clear()
            self.peak = 0


@pytest.fixture
def image_ocr_stub() -> Callable[..., ImageOCRStub]:
    """``image_ocr_stub({png_a: "A", png_b: 400}, delay=0.05)`` -> an :class:`ImageOCRStub`."""
    return ImageOCRStub


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[QwenOCR]:
    with sync_client(emu) as made:
        yield made

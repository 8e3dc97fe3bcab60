"""Shared helpers of the loader and parser tests: corpus paths, clients on the emulator, a per-page fault transport.

Imported by the other ``test_loader*`` / ``test_parser*`` modules as ``tests.langchain.test_loader_support``; its
own tests check the helpers.
"""

from __future__ import annotations

import collections
import io
import json
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from PIL import Image, ImageDraw, ImageFont

from qwen_ocr import AsyncQwenOCR, QwenOCR
from qwen_ocr.documents import open_document
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest, image_url_of, native_error_body, protocol_of
from tests.conftest import DATA, FAST_RETRY

CORPUS = DATA / "corpus"
MULTIPAGE = CORPUS / "ocrmypdf" / "multipage.pdf"  # 6 scanned pages
CARDINAL = CORPUS / "ocrmypdf" / "cardinal.pdf"  # 4 scanned pages
SKEW = CORPUS / "ocrmypdf" / "skew.pdf"  # 1 skewed scan
ROTATED_SKEW = CORPUS / "ocrmypdf" / "rotated_skew.pdf"  # 1 page, /Rotate 90
INVALID = CORPUS / "ocrmypdf" / "invalid.pdf"  # starts like a PDF, corrupt
VECTOR = CORPUS / "ocrmypdf" / "vector.pdf"  # text drawn as curves: no text layer
ENCRYPTED = CORPUS / "py-pdf" / "005-libreoffice-writer-password" / "libreoffice-writer-password.pdf"
ENCRYPTED_PASSWORD = "openpassword"
BORN_DIGITAL = CORPUS / "py-pdf" / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"  # 4 pages, good text layer

SMALL = {"max_pixels": 250_000}
"""Render pages small: the tests are about pages and documents, not pixels."""


class PageFaults(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Sends requests on to the emulator, except that a request carrying a chosen image first gets chosen errors.

    Counts attempts per image (SHA-256 of the image, as the emulator's ``successes_by_image``) and the requests
    in flight at once.
    """

    def __init__(self, faults: Mapping[str, Sequence[int]] | None = None) -> None:
        self._faults = {digest: list(statuses) for digest, statuses in (faults or {}).items()}
        self._sync = httpx.HTTPTransport()
        self._async = httpx.AsyncHTTPTransport()
        self._lock = threading.Lock()
        self.attempts: collections.Counter[str] = collections.Counter()
        self.order: list[str] = []
        self.active = 0
        self.peak = 0

    def _enter(self, request: httpx.Request) -> httpx.Response | None:
        body = json.loads(request.content)
        digest = image_digest(image_url_of(protocol_of(request.url.path), body)) or "?"
        with self._lock:
            self.attempts[digest] += 1
            self.order.append(digest)
            queue = self._faults.get(digest)
            status = queue.pop(0) if queue else None
            if status is None:
                self.active += 1
                self.peak = max(self.peak, self.active)
                return None
        code = {400: "InvalidParameter", 429: "Throttling.RateQuota", 500: "InternalError"}[status]
        return httpx.Response(status, json=native_error_body(status, code=code), request=request)

    def _leave(self) -> None:
        with self._lock:
            self.active -= 1

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._enter(request)
        if fault is not None:
            return fault
        try:
            response = self._sync.handle_request(request)
            response.read()
            return response
        finally:
            self._leave()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        fault = self._enter(request)
        if fault is not None:
            return fault
        try:
            response = await self._async.handle_async_request(request)
            await response.aread()
            return response
        finally:
            self._leave()

    def close(self) -> None:
        self._sync.close()

    async def aclose(self) -> None:
        await self._async.aclose()


def page_digest(path: Path, index: int, **open_options: Any) -> str:
    """The digest of page ``index`` as the loader sends it (same model and pixel budget)."""
    with open_document(path, **open_options) as doc:
        digest = image_digest(doc.page(index).prepare().url)
    assert digest is not None
    return digest


def sync_client(emu: Emulator, transport: PageFaults | None = None, **settings: Any) -> QwenOCR:
    """A client of the emulator that retries at once and does not pace itself after a 429 (the core's pacing is
    tested in the core; here it would only slow the tests down)."""
    http = httpx.Client(transport=transport) if transport is not None else None
    client = QwenOCR(api_key="sk-test-key", base_url=emu.base_url, retry=FAST_RETRY, http_client=http, **settings)
    client.pacer = None
    return client


def async_client(emu: Emulator, transport: PageFaults | None = None, **settings: Any) -> AsyncQwenOCR:
    """The async twin of :func:`sync_client`."""
    http = httpx.AsyncClient(transport=transport) if transport is not None else None
    client = AsyncQwenOCR(api_key="sk-test-key", base_url=emu.base_url, retry=FAST_RETRY, http_client=http, **settings)
    client.pacer = None
    return client


def text_pages_pdf(lines: Sequence[str], *, size: tuple[int, int] = (1000, 700)) -> bytes:
    """A scanned-looking PDF (images only, no text layer): page ``i`` shows ``lines[i]`` (split on ``|``)."""
    font = ImageFont.load_default(size=40)
    pages = []
    for text in lines:
        im = Image.new("L", size, 255)
        draw = ImageDraw.Draw(im)
        for row, part in enumerate(text.split("|")):
            draw.text((50, 80 + row * 90), part.strip(), fill=0, font=font)
        pages.append(im)
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", save_all=True, append_images=pages[1:], resolution=100)
    return buffer.getvalue()


# -- the helpers' own tests ------------------------------------------------------------------------------------


def test_page_faults_answers_chosen_errors_then_forwards() -> None:
    digest = page_digest(MULTIPAGE, 1, **SMALL)
    transport = PageFaults({digest: [429]})
    with Emulator() as emu, sync_client(emu, transport) as client, open_document(MULTIPAGE, **SMALL) as doc:
        result = client.ocr(doc.page(1).prepare())
    assert result.text
    assert transport.attempts[digest] == 2
    assert emu.stats.successes_by_image == {digest: 1}


def test_text_pages_pdf_has_one_scanned_page_per_line() -> None:
    data = text_pages_pdf(["alpha", "beta", "gamma"])
    with open_document(data) as doc:
        assert doc.page_count == 3
        assert all(page.needs_ocr("auto") for page in doc)

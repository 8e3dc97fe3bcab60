"""Fixtures of the LlamaIndex integration tests: a loopback emulator with recorded replies, readers wired to it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest

from llamaindex_qwen_ocr import QwenOCRReader
from qwen_ocr import AsyncQwenOCR, QwenOCR
from qwen_ocr.testing import Emulator, FakeReply, FakeTransport
from tests.conftest import DATA

KEY = "sk-llamaindex-test-secret-4242"
"""The API key the tests use; it must never show up in output, logs, errors or serialised settings."""

CORPUS = DATA / "corpus"
MULTIPAGE = CORPUS / "ocrmypdf" / "multipage.pdf"  # 6 pages
FOUR_PAGES = CORPUS / "py-pdf" / "004-pdflatex-4-pages" / "pdflatex-4-pages.pdf"
ENCRYPTED = CORPUS / "py-pdf" / "005-libreoffice-writer-password" / "libreoffice-writer-password.pdf"
CROM = CORPUS / "ocrmypdf" / "crom.png"
TYPEWRITER = CORPUS / "ocrmypdf" / "typewriter.png"
MINIMAL = CORPUS / "py-pdf" / "001-trivial" / "minimal-document.pdf"


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """The loopback emulator answering every task with its recorded reply."""
    with Emulator() as emu:
        yield emu


@pytest.fixture
def make_reader(emulator: Emulator) -> Callable[..., QwenOCRReader]:
    """``make_reader("table_parsing", pages="1")``: a reader talking to the emulator."""

    def make(task: str | None = "text_recognition", **kwargs: Any) -> QwenOCRReader:
        return QwenOCRReader(api_key=KEY, base_url=emulator.base_url, task=task, **kwargs)

    return make


@pytest.fixture
def fake_reader() -> Callable[..., QwenOCRReader]:
    """``fake_reader(["reply 1", 500, ...], task=...)``: a reader whose clients get these replies, one request at a
    time (``max_concurrency=1``), without retries, every page sent (``text_layer="never"``); ``errors=`` go first, as
    for :class:`FakeTransport`."""

    def make(
        replies: Sequence[FakeReply] | FakeReply, *, errors: Sequence[FakeReply | None] = (), **kwargs: Any
    ) -> QwenOCRReader:
        transport = FakeTransport(replies, errors=errors)
        client = QwenOCR(api_key=KEY, http_client=httpx.Client(transport=transport), max_retries=0)
        aclient = AsyncQwenOCR(api_key=KEY, http_client=httpx.AsyncClient(transport=transport), max_retries=0)
        kwargs.setdefault("max_concurrency", 1)
        kwargs.setdefault("text_layer", "never")
        return QwenOCRReader(client=client, aclient=aclient, **kwargs)

    return make

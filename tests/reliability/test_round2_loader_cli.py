"""Round 2: stopping the loader stops the spending at once; the CLI keeps every result and every good input.

Closing a loader early (``break``, ``close()``, ``aclose()``, Ctrl-C in the consumer) while pages are being retried
must start no new page, send no retry, and return without waiting for the requests already in flight: the
emulator's request count after the break stays within the requests that were already on their way (at most one per
page slot, never a retry), and the call returns well within a hang guard (a guard, not a timed assertion: the old
code took 10 s and more here, waiting for every in-flight page to exhaust its retries).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import AsyncQwenOCR, QwenOCR, RetryPolicy
from qwen_ocr.documents import open_document
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest

from ._support import time_budget, wait_until

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from langchain_qwen_ocr import QwenOCRLoader

GUARD = 8.0  # seconds: a hang guard; the old code needed 10 s and more to return from the break below
WINDOW = 4  # pages in flight
READ_BEFORE_BREAK = 2  # the consumer breaks after this many Documents

# Pages after the first READ_BEFORE_BREAK fail and fail again (HTTP 500s and stalls past the client's timeout),
# with enough retries that, unstopped, each would keep retrying for seconds.
STUBBORN = RetryPolicy(max_retries=20, initial_delay=0.05, max_delay=0.2, jitter=0.0)
CLIENT_TIMEOUT = 0.5


def _pdf(pages: int) -> bytes:
    images = []
    for i in range(pages):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"leaf {i + 1}", fill=0)
        images.append(im)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pdf_24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("round2") / "twenty-four.pdf"
    path.write_bytes(_pdf(24))
    return path


def _page_digests(path: Path) -> list[str]:
    """The emulator's key of each page as the loader sends it (rendered at the default model's budget)."""
    with open_document(path) as doc:
        digests = [image_digest(page.prepare().url) for page in doc]
    assert all(digests)
    return [d for d in digests if d is not None]


@pytest.fixture
def failing_emulator(pdf_24: Path) -> Iterator[Emulator]:
    """The first pages are read at once; every later page gets 500s and stalls, attempt after attempt."""
    with Emulator(stall=10.0) as emu:
        for index, digest in enumerate(_page_digests(pdf_24)):
            if index >= READ_BEFORE_BREAK:
                emu.inject_for(digest, *(["500", "timeout"] * 20))
        yield emu


def _our_threads(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive() and t.daemon is False)


def _sent_after(emu: Emulator, at_break: int) -> int:
    """Requests received after the break, once every connection of the closed loader has ended (and a retry's
    delay more, so that a retry would have been seen)."""
    assert wait_until(lambda: emu.in_flight == 0, timeout=GUARD), f"{emu.in_flight} requests still in flight"
    settled = emu.stats.requests
    assert not wait_until(lambda: emu.stats.requests > settled, timeout=0.4), "a request was sent after the close"
    return emu.stats.requests - at_break


def _sync_loader(pdf: Path, client: QwenOCR) -> QwenOCRLoader:
    from langchain_qwen_ocr import QwenOCRLoader

    return QwenOCRLoader(str(pdf), client=client, text_layer="never", on_error="mark", max_concurrency=WINDOW)


def _client(emu: Emulator) -> QwenOCR:
    client = QwenOCR(api_key="k", base_url=emu.base_url, timeout=CLIENT_TIMEOUT, retry=STUBBORN)
    client.pacer = None
    return client


def test_break_in_lazy_load_sends_no_retry_and_starts_no_page(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    before = set(threading.enumerate())
    with _client(emu) as client:
        loader = _sync_loader(pdf_24, client)
        got = []
        with time_budget(GUARD):
            for doc in loader.lazy_load():
                got.append(doc)
                if len(got) == READ_BEFORE_BREAK:
                    at_break = emu.stats.requests
                    break
        after = _sent_after(emu, at_break)
    assert [d.metadata["page"] for d in got] == [0, 1]
    assert all(not d.metadata.get("error") for d in got)
    assert after <= WINDOW, f"{after} requests after the break (retries or new pages)"
    assert wait_until(lambda: not _our_threads(before), timeout=GUARD), _our_threads(before)


def test_closing_the_lazy_load_generator_sends_no_retry(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    with _client(emu) as client:
        docs = _sync_loader(pdf_24, client).lazy_load()
        with time_budget(GUARD):
            first = [next(docs) for _ in range(READ_BEFORE_BREAK)]
            at_break = emu.stats.requests
            docs.close()  # type: ignore[attr-defined]
        after = _sent_after(emu, at_break)
    assert [d.metadata["page"] for d in first] == [0, 1]
    assert after <= WINDOW, f"{after} requests after the close"


def test_ctrl_c_in_the_consumer_stops_the_sync_loader(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    marks: list[int] = []

    def consume(docs: Iterator[Document]) -> None:
        for index, _ in enumerate(docs):
            if index + 1 == READ_BEFORE_BREAK:
                marks.append(emu.stats.requests)
                raise KeyboardInterrupt

    with _client(emu) as client:
        loader = _sync_loader(pdf_24, client)
        with time_budget(GUARD), pytest.raises(KeyboardInterrupt):
            consume(loader.lazy_load())
        after = _sent_after(emu, marks[0])
    assert after <= WINDOW, f"{after} requests after Ctrl-C"


@pytest.mark.parametrize("how", ["aclose", "ctrl-c"])
def test_closing_alazy_load_cancels_the_pages(pdf_24: Path, failing_emulator: Emulator, how: str) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    emu = failing_emulator
    marks: list[int] = []

    async def main() -> None:
        aclient = AsyncQwenOCR(api_key="k", base_url=emu.base_url, timeout=CLIENT_TIMEOUT, retry=STUBBORN)
        aclient.pacer = None
        loader = QwenOCRLoader(
            str(pdf_24), aclient=aclient, text_layer="never", on_error="mark", max_concurrency=WINDOW
        )
        docs = loader.alazy_load()
        try:
            count = 0
            async for _ in docs:
                count += 1
                if count == READ_BEFORE_BREAK:
                    marks.append(emu.stats.requests)
                    if how == "ctrl-c":
                        raise KeyboardInterrupt
                    break
        finally:
            await docs.aclose()  # type: ignore[attr-defined]
            await aclient.aclose()

    with time_budget(GUARD):
        if how == "ctrl-c":
            with pytest.raises(KeyboardInterrupt):
                asyncio.run(main())
        else:
            asyncio.run(main())
    after = _sent_after(emu, marks[0])
    assert after <= WINDOW, f"{after} requests after the close"

"""A server that never answers hits the configured timeout; cancelling async work leaves nothing running.

"Nothing left behind" means: the emulator sees every connection of the cancelled work closed (``in_flight`` back to
0, each request counted as ``abandoned``, none as a success), no request is sent after the cancellation, and every
thread started for the work has ended (``threading.enumerate()`` back to what it was before; the event loop's
default executor is shut down by ``asyncio.run``, our own page renderers by ``aread_document``). Synchronous requests
cannot be interrupted: closing a sync loader early does not wait for the requests already sent (they finish on their
own, on daemon threads, and are not retried), then every thread ends.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import APITimeoutError, AsyncQwenOCR, QwenOCR, RetryPolicy, aread_document
from qwen_ocr.testing import Emulator

from ._support import numbered_png, wait_until

GUARD = 30.0  # seconds: a hang guard, far above what each test needs


class SilentServer:
    """Accepts connections on 127.0.0.1 and never answers (reads and drops whatever is sent)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self._conns:
            conn.close()
        self.sock.close()


@pytest.fixture
def silent() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


NO_WAIT = RetryPolicy(max_retries=2, initial_delay=0, max_delay=0, jitter=0)


def test_a_server_that_never_answers_hits_the_timeout(silent: SilentServer) -> None:
    with QwenOCR(api_key="k", base_url=silent.url, timeout=0.5, max_retries=0) as client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError) as info:
            client.ocr(numbered_png(1))
        assert time.monotonic() - started < GUARD
    assert silent.accepted == 1
    assert "timeout" in info.value.message.lower()
    assert info.value.code == "Timeout"


def test_timeouts_are_retried_then_raised(silent: SilentServer) -> None:
    with QwenOCR(api_key="k", base_url=silent.url, timeout=0.3, retry=NO_WAIT) as client:
        client.pacer = None
        with pytest.raises(APITimeoutError):
            client.ocr(numbered_png(1))
        with pytest.raises(APITimeoutError):
            list(client.stream(numbered_png(2)))
    assert silent.accepted == 6  # 1 + 2 retries, twice


def test_a_batch_against_a_silent_server_ends_with_every_item_timed_out(silent: SilentServer) -> None:
    with QwenOCR(api_key="k", base_url=silent.url, timeout=0.3, max_retries=0, max_concurrency=8) as client:
        client.pacer = None
        started = time.monotonic()
        results = client.ocr_many([numbered_png(i) for i in range(16)], return_exceptions=True)
        assert time.monotonic() - started < GUARD
    assert all(isinstance(r, APITimeoutError) for r in results)


async def test_the_async_client_hits_the_timeout_too(silent: SilentServer) -> None:
    async with AsyncQwenOCR(api_key="k", base_url=silent.url, timeout=0.5, max_retries=0) as client:
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(client.ocr(numbered_png(1)), GUARD)
        with pytest.raises(APITimeoutError):
            await asyncio.wait_for(anext_chunk(client), GUARD)
    assert silent.accepted == 2


async def anext_chunk(client: AsyncQwenOCR) -> object:
    async for chunk in client.stream(numbered_png(3)):
        return chunk
    return None


# ----------------------------------------------------------------------------------------------------------------
# Cancellation


def our_threads(before: set[threading.Thread]) -> list[str]:
    """Threads alive now that were not before (the emulator's own handler threads included)."""
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive())


def settle(emu: Emulator, before: set[threading.Thread]) -> None:
    """Nothing in flight at the emulator, no request sent afterwards, every new thread ended."""
    assert wait_until(lambda: emu.in_flight == 0, timeout=5), f"{emu.in_flight} requests still in flight"
    sent = emu.stats.requests
    time.sleep(0.3)
    assert emu.stats.requests == sent, "a request was sent after the cancellation"
    assert wait_until(lambda: not our_threads(before), timeout=5), our_threads(before)


def test_cancelling_async_ocr_many_leaves_no_request_or_thread() -> None:
    with Emulator(latency=30.0) as emu:
        before = set(threading.enumerate())

        async def main() -> None:
            async with AsyncQwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=6) as client:
                task = asyncio.create_task(client.ocr_many([numbered_png(i) for i in range(40)]))
                for _ in range(500):
                    if emu.in_flight == 6:
                        break
                    await asyncio.sleep(0.01)
                assert emu.in_flight == 6
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        started = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - started < GUARD  # not the emulator's 30 s latency
        settle(emu, before)
        stats = emu.stats
    assert stats.requests == 6
    assert stats.abandoned == 6
    assert stats.successes == 0


@pytest.fixture(scope="module")
def pdf_30(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pages = []
    for i in range(30):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"leaf {i + 1}", fill=0)
        pages.append(im)
    buf = io.BytesIO()
    pages[0].save(buf, "PDF", save_all=True, append_images=pages[1:], resolution=72)
    path = tmp_path_factory.mktemp("pdf30") / "thirty.pdf"
    path.write_bytes(buf.getvalue())
    return path


def test_cancelling_an_aread_document_loop_leaves_no_request_or_thread(pdf_30: Path) -> None:
    with Emulator(latency=30.0) as emu:
        before = set(threading.enumerate())
        got: list[int] = []

        async def read(client: AsyncQwenOCR) -> None:
            async for page in aread_document(client, pdf_30, max_concurrency=4):
                got.append(page.index)

        async def main() -> None:
            async with AsyncQwenOCR(api_key="k", base_url=emu.base_url) as client:
                task = asyncio.create_task(read(client))
                for _ in range(1000):
                    if emu.in_flight == 4:
                        break
                    await asyncio.sleep(0.01)
                assert emu.in_flight == 4
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

        started = time.monotonic()
        asyncio.run(main())
        assert time.monotonic() - started < GUARD
        settle(emu, before)
    assert got == []
    assert emu.stats.abandoned == 4
    assert emu.stats.successes == 0


def test_cancelling_the_langchain_async_loader_leaves_no_request_or_thread(pdf_30: Path) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    with Emulator(latency=30.0) as emu:
        before = set(threading.enumerate())

        async def main() -> None:
            aclient = AsyncQwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=4)
            loader = QwenOCRLoader([str(pdf_30), str(pdf_30)], aclient=aclient, text_layer="never")

            async def load() -> None:
                async for _ in loader.alazy_load():
                    pass

            task = asyncio.create_task(load())
            for _ in range(1000):
                if emu.in_flight == 4:
                    break
                await asyncio.sleep(0.01)
            assert emu.in_flight == 4
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await aclient.aclose()

        asyncio.run(main())
        settle(emu, before)
    assert emu.stats.successes == 0


def test_closing_the_sync_loader_early_ends_every_thread(pdf_30: Path) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    with Emulator(latency=0.5) as emu:
        before = set(threading.enumerate())
        with QwenOCR(api_key="k", base_url=emu.base_url, max_concurrency=4) as client:
            client.pacer = None
            docs = QwenOCRLoader([str(pdf_30), str(pdf_30)], client=client, text_layer="never").lazy_load()
            first = next(docs)
            started = time.monotonic()
            docs.close()  # type: ignore[attr-defined]
            assert time.monotonic() - started < GUARD  # does not wait for the requests already sent
        settle(emu, before)
        stats = emu.stats
    assert first.metadata["page"] == 0
    assert stats.requests < 60  # the rest of the job was never sent
    assert stats.abandoned == 0  # sync requests already sent are let finish, then the threads end

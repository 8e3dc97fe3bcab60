"""``AsyncQwenOCR``: the asynchronous client, natively async on ``httpx.AsyncClient``.

Image preparation (decode, rotate, downscale, encode) is CPU work; it runs in a worker thread so the event loop
stays responsive. Everything else is the same pure code the sync client uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Unpack

from . import _exchange
from ._base import BaseClient, safe_cause, transport_error
from ._exchange import Blocking, Command, Emit, Flow, Runner, Send, Sleep
from .errors import QwenOCRError
from .options import ClientOverrides, OCROptions, settings_help
from .results import OCRChunk, OCRResult

if TYPE_CHECKING:  # httpx is imported when a client is built, not with the class (issue 17)
    import httpx

    from .batch import AsyncBatches
    from .imaging import ImageInput

__all__ = ["AsyncQwenOCR"]

T = TypeVar("T")

_CLOSE_WAIT = 5.0
"""Seconds ``aclose()`` waits for the pool of a loop running in another thread to close."""


class AsyncQwenOCR(BaseClient):
    """Asynchronous Qwen-OCR client; the same settings and methods as :class:`QwenOCR`, awaited.

    Example::

        import asyncio
        from qwen_ocr import AsyncQwenOCR

        async def main() -> None:
            async with AsyncQwenOCR() as client:
                result = await client.ocr("receipt.jpg", task="key_information_extraction")
                print(result.fields)
                async for chunk in client.stream("page.png"):
                    print(chunk.text, end="")
                results = await client.ocr_many(["a.png", "b.png"])

        asyncio.run(main())
    """

    def __init__(self, *, http_client: httpx.AsyncClient | None = None, **settings: Unpack[ClientOverrides]) -> None:
        """The settings of :class:`QwenOCR`. ``http_client`` (your own ``httpx.AsyncClient``) is used on every
        event loop as it is; without it the client makes one connection pool per event loop it runs on."""
        super().__init__(**settings)
        import httpx

        self._check_http_client(http_client, httpx.AsyncClient, "QwenOCR")
        self._owns_http = http_client is None
        self._given_http = http_client
        # An httpx pool belongs to the event loop it first ran on; this client makes one per loop, so that it can be
        # used under successive asyncio.run() calls and from threads that each run their own loop.
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._pools_lock = threading.Lock()
        self._closed = False
        self._slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    # -- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def _http(self) -> httpx.AsyncClient:
        """The HTTP pool of the running event loop: ``http_client`` when one was given, else this client's own pool
        for this loop, made on first use (pools of loops that have since closed are let go)."""
        if self._given_http is not None:
            return self._given_http
        loop = asyncio.get_running_loop()
        with self._pools_lock:
            if self._closed:
                raise QwenOCRError(
                    "this AsyncQwenOCR was closed (aclose() or the end of its 'async with' block); create a new "
                    "client to send more requests.",
                    code="ClientClosed",
                )
            pool = self._pools.get(loop)
            if pool is None:
                import httpx

                for stale in [other for other in self._pools if other.is_closed()]:
                    del self._pools[stale]  # its connections ended with their loop; nothing to await any more
                pool = self._pools[loop] = httpx.AsyncClient(timeout=self._timeout(), limits=self._limits())
            return pool

    async def aclose(self) -> None:
        """Close the HTTP connections (only those of a client this object created), on every event loop it used.

        The pool of the running loop is closed here; that of a loop running in another thread is closed on that
        loop; that of a loop which has ended went with it. A closed client refuses further requests.
        """
        if not self._owns_http:
            return
        with self._pools_lock:
            self._closed = True
            pools = list(self._pools.items())
            self._pools.clear()
        current = asyncio.get_running_loop()
        for loop, pool in pools:
            if loop is current:
                await pool.aclose()
            elif loop.is_running() and not loop.is_closed():
                done = asyncio.run_coroutine_threadsafe(pool.aclose(), loop)
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.wrap_future(done), _CLOSE_WAIT)

    async def __aenter__(self) -> AsyncQwenOCR:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # -- public API --------------------------------------------------------------------------------------------

    @property
    def batch(self) -> AsyncBatches:
        """Batch API jobs with this client (:mod:`qwen_ocr.batch`): ``await aclient.batch.submit(...)``."""
        from .batch import AsyncBatches

        return AsyncBatches(self)

    async def ocr(self, image: ImageInput, **options: Unpack[OCROptions]) -> OCRResult:
        """Read one image; see :meth:`QwenOCR.ocr`.

        Example::

            result = await client.ocr("table.png", task="table_parsing")
        """
        return await self._run(_exchange.ocr(self, image, self._split_options(options)))

    def stream(self, image: ImageInput, **options: Unpack[OCROptions]) -> AsyncIterator[OCRChunk]:
        """Read one image as a stream of text deltas; see :meth:`QwenOCR.stream`.

        Arguments are checked when this is called, as by :meth:`QwenOCR.stream`; the image is prepared (in a worker
        thread) and the request sent when iteration starts.

        Example::

            async for chunk in client.stream("page.png"):
                print(chunk.text, end="")
        """
        return self._drive(self._stream_flow(image, options, prepare_now=False), [])

    async def ocr_many(
        self,
        images: Iterable[ImageInput],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        **options: Unpack[OCROptions],
    ) -> list[OCRResult | QwenOCRError]:
        """Read many images concurrently, results in input order; see :meth:`QwenOCR.ocr_many`.

        Example::

            results = await client.ocr_many(paths, return_exceptions=True)
        """
        opts, workers = self._batch(images, max_concurrency, options)
        iterator = enumerate(images)
        results: dict[int, OCRResult | QwenOCRError] = {}

        async def worker() -> None:
            for index, image in iterator:  # shared iterator: each worker takes the next input
                results[index] = await self._run(_exchange.batch_item(self, image, opts))

        tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            # The batch fails (its input iterator raised, or it was cancelled): stop every worker and wait until
            # they are gone, so that no request of this batch is sent, or left in flight, after the error.
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)
            raise
        return self._batch_results(results, return_exceptions)

    # -- the driver --------------------------------------------------------------------------------------------

    async def _run(self, flow: Flow[T]) -> T:
        """Run a flow that emits no chunks to its end; its value."""
        value: list[T] = []
        async for _ in self._drive(flow, value):
            raise AssertionError("a reading emitted a chunk")  # pragma: no cover - only stream flows emit
        return value[0]

    async def _drive(self, flow: Flow[T], value: list[T]) -> AsyncIterator[OCRChunk]:
        """Run ``flow`` with awaited I/O, yielding the chunks it emits; what it returns is appended to ``value``.
        However it ends, its reply is closed and its request slot freed."""
        runner = Runner(flow)
        async with _AsyncWire(self, runner) as wire:
            for command in runner:
                if isinstance(command, Emit):
                    yield command.chunk
                else:
                    await wire.settle(command)
        value.append(runner.value)  # type: ignore[arg-type]  # set: the flow returned

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._slots.get(loop)
        if semaphore is None:
            semaphore = self._slots[loop] = asyncio.Semaphore(self.max_concurrency)
        return semaphore


class _AsyncWire:
    """The awaited I/O of one flow: sleeps, request slots, worker threads, and the one reply open at a time, read
    under its deadline and the size cap. httpx errors become their typed errors here."""

    def __init__(self, client: AsyncQwenOCR, runner: Runner[Any]) -> None:
        from ._transport import Deadline

        self.client, self.runner = client, runner
        self.response: httpx.Response | None = None
        self.pieces: AsyncGenerator[bytes, None] | None = None
        self.deadline = Deadline(None)

    async def __aenter__(self) -> _AsyncWire:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """The flow ends (its request slot freed), then its reply is closed."""
        self.runner.close()
        await self.close()

    async def settle(self, command: Command) -> None:
        """Run ``command`` and pass its result, or its error, to the flow."""
        try:
            result = await self.run(command)
        except BaseException as exc:
            self.runner.fail(exc)
        else:
            self.runner.reply(result)

    async def run(self, command: Command) -> Any:
        import httpx

        try:
            return await getattr(self, command.op)(command)
        except httpx.HTTPError as exc:
            await self.close()
            raise transport_error(exc, self.deadline) from safe_cause(exc)

    async def acquire(self, _: Command) -> Callable[[], None]:
        semaphore = self.client._semaphore()
        await semaphore.acquire()
        return semaphore.release

    async def sleep(self, command: Sleep) -> None:
        await asyncio.sleep(command.seconds)

    async def blocking(self, command: Blocking) -> Any:
        return await asyncio.to_thread(command.work)

    async def send(self, command: Send) -> tuple[int, httpx.Headers]:
        await self.close()
        http = self.client._http
        request, self.deadline = self.client._http_request(http, command, sync=False)
        self.response = await self.deadline.wait(http.send(request, stream=True))
        return self.response.status_code, self.response.headers

    async def read(self, _: Command) -> bytes | None:
        assert self.response is not None
        if self.pieces is None:
            from ._transport import aiter_body

            self.pieces = self.deadline.apieces(aiter_body(self.response, self.client.max_response_bytes))
        return await anext(self.pieces, None)

    async def read_all(self, _: Command) -> bytes:
        assert self.response is not None
        from ._transport import aiter_body, aread_body

        try:
            body = aread_body(aiter_body(self.response, self.client.max_response_bytes))
            return await self.deadline.wait(body)
        finally:
            await self.close()

    async def drain(self, _: Command) -> None:
        assert self.pieces is not None
        await self.deadline.adrain(self.pieces)
        await self.close()

    async def close(self, _: Command | None = None) -> None:
        pieces, response, self.pieces, self.response = self.pieces, self.response, None, None
        if pieces is not None:
            await pieces.aclose()
        if response is not None:
            await response.aclose()


AsyncQwenOCR.__doc__ = (AsyncQwenOCR.__doc__ or "") + settings_help()

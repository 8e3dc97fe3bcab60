"""``AsyncQwenOCR``: the asynchronous client, natively async on ``httpx.AsyncClient``.

Image preparation (decode, rotate, downscale, encode) is CPU work; it runs in a worker thread so the event loop
stays responsive. Everything else is the same pure code the sync client uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying

from ._base import DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, BaseClient, Protocol, Provider, safe_cause, transport_error
from ._transport import Deadline, aiter_body, aread_body
from .budget import Resolution
from .cache import OCRCache
from .errors import BatchOCRError, QwenOCRError
from .imaging import ImageInput, cheap_to_prepare, large_body
from .models import DEFAULT_MODEL
from .protocols.base import OCRCall, StreamAssembler
from .results import OCRChunk, OCRResult
from .retry import RetryPolicy, tenacity_kwargs
from .tasks import Schema, Task

__all__ = ["AsyncQwenOCR"]

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

    def __init__(
        self,
        *,
        api_key: str | SecretStr | None = None,
        base_url: str | None = None,
        region: str | None = None,
        workspace: str | None = None,
        model: str = DEFAULT_MODEL,
        protocol: Protocol | None = None,
        provider: Provider = "auto",
        chat_path: str | None = None,
        timeout: float | httpx.Timeout | None = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        data_inspection: bool = False,
        rpm: float | Literal["auto"] | None = "auto",
        tpm: float | Literal["auto"] | None = "auto",
        cache: str | os.PathLike[str] | OCRCache | None = None,
        default_headers: dict[str, str] | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        """See :class:`QwenOCR` for the arguments. ``http_client`` (your own ``httpx.AsyncClient``) is used on
        every event loop as it is; without it the client makes one connection pool per event loop it runs on."""
        super().__init__(
            api_key=api_key,
            base_url=base_url,
            region=region,
            workspace=workspace,
            model=model,
            protocol=protocol,
            provider=provider,
            chat_path=chat_path,
            timeout=timeout,
            max_retries=max_retries,
            max_concurrency=max_concurrency,
            retry=retry,
            data_inspection=data_inspection,
            rpm=rpm,
            tpm=tpm,
            cache=cache,
            default_headers=default_headers,
        )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise TypeError("http_client must be an httpx.AsyncClient (use QwenOCR for an httpx.Client)")
        self._owns_http = http_client is None
        if http_client is not None:
            self._check_http_client(http_client)
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

    async def ocr(
        self,
        image: ImageInput,
        *,
        task: Task | str | None = None,
        schema: Schema | str | type | None = None,
        prompt: str | None = None,
        model: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        enable_rotate: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        resolution: Resolution | None = None,
    ) -> OCRResult:
        """Read one image; see :meth:`QwenOCR.ocr`.

        Example::

            result = await client.ocr("table.png", task="table_parsing")
        """
        if self.provider == "local":
            return await asyncio.to_thread(
                self._local_ocr,
                image,
                {
                    "task": task,
                    "schema": schema,
                    "min_pixels": min_pixels,
                    "max_pixels": max_pixels,
                    "resolution": resolution,
                },
            )
        call = await self._acall(
            image,
            task=task,
            schema=schema,
            prompt=prompt,
            model=model,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            enable_rotate=enable_rotate,
            max_tokens=max_tokens,
            temperature=temperature,
            resolution=resolution,
        )
        return (await self._execute(call))._attach_image(image)  # by reference, for display (qwen_ocr.viz)

    async def stream(
        self,
        image: ImageInput,
        *,
        task: Task | str | None = None,
        schema: Schema | str | type | None = None,
        prompt: str | None = None,
        model: str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        enable_rotate: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        resolution: Resolution | None = None,
    ) -> AsyncIterator[OCRChunk]:
        """Read one image as a stream of text deltas; see :meth:`QwenOCR.stream`.

        Example::

            async for chunk in client.stream("page.png"):
                print(chunk.text, end="")
        """
        if self.provider == "local":  # the local engine reads the page whole: one chunk
            result = await asyncio.to_thread(
                self._local_ocr,
                image,
                {
                    "task": task,
                    "schema": schema,
                    "min_pixels": min_pixels,
                    "max_pixels": max_pixels,
                    "resolution": resolution,
                },
            )
            yield self._chunk_of(result)
            return
        call = await self._acall(
            image,
            task=task,
            schema=schema,
            prompt=prompt,
            model=model,
            min_pixels=min_pixels,
            max_pixels=max_pixels,
            enable_rotate=enable_rotate,
            max_tokens=max_tokens,
            temperature=temperature,
            resolution=resolution,
        )
        request = self._request(call, stream=True)
        headers = self._headers(request)
        url = self._url(request)
        content = await asyncio.to_thread(request.content) if large_body(call.image.nbytes) else request.content()
        async with self._semaphore():
            opened = await self._open_stream(url, headers, content, call)
            try:
                for chunk in opened.first:
                    yield chunk
                assembler = opened.assembler
                if assembler is None or opened.rest is None:  # read whole already
                    return
                async for chunk in _rest(assembler, opened.rest, opened.deadline):
                    yield chunk
            except httpx.HTTPError as exc:
                raise transport_error(exc, opened.deadline) from safe_cause(exc)
            finally:
                await opened.response.aclose()

    async def ocr_many(
        self,
        images: Iterable[ImageInput],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        **options: Any,
    ) -> list[OCRResult | QwenOCRError]:
        """Read many images concurrently, results in input order; see :meth:`QwenOCR.ocr_many`.

        Example::

            results = await client.ocr_many(paths, return_exceptions=True)
        """
        opts = self._split_options(options)
        workers = self._batch_workers(max_concurrency, self.max_concurrency)
        self._check_batch(images)
        iterator = enumerate(images)
        results: dict[int, OCRResult | QwenOCRError] = {}

        async def worker() -> None:
            for index, image in iterator:  # shared iterator: each worker takes the next input
                try:
                    results[index] = await self.ocr(image, **opts)
                except QwenOCRError as exc:
                    results[index] = exc
                except Exception as exc:  # one item's failure, whatever it is, never loses the others' results
                    results[index] = self._item_failure(exc)

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
        ordered = [results[i] for i in range(len(results))]
        if not return_exceptions and any(isinstance(r, QwenOCRError) for r in ordered):
            raise BatchOCRError(ordered)
        return ordered

    # -- internals ---------------------------------------------------------------------------------------------

    def _semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        semaphore = self._slots.get(loop)
        if semaphore is None:
            semaphore = self._slots[loop] = asyncio.Semaphore(self.max_concurrency)
        return semaphore

    async def _acall(self, image: ImageInput, **options: Any) -> OCRCall:
        if cheap_to_prepare(image):  # a URL, a prepared page, a small image: no thread hop (imaging.INLINE_PIXELS)
            return self._call(image, **options)
        return await asyncio.to_thread(self._call, image, **options)

    async def _execute(self, call: OCRCall) -> OCRResult:
        request = self._request(call, stream=False)
        headers = self._headers(request)
        url = self._url(request)
        content = await asyncio.to_thread(request.content) if large_body(call.image.nbytes) else request.content()
        key = self._cache_key(url, content, headers)
        if key is not None and (cached := await asyncio.to_thread(self._cache_get, key)) is not None:
            return cached
        result: OCRResult | None = None
        async for attempt in AsyncRetrying(**tenacity_kwargs(self.retry)):
            with attempt:
                result = await self._send_once(url, headers, content, call)
        assert result is not None
        if key is not None:
            await asyncio.to_thread(self._cache_put, key, result)
        return result

    async def _send_once(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> OCRResult:
        async with self._semaphore():
            delay = self._pace(call)
            if delay > 0:
                await asyncio.sleep(delay)
            deadline = self._deadline()
            request = self._http.build_request(
                "POST",
                url,
                content=content,
                headers=headers,
                extensions=deadline.extensions(self._http.timeout, sync=False),
            )

            async def exchange() -> tuple[httpx.Response, bytes]:
                response = await self._http.send(request, stream=True)
                try:
                    return response, await aread_body(aiter_body(response, self.max_response_bytes))
                finally:
                    await response.aclose()

            try:
                response, body = await deadline.wait(exchange())
            except httpx.HTTPError as exc:
                raise transport_error(exc, deadline) from safe_cause(exc)
        return self._parse_observed(response.status_code, response.headers, body, call)

    async def _open_stream(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> _OpenStream:
        """Send the request and read up to its first chunk, retrying every failure until then (an error status, a
        dropped connection, a garbled reply, an error or the end of the stream before any text)."""
        opened: _OpenStream | None = None
        async for attempt in AsyncRetrying(**tenacity_kwargs(self.retry)):
            with attempt:
                delay = self._pace(call)
                if delay > 0:
                    await asyncio.sleep(delay)
                deadline = self._deadline()
                request = self._http.build_request(
                    "POST",
                    url,
                    content=content,
                    headers=headers,
                    extensions=deadline.extensions(self._http.timeout, sync=False),
                )
                try:
                    response = await deadline.wait(self._http.send(request, stream=True))
                except httpx.HTTPError as exc:
                    raise transport_error(exc, deadline) from safe_cause(exc)
                try:
                    pieces = deadline.apieces(aiter_body(response, self.max_response_bytes))
                    if response.status_code != 200:
                        raise self._refusal(response.status_code, await aread_body(pieces), response.headers)
                    opened = await self._first_chunks(response, call, pieces, deadline)
                except httpx.HTTPError as exc:
                    await response.aclose()
                    raise transport_error(exc, deadline) from safe_cause(exc)
                except BaseException:
                    await response.aclose()
                    raise
        assert opened is not None
        return opened

    async def _first_chunks(
        self, response: httpx.Response, call: OCRCall, pieces: AsyncIterator[bytes], deadline: Deadline
    ) -> _OpenStream:
        if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
            result = self._parse(200, response.headers, await aread_body(pieces), call)  # the whole reading at once
            await response.aclose()
            whole = OCRChunk(
                text=result.raw_text,
                finish_reason=result.finish_reason or "stop",
                usage=result.usage,
                request_id=result.request_id,
            )
            return _OpenStream(response, None, None, [whole], deadline)
        assembler = self._assembler(call, response.headers)
        first: list[OCRChunk] = []
        try:
            async for piece in pieces:
                first.extend(assembler.feed(piece))
                if first:
                    return _OpenStream(response, assembler, pieces, first, deadline)
        except httpx.TimeoutException:
            if not assembler.finished:  # a final frame without text, then silence: the reading is complete
                raise
        first.extend(assembler.close())  # the stream ended before any text: its end is checked here too
        return _OpenStream(response, None, None, first, deadline)


async def _rest(assembler: StreamAssembler, rest: AsyncIterator[bytes], deadline: Deadline) -> AsyncIterator[OCRChunk]:
    """The chunks after the first, up to the final frame: what a server sends after it (keep-alive comments) is
    not waited for beyond a moment. A deadline hit after the finish reason ends the stream as complete."""
    try:
        async for piece in rest:
            for chunk in assembler.feed(piece):
                yield chunk
            if assembler.complete:
                await deadline.adrain(rest)
                return
    except httpx.TimeoutException:
        if not assembler.finished:
            raise
    for chunk in assembler.close():
        yield chunk


@dataclass
class _OpenStream:
    """A stream read up to its first chunk: the response, what reads the rest, and the chunks so far."""

    response: httpx.Response
    assembler: StreamAssembler | None
    rest: AsyncIterator[bytes] | None
    first: list[OCRChunk]
    deadline: Deadline

"""``QwenOCR``: the synchronous client, a thin shell over ``httpx.Client`` and the pure protocol modules."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from tenacity import Retrying

from ._base import DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, BaseClient, Protocol, Provider, safe_cause, transport_error
from ._transport import Deadline, iter_body, read_body
from .budget import Resolution
from .cache import OCRCache
from .errors import BatchOCRError, QwenOCRError
from .imaging import ImageInput
from .models import DEFAULT_MODEL
from .protocols.base import OCRCall, StreamAssembler
from .results import OCRChunk, OCRResult
from .retry import (
    RetryPolicy,
    cancellable_sleep,
    current_cancel_event,
    raise_if_cancelled,
    tenacity_kwargs,
)
from .tasks import Schema, Task

__all__ = ["QwenOCR"]


class QwenOCR(BaseClient):
    """Synchronous Qwen-OCR client.

    Example::

        from qwen_ocr import QwenOCR

        with QwenOCR() as client:                      # key from DASHSCOPE_API_KEY
            print(client.ocr("receipt.jpg").text)
            fields = client.ocr("receipt.jpg", schema={"Total": "", "Date": ""}).fields
            for chunk in client.stream("page.png"):
                print(chunk.text, end="")
            results = client.ocr_many(["a.png", "b.png"], task="table_parsing")

    Args:
        api_key: the DashScope key; else ``DASHSCOPE_API_KEY``; else ``dashscope_api_key`` in
            ``~/.alibabacloud/credentials``. A missing key is reported at the first call.
        base_url: a host root such as ``http://127.0.0.1:8000`` (a trailing ``/api/v1`` or
            ``/compatible-mode/v1`` is accepted); else ``DASHSCOPE_BASE_URL``; else the region's host.
        region: ``"intl"`` (Singapore, default), ``"cn"`` (Beijing), ``"us"`` (Virginia), or any region id of
            :data:`qwen_ocr.config.REGIONS`; else ``DASHSCOPE_API_REGION``. Keys are region-bound (see ``config``).
        workspace: a Model Studio workspace id, sent as ``X-DashScope-WorkSpace``.
        model: the default model (``qwen-vl-ocr``); each call may override it.
        protocol: ``"dashscope"`` (the native protocol with built-in tasks).
        timeout: seconds each attempt may take as a whole (default 30): connecting, sending, and receiving the
            whole reply, or the whole stream (the time your code spends between two chunks is not counted). It is a
            deadline, not a per-step limit: a server that drips its reply is cut off. A deadline hit raises
            :class:`APITimeoutError` and is retried like any timeout (each attempt has its own deadline, so
            ``max_retries=2`` may take about three times ``timeout`` plus the backoff). It applies to an
            ``http_client`` you pass too. An ``httpx.Timeout`` instead sets per-step limits only (connect, each
            read, each write), with no overall deadline; ``None``: no limits.
        max_retries: retries of retryable failures (default 2); see :class:`RetryPolicy` for the backoff.
        max_concurrency: requests in flight at once from this client (default 8).
        retry: a full :class:`RetryPolicy`.
        data_inspection: ask the service for content inspection (``X-DashScope-DataInspection: enable``).
        default_headers: extra headers for every request (printable ASCII values; checked when the client is
            built, and never quoted in an error, as they may hold credentials).
        http_client: your own ``httpx.Client`` (proxies, certificates, transports); you close it.

    A reply is read up to ``max_response_bytes`` once decoded (32 MiB by default; a plain reply or a whole
    stream); past that, reading stops and :class:`ResponseTooLargeError` is raised (never retried). Set the
    attribute on a client to change it. A key that cannot be a key (a space, a line break, a control or non-ASCII
    character) raises :class:`MalformedAPIKeyError` here, before any request, without quoting the key.
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
        http_client: httpx.Client | None = None,
    ) -> None:
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
        if http_client is not None and not isinstance(http_client, httpx.Client):
            raise TypeError("http_client must be an httpx.Client (use AsyncQwenOCR for an httpx.AsyncClient)")
        self._owns_http = http_client is None
        if http_client is not None:
            self._check_http_client(http_client)
        self._http = http_client or httpx.Client(timeout=self._timeout(), limits=self._limits())
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (only those of a client this object created)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> QwenOCR:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- public API --------------------------------------------------------------------------------------------

    def ocr(
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
        """Read one image.

        Args:
            image: a path, an http(s) / ``data:`` / ``oss://`` URL, bytes, or a ``PIL.Image``.
            task: a built-in task (:class:`Task` or its string); ``None`` reads plain text.
            schema: for ``key_information_extraction``: the fields to fill (dict, JSON string or pydantic
                model; at most 3 levels of nesting). Implies that task when ``task`` is not given.
            prompt: a custom instruction (the service ignores it when a task is set).
            model: overrides the client's model for this call.
            min_pixels, max_pixels: the pixel budget of the image, sent as given (see ``resolution``).
            resolution: the budget as a level (:mod:`qwen_ocr.budget`), stated on the request and used to prepare
                the image: ``"standard"`` (default: 2,560 image tokens, about 2.6 MP, ~170 dpi on a Letter page),
                ``"high"`` (the documented default, 8,192 tokens: small print) or ``"max"`` (the model's ceiling,
                30,000 tokens: large pages and posters). Not together with ``max_pixels``.
            enable_rotate: let the service straighten rotated images.
            max_tokens, temperature: generation limits.

        Returns:
            The :class:`OCRResult`, with the views the task calls for.

        Raises:
            InvalidImageError: the image was refused before sending (nothing was billed).
            AuthenticationError: the key is missing or wrong.
            QwenOCRError: any other failure, typed (see ``qwen_ocr.errors``).

        Example::

            client.ocr("poster.png", task="advanced_recognition").lines[0].location
        """
        if self.provider == "local":
            return self._local_ocr(
                image,
                {
                    "task": task,
                    "schema": schema,
                    "min_pixels": min_pixels,
                    "max_pixels": max_pixels,
                    "resolution": resolution,
                },
            )
        call = self._call(
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
        return self._execute(call)._attach_image(image)  # by reference, for display (qwen_ocr.viz)

    def stream(
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
    ) -> Iterator[OCRChunk]:
        """Read one image as a stream of text deltas; the last chunk carries ``finish_reason`` and ``usage``.

        Arguments are validated (and the image prepared) when this is called; the request is sent when iteration
        starts. Failures before the first chunk are retried; an in-stream error raises its typed error.

        Example::

            for chunk in client.stream("page.png"):
                print(chunk.text, end="", flush=True)
        """
        if self.provider == "local":  # the local engine reads the page whole: one chunk
            return iter(
                [
                    self._chunk_of(
                        self._local_ocr(
                            image,
                            {
                                "task": task,
                                "schema": schema,
                                "min_pixels": min_pixels,
                                "max_pixels": max_pixels,
                                "resolution": resolution,
                            },
                        )
                    )
                ]
            )
        call = self._call(
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
        return self._stream(call, self._url(request), headers, request.content())

    def ocr_many(
        self,
        images: Iterable[ImageInput],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        **options: Any,
    ) -> list[OCRResult | QwenOCRError]:
        """Read many images concurrently; results come back in input order.

        Args:
            images: any iterable of inputs ``ocr()`` accepts; consumed lazily.
            max_concurrency: images in flight at once (default: the client's ``max_concurrency``).
            return_exceptions: put each failed item's ``QwenOCRError`` in its place instead of raising.
            **options: any ``ocr()`` option, applied to every image.

        Every problem of one item (an unreadable input, a refused request, anything unexpected) is that item's
        typed error; the other items are read all the same.

        Raises:
            BatchOCRError: (``return_exceptions=False``) after every item finished, if any failed; its
                ``.results`` holds every result and error in input order.
            InvalidArgumentError: ``max_concurrency`` is not a whole number from 1 to 1024, ``images`` is a single
                input rather than a collection, or an option is unknown.

        If ``images`` itself raises while it is consumed, that error propagates after the items in flight finish;
        queued items are not sent.

        Example::

            results = client.ocr_many(paths, task="text_recognition", return_exceptions=True)
        """
        opts = self._split_options(options)
        workers = self._batch_workers(max_concurrency, self.max_concurrency)
        self._check_batch(images)
        results: dict[int, OCRResult | QwenOCRError] = {}

        def one(image: ImageInput) -> OCRResult | QwenOCRError:
            try:
                return self.ocr(image, **opts)
            except QwenOCRError as exc:
                return exc
            except Exception as exc:  # one item's failure, whatever it is, never loses the others' results
                return self._item_failure(exc)

        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-ocr")
        pending: dict[Future[OCRResult | QwenOCRError], int] = {}
        try:
            for index, image in enumerate(images):
                if len(pending) >= workers * 2:
                    self._collect(pending, results, wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(one, image)] = index
            self._collect(pending, results, wait(pending).done)
        except BaseException:
            # The batch fails (its input iterator raised, or an interrupt): nothing queued is sent, and what is in
            # flight finishes before the error propagates, so no request of this batch outlives it.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        ordered = [results[i] for i in range(len(results))]
        if not return_exceptions and any(isinstance(r, QwenOCRError) for r in ordered):
            raise BatchOCRError(ordered)
        return ordered

    # -- internals ---------------------------------------------------------------------------------------------

    @staticmethod
    def _collect(
        pending: dict[Future[OCRResult | QwenOCRError], int],
        results: dict[int, OCRResult | QwenOCRError],
        done: set[Future[OCRResult | QwenOCRError]],
    ) -> None:
        for future in done:
            results[pending.pop(future)] = future.result()

    def _execute(self, call: OCRCall) -> OCRResult:
        request = self._request(call, stream=False)
        headers = self._headers(request)
        url = self._url(request)
        content = request.content()
        key = self._cache_key(url, content, headers)
        if (cached := self._cache_get(key)) is not None:
            return cached
        result: OCRResult | None = None
        for attempt in Retrying(sleep=cancellable_sleep, **tenacity_kwargs(self.retry)):
            with attempt:
                result = self._send_once(url, headers, content, call)
        assert result is not None
        self._cache_put(key, result)
        return result

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        """One of the ``max_concurrency`` request slots; waiting for it ends when a :func:`cancel_scope` is
        cancelled (:class:`RequestCancelledError`)."""
        event = current_cancel_event()
        if event is None:
            self._slots.acquire()
        else:
            while not self._slots.acquire(timeout=0.05):
                raise_if_cancelled()
        try:
            yield
        finally:
            self._slots.release()

    def _send_once(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> OCRResult:
        raise_if_cancelled()  # the reading was closed: no attempt, no retry
        with self._slot():
            delay = self._pace(call)
            if delay > 0:
                cancellable_sleep(delay)
            raise_if_cancelled()
            deadline = self._deadline()
            request = self._http.build_request(
                "POST", url, content=content, headers=headers, extensions=deadline.extensions(self._http.timeout)
            )
            try:
                with deadline.active():
                    response = self._http.send(request, stream=True)
                    try:
                        body = read_body(deadline.pieces(iter_body(response, self.max_response_bytes)))
                    finally:
                        response.close()
            except httpx.HTTPError as exc:
                raise transport_error(exc, deadline) from safe_cause(exc)
        return self._parse_observed(response.status_code, response.headers, body, call)

    def _open_stream(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> _OpenStream:
        """Send the request and read up to its first chunk, retrying every failure until then (an error status, a
        dropped connection, a garbled reply, an error or the end of the stream before any text)."""
        opened: _OpenStream | None = None
        for attempt in Retrying(sleep=cancellable_sleep, **tenacity_kwargs(self.retry)):
            with attempt:
                raise_if_cancelled()
                delay = self._pace(call)
                if delay > 0:
                    cancellable_sleep(delay)
                deadline = self._deadline()
                request = self._http.build_request(
                    "POST", url, content=content, headers=headers, extensions=deadline.extensions(self._http.timeout)
                )
                try:
                    with deadline.active():
                        response = self._http.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise transport_error(exc, deadline) from safe_cause(exc)
                try:
                    pieces = deadline.pieces(iter_body(response, self.max_response_bytes))
                    if response.status_code != 200:
                        raise self._refusal(response.status_code, read_body(pieces), response.headers)
                    opened = self._first_chunks(response, call, pieces, deadline)
                except httpx.HTTPError as exc:
                    response.close()
                    raise transport_error(exc, deadline) from safe_cause(exc)
                except BaseException:
                    response.close()
                    raise
        assert opened is not None
        return opened

    def _first_chunks(
        self, response: httpx.Response, call: OCRCall, pieces: Iterator[bytes], deadline: Deadline
    ) -> _OpenStream:
        if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
            result = self._parse(200, response.headers, read_body(pieces), call)  # the whole reading at once
            response.close()
            whole = OCRChunk(
                text=result.raw_text,
                finish_reason=result.finish_reason or "stop",
                usage=result.usage,
                request_id=result.request_id,
            )
            return _OpenStream(response, None, iter(()), [whole], deadline)
        assembler = self._assembler(call, response.headers)
        first: list[OCRChunk] = []
        try:
            for piece in pieces:
                first.extend(assembler.feed(piece))
                if first:
                    return _OpenStream(response, assembler, pieces, first, deadline)
        except httpx.TimeoutException:
            if not assembler.finished:  # a final frame without text, then silence: the reading is complete
                raise
        first.extend(assembler.close())  # the stream ended before any text: its end is checked here too
        return _OpenStream(response, None, iter(()), first, deadline)

    def _stream(self, call: OCRCall, url: str, headers: dict[str, str], content: bytes) -> Iterator[OCRChunk]:
        with self._slots:
            opened = self._open_stream(url, headers, content, call)
            try:
                yield from opened.first
                assembler = opened.assembler
                if assembler is None:  # read whole already
                    return
                yield from _rest(assembler, opened)
            except httpx.HTTPError as exc:
                raise transport_error(exc, opened.deadline) from safe_cause(exc)
            finally:
                opened.response.close()


def _rest(assembler: StreamAssembler, opened: _OpenStream) -> Iterator[OCRChunk]:
    """The chunks after the first, up to the final frame: what a server sends after it (keep-alive comments) is
    not waited for beyond a moment. A deadline hit after the finish reason ends the stream as complete."""
    try:
        for piece in opened.rest:
            yield from assembler.feed(piece)
            if assembler.complete:
                opened.deadline.drain(opened.rest)
                return
    except httpx.TimeoutException:
        if not assembler.finished:
            raise
    yield from assembler.close()


@dataclass
class _OpenStream:
    """A stream read up to its first chunk: the response, what reads the rest, and the chunks so far."""

    response: httpx.Response
    assembler: StreamAssembler | None
    rest: Iterator[bytes]
    first: list[OCRChunk]
    deadline: Deadline

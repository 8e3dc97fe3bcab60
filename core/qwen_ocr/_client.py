"""``QwenOCR``: the synchronous client, a thin shell over ``httpx.Client`` and the pure protocol modules."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

import httpx
from pydantic import SecretStr
from tenacity import Retrying

from ._base import DEFAULT_MAX_CONCURRENCY, DEFAULT_TIMEOUT, BaseClient, Protocol, Provider, transport_error
from .cache import OCRCache
from .errors import BatchOCRError, QwenOCRError
from .imaging import ImageInput
from .models import DEFAULT_MODEL
from .protocols.base import OCRCall, StreamAssembler
from .results import OCRChunk, OCRResult
from .retry import RetryPolicy, tenacity_kwargs
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
        timeout: seconds per request (default 30), or an ``httpx.Timeout``.
        max_retries: retries of retryable failures (default 2); see :class:`RetryPolicy` for the backoff.
        max_concurrency: requests in flight at once from this client (default 8).
        retry: a full :class:`RetryPolicy`.
        data_inspection: ask the service for content inspection (``X-DashScope-DataInspection: enable``).
        default_headers: extra headers for every request.
        http_client: your own ``httpx.Client`` (proxies, certificates, transports); you close it.
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
    ) -> OCRResult:
        """Read one image.

        Args:
            image: a path, an http(s) / ``data:`` / ``oss://`` URL, bytes, or a ``PIL.Image``.
            task: a built-in task (:class:`Task` or its string); ``None`` reads plain text.
            schema: for ``key_information_extraction``: the fields to fill (dict, JSON string or pydantic
                model; at most 3 levels of nesting). Implies that task when ``task`` is not given.
            prompt: a custom instruction (the service ignores it when a task is set).
            model: overrides the client's model for this call.
            min_pixels, max_pixels: the pixel budget of the image (the model's defaults otherwise).
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
                image, {"task": task, "schema": schema, "min_pixels": min_pixels, "max_pixels": max_pixels}
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
                            image, {"task": task, "schema": schema, "min_pixels": min_pixels, "max_pixels": max_pixels}
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

        Raises:
            BatchOCRError: (``return_exceptions=False``) after every item finished, if any failed; its
                ``.results`` holds every result and error in input order.

        Example::

            results = client.ocr_many(paths, task="text_recognition", return_exceptions=True)
        """
        opts = self._split_options(options)
        workers = max_concurrency or self.max_concurrency
        results: dict[int, OCRResult | QwenOCRError] = {}

        def one(image: ImageInput) -> OCRResult | QwenOCRError:
            try:
                return self.ocr(image, **opts)
            except QwenOCRError as exc:
                return exc

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-ocr") as pool:
            pending: dict[Future[OCRResult | QwenOCRError], int] = {}
            for index, image in enumerate(images):
                if len(pending) >= workers * 2:
                    self._collect(pending, results, wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(one, image)] = index
            self._collect(pending, results, wait(pending).done)
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
        key = self._cache_key(url, content)
        if key is not None and self.cache is not None and (cached := self.cache.get(key)) is not None:
            return cached
        result: OCRResult | None = None
        for attempt in Retrying(**tenacity_kwargs(self.retry)):
            with attempt:
                result = self._send_once(url, headers, content, call)
        assert result is not None
        if key is not None and self.cache is not None:
            self.cache.put(key, result)
        return result

    def _send_once(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> OCRResult:
        with self._slots:
            delay = self._pace(call)
            if delay > 0:
                time.sleep(delay)
            try:
                response = self._http.post(url, content=content, headers=headers)
            except httpx.HTTPError as exc:
                raise transport_error(exc) from exc
        return self._parse_observed(response.status_code, response.headers, response.content, call)

    def _open_stream(self, url: str, headers: dict[str, str], content: bytes, call: OCRCall) -> _OpenStream:
        """Send the request and read up to its first chunk, retrying every failure until then (an error status, a
        dropped connection, a garbled reply, an error or the end of the stream before any text)."""
        opened: _OpenStream | None = None
        for attempt in Retrying(**tenacity_kwargs(self.retry)):
            with attempt:
                request = self._http.build_request("POST", url, content=content, headers=headers)
                delay = self._pace(call)
                if delay > 0:
                    time.sleep(delay)
                try:
                    response = self._http.send(request, stream=True)
                except httpx.HTTPError as exc:
                    raise transport_error(exc) from exc
                try:
                    if response.status_code != 200:
                        body = response.read()
                        raise self._refusal(response.status_code, body, response.headers)
                    opened = self._first_chunks(response, call)
                except httpx.HTTPError as exc:
                    response.close()
                    raise transport_error(exc) from exc
                except BaseException:
                    response.close()
                    raise
        assert opened is not None
        return opened

    def _first_chunks(self, response: httpx.Response, call: OCRCall) -> _OpenStream:
        if "text/event-stream" not in response.headers.get("content-type", "text/event-stream"):
            result = self._parse(200, response.headers, response.read(), call)  # the whole reading at once
            response.close()
            whole = OCRChunk(
                text=result.raw_text,
                finish_reason=result.finish_reason or "stop",
                usage=result.usage,
                request_id=result.request_id,
            )
            return _OpenStream(response, None, iter(()), [whole])
        assembler = self._assembler(call, response.headers)
        data = response.iter_bytes()
        first: list[OCRChunk] = []
        for piece in data:
            first.extend(assembler.feed(piece))
            if first:
                return _OpenStream(response, assembler, data, first)
        first.extend(assembler.close())  # the stream ended before any text: its end is checked here too
        return _OpenStream(response, None, iter(()), first)

    def _stream(self, call: OCRCall, url: str, headers: dict[str, str], content: bytes) -> Iterator[OCRChunk]:
        with self._slots:
            opened = self._open_stream(url, headers, content, call)
            try:
                yield from opened.first
                assembler = opened.assembler
                if assembler is None:  # read whole already
                    return
                for data in opened.rest:
                    yield from assembler.feed(data)
                yield from assembler.close()
            except httpx.HTTPError as exc:
                raise transport_error(exc) from exc
            finally:
                opened.response.close()


@dataclass
class _OpenStream:
    """A stream read up to its first chunk: the response, what reads the rest, and the chunks so far."""

    response: httpx.Response
    assembler: StreamAssembler | None
    rest: Iterator[bytes]
    first: list[OCRChunk]

"""``QwenOCR``: the synchronous client: the exchange of :mod:`qwen_ocr._exchange` run with blocking I/O on an
``httpx.Client``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Unpack

from . import _exchange
from ._base import BaseClient, safe_cause, transport_error
from ._closing import Closing
from ._exchange import Blocking, Command, Emit, Flow, Runner, Send, Sleep
from .errors import QwenOCRError
from .options import ClientOverrides, OCROptions, settings_help
from .results import OCRChunk, OCRResult
from .retry import cancellable_sleep, current_cancel_event, raise_if_cancelled

if TYPE_CHECKING:  # httpx is imported when a client is built, not with the class (issue 17)
    import httpx

    from .batch import Batches
    from .imaging import ImageInput

__all__ = ["QwenOCR"]

T = TypeVar("T")


class QwenOCR(Closing, BaseClient):
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
        http_client: your own ``httpx.Client`` (proxies, certificates, transports); you close it.
        **settings: the client settings below, each declared once in :class:`qwen_ocr.options.ClientOptions`
            (an unknown name raises :class:`InvalidArgumentError` naming the closest one).

    A reply is read up to ``max_response_bytes`` once decoded; past that, reading stops and
    :class:`ResponseTooLargeError` is raised (never retried). A key that cannot be a key raises
    :class:`MalformedAPIKeyError` here, before any request, without quoting the key.
    """

    def __init__(self, *, http_client: httpx.Client | None = None, **settings: Unpack[ClientOverrides]) -> None:
        super().__init__(**settings)
        import httpx

        self._check_http_client(http_client, httpx.Client, "AsyncQwenOCR")
        self._owns_http = http_client is None
        self._http = http_client or httpx.Client(timeout=self._timeout(), limits=self._limits())
        self._slots = threading.BoundedSemaphore(self.max_concurrency)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (only those of a client this object created)."""
        if self._owns_http:
            self._http.close()

    # -- public API --------------------------------------------------------------------------------------------

    @property
    def batch(self) -> Batches:
        """Batch API jobs with this client (:mod:`qwen_ocr.batch`): ``client.batch.submit(sources, job_dir=...)``."""
        from .batch import Batches

        return Batches(self)

    def ocr(self, image: ImageInput, **options: Unpack[OCROptions]) -> OCRResult:
        """Read one image.

        Args:
            image: a path, an http(s) / ``data:`` / ``oss://`` URL, bytes, or a ``PIL.Image``.
            **options: the options of :class:`qwen_ocr.options.OCROptions`: ``task`` (a built-in task; ``None``
                reads plain text), ``schema`` (the fields ``key_information_extraction`` fills; implies that
                task), ``prompt``, ``model``, ``min_pixels``/``max_pixels``, ``enable_rotate``, ``max_tokens``,
                ``temperature``.

        Returns:
            The :class:`OCRResult`, with the views the task calls for.

        Raises:
            InvalidImageError: the image was refused before sending (nothing was billed).
            AuthenticationError: the key is missing or wrong.
            QwenOCRError: any other failure, typed (see ``qwen_ocr.errors``).

        Example::

            client.ocr("poster.png", task="advanced_recognition").lines[0].location
        """
        return self._run(_exchange.ocr(self, image, self._split_options(options)))

    def stream(self, image: ImageInput, **options: Unpack[OCROptions]) -> Iterator[OCRChunk]:
        """Read one image as a stream of text deltas; the last chunk carries ``finish_reason`` and ``usage``.

        Arguments are validated (and the image prepared) when this is called; the request is sent when iteration
        starts. Failures before the first chunk are retried; an in-stream error raises its typed error. The chunks
        add up to the model's text as written (``OCRResult.raw_text``).

        Example::

            for chunk in client.stream("page.png"):
                print(chunk.text, end="", flush=True)
        """
        return self._drive(self._stream_flow(image, options, prepare_now=True), [])

    def ocr_many(
        self,
        images: Iterable[ImageInput],
        *,
        max_concurrency: int | None = None,
        return_exceptions: bool = False,
        **options: Unpack[OCROptions],
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
        opts, workers = self._batch(images, max_concurrency, options)
        results: dict[int, OCRResult | QwenOCRError] = {}
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-ocr")
        pending: dict[Future[OCRResult | QwenOCRError], int] = {}

        def collect(done: set[Future[OCRResult | QwenOCRError]]) -> None:
            for future in done:
                results[pending.pop(future)] = future.result()

        try:
            for index, image in enumerate(images):
                if len(pending) >= workers * 2:
                    collect(wait(pending, return_when=FIRST_COMPLETED).done)
                pending[pool.submit(self._run, _exchange.batch_item(self, image, opts))] = index
            collect(wait(pending).done)
        except BaseException:
            # The batch fails (its input iterator raised, or an interrupt): nothing queued is sent, and what is in
            # flight finishes before the error propagates, so no request of this batch outlives it.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
        return self._batch_results(results, return_exceptions)

    # -- the driver --------------------------------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        """Run a flow that emits no chunks to its end; its value."""
        value: list[T] = []
        for _ in self._drive(flow, value):
            raise AssertionError("a reading emitted a chunk")  # pragma: no cover - only stream flows emit
        return value[0]

    def _drive(self, flow: Flow[T], value: list[T]) -> Iterator[OCRChunk]:
        """Run ``flow`` with blocking I/O, yielding the chunks it emits; what it returns is appended to ``value``.
        However it ends, its reply is closed and its request slot freed."""
        runner = Runner(flow)
        with _Wire(self, runner) as wire:
            for command in runner:
                if isinstance(command, Emit):
                    yield command.chunk  # the caller's time between two chunks is not the exchange's
                else:
                    runner.settle(wire.run, command)
        value.append(runner.value)  # type: ignore[arg-type]  # set: the flow returned

    def _acquire(self) -> Callable[[], None]:
        """Wait for one of the ``max_concurrency`` request slots (ended by a cancelled :func:`cancel_scope`:
        :class:`RequestCancelledError`); the function that frees it."""
        if current_cancel_event() is None:
            self._slots.acquire()
        else:
            while not self._slots.acquire(timeout=0.05):
                raise_if_cancelled()
        return self._slots.release


class _Wire:
    """The blocking I/O of one flow: sleeps, request slots, and the one reply open at a time, read under its
    deadline and the size cap. httpx errors become their typed errors here."""

    def __init__(self, client: QwenOCR, runner: Runner[Any]) -> None:
        from ._transport import Deadline

        self.client, self.runner = client, runner
        self.response: httpx.Response | None = None
        self.pieces: Iterator[bytes] | None = None
        self.deadline = Deadline(None)

    def __enter__(self) -> _Wire:
        return self

    def __exit__(self, *exc_info: object) -> None:
        """The flow ends (its request slot freed), then its reply is closed."""
        self.runner.close()
        self.close()

    def run(self, command: Command) -> Any:
        import httpx

        try:
            return getattr(self, command.op)(command)
        except httpx.HTTPError as exc:
            self.close()
            raise transport_error(exc, self.deadline) from safe_cause(exc)

    def acquire(self, _: Command) -> Callable[[], None]:
        return self.client._acquire()

    def sleep(self, command: Sleep) -> None:
        cancellable_sleep(command.seconds)

    def blocking(self, command: Blocking) -> Any:
        return command.work()

    def send(self, command: Send) -> tuple[int, httpx.Headers]:
        from ._transport import iter_body

        self.close()
        request, self.deadline = self.client._http_request(self.client._http, command, sync=True)
        with self.deadline.active():
            self.response = self.client._http.send(request, stream=True)
        self.pieces = self.deadline.pieces(iter_body(self.response, self.client.max_response_bytes))
        return self.response.status_code, self.response.headers

    def read(self, _: Command) -> bytes | None:
        assert self.pieces is not None
        return next(self.pieces, None)

    def read_all(self, _: Command) -> bytes:
        assert self.pieces is not None
        from ._transport import read_body

        try:
            return read_body(self.pieces)
        finally:
            self.close()

    def drain(self, _: Command) -> None:
        assert self.pieces is not None
        self.deadline.drain(self.pieces)
        self.close()

    def close(self, _: Command | None = None) -> None:
        if self.response is not None:
            self.response.close()
        self.response = self.pieces = None


QwenOCR.__doc__ = (QwenOCR.__doc__ or "") + settings_help()

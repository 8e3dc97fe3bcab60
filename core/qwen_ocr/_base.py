"""What the sync and async clients share: settings, turning ``ocr()`` arguments into a call, auth, errors.

The clients themselves (``_client.py``, ``_async_client.py``) only move bytes; every decision is made here or in
the pure protocol modules, so the two never drift apart.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import SecretStr
from typing_extensions import Self, Unpack

from . import _exchange
from ._checks import MAX_CONCURRENCY, MAX_RETRIES, check_number, check_whole
from ._exchange import Flow, Send
from ._version import __version__
from .budget import Resolution, check_resolution, note_mismatch, pixel_budget
from .cache import OCRCache, request_key
from .config import check_api_key, check_header, missing_key_error, resolve_api_key, resolve_endpoint
from .errors import (
    APIConnectionError,
    APITimeoutError,
    BatchOCRError,
    InvalidArgumentError,
    InvalidImageError,
    QwenOCRError,
    RateLimitError,
    error_from_response,
)
from .imaging import ImageInput, PreparedImage, prepare_image
from .models import check_call, model_spec
from .options import (
    CLIENT_SETTINGS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    OCR_OPTIONS,
    ClientOptions,
    ClientOverrides,
    OCROptions,
    Provider,
    WireProtocol,
    check_names,
    is_httpx_timeout,
)
from .pacing import Pacer, PacerHook
from .protocols import compatible, native
from .protocols.base import HTTPRequest, OCRCall, StreamAssembler
from .results import OCRResult, scale_rotate_rect
from .retry import RetryPolicy
from .tasks import Schema, Task, normalize_schema, resolve_task

if TYPE_CHECKING:  # httpx and the transport are imported when a client is built (issue 17: a light import)
    import httpx

    from ._transport import Deadline

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT",
    "BaseClient",
    "OCROptions",
    "Provider",
    "WireProtocol",
]

logger = logging.getLogger("qwen_ocr")


class BaseClient:
    """Settings and pure helpers shared by :class:`QwenOCR` and :class:`AsyncQwenOCR`."""

    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """The largest reply read, once decoded (a plain reply, or a whole stream); set it on a client to change it.
    Past it, reading stops and :class:`~qwen_ocr.ResponseTooLargeError` is raised (never retried)."""

    def __init__(self, **settings: Unpack[ClientOverrides]) -> None:
        """Check and keep the settings (every name of :class:`~qwen_ocr.options.ClientOptions`)."""
        check_names(settings, CLIENT_SETTINGS, what="setting")
        given = ClientOptions.model_construct(**settings)  # the declared defaults filled in; checked below
        provider, protocol = given.provider, given.protocol
        if provider not in ("auto", "dashscope", "openai", "local"):
            raise InvalidArgumentError(
                f"unknown provider {provider!r}; use 'auto', 'dashscope', 'openai' or 'local'.", code="InvalidProvider"
            )
        if provider == "openai" and protocol is None:
            protocol = "openai"
        if protocol is None:
            protocol = "dashscope"
        if protocol not in ("dashscope", "openai"):
            raise InvalidArgumentError(
                f"unknown protocol {protocol!r}; use 'dashscope' (native) or 'openai' (compatible mode).",
                code="InvalidProtocol",
            )
        check_whole(
            "max_concurrency", given.max_concurrency, minimum=1, maximum=MAX_CONCURRENCY, code="InvalidConcurrency"
        )
        if given.timeout is not None and not is_httpx_timeout(given.timeout):
            check_number(
                "timeout", given.timeout, unit=" of seconds", extra=", an httpx.Timeout or None", code="InvalidTimeout"
            )
        if given.max_retries is not None:
            check_whole("max_retries", given.max_retries, minimum=0, maximum=MAX_RETRIES, code="InvalidRetryPolicy")
        if not given.model or not isinstance(given.model, str):
            raise InvalidArgumentError("model must be a non-empty string such as 'qwen-vl-ocr'.")
        self.max_response_bytes = check_whole(
            "max_response_bytes", given.max_response_bytes, minimum=1, maximum=2**62, code="InvalidArgument"
        )
        self.api_key: SecretStr | None = resolve_api_key(given.api_key)
        endpoint = resolve_endpoint(given.base_url, given.region, given.workspace, protocol=protocol)  # args, env
        raw_base = endpoint.raw
        self.base_url: str = endpoint.base_url
        self._custom_host = not endpoint.official
        self.chat_path = given.chat_path or _chat_path_for(raw_base)
        self.provider: Literal["dashscope", "openai", "local"] = self._choose_provider(provider, protocol)
        self.region: str | None = endpoint.region  # the region id the host serves; None: a host of your own
        self.workspace = endpoint.workspace
        self.model = given.model
        self.protocol: WireProtocol = protocol
        self.timeout = given.timeout
        policy = given.retry or RetryPolicy()
        if given.max_retries is not None:
            policy = RetryPolicy(
                max_retries=given.max_retries,
                initial_delay=policy.initial_delay,
                max_delay=policy.max_delay,
                jitter=policy.jitter,
                max_retry_after=policy.max_retry_after,
            )
        self.retry = policy
        self.max_concurrency = given.max_concurrency
        self.data_inspection = given.data_inspection
        self.default_headers = dict(given.default_headers or {})
        for name, value in self.default_headers.items():
            check_header(name, value)
        if given.workspace is not None:
            check_header("X-DashScope-WorkSpace", given.workspace, setting="workspace")
        self.rpm, self.tpm = given.rpm, given.tpm
        self.pacer: PacerHook | None = self._make_pacer(given.rpm, given.tpm)
        cache = given.cache
        self.cache: OCRCache | None = cache if isinstance(cache, OCRCache) or cache is None else OCRCache(cache)

    def _make_pacer(self, rpm: float | Literal["auto"] | None, tpm: float | Literal["auto"] | None) -> Pacer | None:
        """The model's documented limits on DashScope's own hosts; none (until a 429 teaches one) elsewhere."""
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and value != "auto" and not _positive_finite(value):
                raise InvalidArgumentError(
                    f"{name} must be a positive number, 'auto' or None (got {value!r}).", code="InvalidRateLimit"
                )
        if self.provider == "local":
            return None
        official = not self._custom_host
        spec = model_spec(self.model)
        limit_rpm = (spec.rpm if official else None) if rpm == "auto" else rpm
        limit_tpm = (spec.tpm if official else None) if tpm == "auto" else tpm
        return Pacer(rpm=limit_rpm, tpm=limit_tpm)

    def _cache_key(self, url: str, content: bytes, headers: Mapping[str, str]) -> str | None:
        """The cache key of a request (its full URL, answer-changing headers and body), or ``None`` without cache."""
        return request_key(url, content, headers) if self.cache is not None else None

    def _cache_get(self, key: str | None) -> OCRResult | None:
        """The cached reading for ``key``, or ``None``; a cache that fails to answer is a miss (logged), never a
        failed call."""
        if key is None or self.cache is None:
            return None
        try:
            return self.cache.get(key)
        except Exception as exc:
            logger.warning("qwen_ocr: the cache failed to answer (%s); reading the image again.", type(exc).__name__)
            return None

    def _cache_put(self, key: str | None, result: OCRResult) -> None:
        """Store a paid reading; a cache that fails to store it is logged, and the call still returns the reading."""
        if key is None or self.cache is None:
            return
        try:
            self.cache.put(key, result)
        except Exception as exc:
            logger.warning("qwen_ocr: the cache failed to store a reading (%s); the call goes on.", type(exc).__name__)

    def _pace(self, call: OCRCall) -> float:
        """Seconds to wait before sending ``call`` (0 when unpaced)."""
        if self.pacer is None:
            return 0.0
        return self.pacer.reserve(call.image_tokens)

    def _parse_observed(self, status: int, headers: Mapping[str, str], content: bytes, call: OCRCall) -> OCRResult:
        """:meth:`_parse`, telling the pacer how it went (a 429 slows every sender; a success lets the pace recover)."""
        try:
            result = self._parse(status, headers, content, call)
        except RateLimitError as exc:
            self._observe_throttle(exc)
            raise
        self._observe_success(result)
        self._calibrate(call, result)
        return result

    def _calibrate(self, call: OCRCall, result: OCRResult) -> None:
        """Compare the service's bill of the image with the estimate; a large mismatch is logged once per model
        (:func:`qwen_ocr.budget.note_mismatch`). Only on DashScope's own hosts: a server of your own has its own
        rules and counts."""
        estimated = call.image_tokens
        if self._custom_host or estimated is None or call.image.sent_size is None:
            return
        note_mismatch(
            model=call.model,
            estimated=estimated,
            billed=result.usage.image_tokens,
            budget=call.budget,
            sent_size=call.image.sent_size,
        )

    def _refusal(self, status: int, body: bytes, headers: Mapping[str, str]) -> QwenOCRError:
        """The typed error of a refused stream request, told to the pacer when it is a 429."""
        error = error_from_response(status, body, headers, region=self.region)
        if isinstance(error, RateLimitError):
            self._observe_throttle(error)
        return error

    def _observe_success(self, result: OCRResult) -> None:
        if self.pacer is not None:
            self.pacer.on_success(result.usage.output_tokens, result.usage.input_tokens)

    def _observe_throttle(self, exc: RateLimitError) -> None:
        if self.pacer is not None:
            # The pause honours Retry-After as the retry does: capped at max_retry_after.
            hint = exc.retry_after
            pause = min(hint, self.retry.max_retry_after) if hint is not None else None
            self.pacer.on_throttled(pause, default_pause=min(self.retry.initial_delay, self.retry.max_delay))

    @classmethod
    def from_client(cls, other: BaseClient, **overrides: Unpack[ClientOverrides]) -> Self:
        """A new client of this class with the settings of ``other`` (sync or async), its own connections.

        Every setting is copied from ``other``'s attribute of the same name (so the resolved key, host, provider
        and protocol), then ``overrides`` apply. Unless ``rpm``/``tpm`` are overridden the two share one pacer (one
        account, one budget); unless ``cache`` is, one cache.

        >>> from qwen_ocr import AsyncQwenOCR, QwenOCR
        >>> AsyncQwenOCR.from_client(QwenOCR(api_key="k", model="qwen-vl-ocr-latest")).model
        'qwen-vl-ocr-latest'
        """
        check_names(overrides, CLIENT_SETTINGS, what="setting")
        # max_retries is part of retry; copied on its own, it would undo an overridden retry policy's.
        settings: dict[str, Any] = {name: getattr(other, name) for name in CLIENT_SETTINGS if name != "max_retries"}
        settings.update(overrides)
        made = cls(**settings)
        if "rpm" not in overrides and "tpm" not in overrides:
            made.pacer = other.pacer  # one account, one budget: the twins pace together
        return made

    @property
    def max_retries(self) -> int:
        """Retries after the first attempt."""
        return self.retry.max_retries

    def __repr__(self) -> str:
        key = "set" if self.api_key is not None else "missing"
        where = "local engine" if self.provider == "local" else self.base_url
        return (
            f"{type(self).__name__}(provider={self.provider!r}, base_url={where!r}, model={self.model!r}, "
            f"protocol={self.protocol!r}, api_key=<{key}>, max_retries={self.max_retries}, "
            f"max_concurrency={self.max_concurrency})"
        )

    # -- providers -----------------------------------------------------------------------------------------------

    def _choose_provider(self, provider: Provider, protocol: WireProtocol) -> Literal["dashscope", "openai", "local"]:
        """``auto``: the service (DashScope, or the OpenAI-compatible protocol). The engine never changes by itself:
        with no key, the first call raises the missing-key error, which says how to set one and that
        ``provider="local"`` reads offline; the local engine is used only when asked for."""
        if provider == "local":
            return "local"
        return "openai" if protocol == "openai" else "dashscope"

    def _local_ocr(self, image: ImageInput, options: Mapping[str, Any]) -> OCRResult:
        """Read with the offline engine (CPU work; the async client runs this in a worker thread)."""
        check_resolution(options.get("resolution"))  # the local engine reads at its own scale
        engine = _local_module().get_engine()
        task = resolve_task(options.get("task"), options.get("schema"))
        result = engine.ocr(
            image,
            task=task,
            min_pixels=options.get("min_pixels"),
            max_pixels=options.get("max_pixels"),
        )
        if not isinstance(result, OCRResult):  # pragma: no cover - a contract check on the engine
            raise TypeError("the local engine must return an OCRResult")
        if isinstance(image, PreparedImage) and image.original_size is not None and image.scale != (1.0, 1.0):
            result = _in_original_frame(result, image.scale, image.original_size)  # as the service path reports
        return result._attach_image(image)

    # -- building a call ------------------------------------------------------------------------------------

    def _call(
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
    ) -> OCRCall:
        """Validate the options and prepare the image (CPU work: decode, rotate, downscale, encode) for the budget
        the request then states: ``max_pixels`` as given, else the ``resolution`` level, else the budget a
        :class:`PreparedImage` was prepared for, else the default level (:mod:`qwen_ocr.budget`)."""
        the_schema = normalize_schema(schema)
        the_task = resolve_task(task, the_schema)
        spec = model_spec(model or self.model)
        check_call(spec, task=the_task, prompt=prompt, region=self.region)  # tasks, prompt, region: models.py
        _check_pixels(min_pixels, max_pixels, spec.max_pixels_ceiling)
        given = resolution is not None or min_pixels is not None or max_pixels is not None
        if not given and isinstance(image, PreparedImage) and image.max_pixels is not None:
            min_pixels, max_pixels = image.min_pixels, image.max_pixels  # e.g. a document page: its own budget
        budget = pixel_budget(spec, resolution=resolution, min_pixels=min_pixels, max_pixels=max_pixels)
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidArgumentError("max_tokens must be a positive integer.", code="InvalidMaxTokens")
        if temperature is not None and not 0 <= temperature < 2:
            raise InvalidArgumentError("temperature must be within [0, 2).", code="InvalidTemperature")
        if isinstance(image, PreparedImage):  # e.g. a document page rendered at the budget already
            prepared = image
        else:
            try:
                prepared = prepare_image(image, model=spec, min_pixels=budget.min_pixels, max_pixels=budget.max_pixels)
            except QwenOCRError:
                raise
            except Exception as exc:  # any other failure to read this input is a problem of the input
                raise unusable_input(exc) from exc
        return OCRCall(
            image=prepared,
            spec=spec,
            task=the_task,
            schema=the_schema,
            prompt=prompt,
            min_pixels=budget.min_pixels,
            max_pixels=budget.max_pixels,
            enable_rotate=enable_rotate,
            max_tokens=max_tokens,
            temperature=temperature,
            region=self.region,
        )

    def _batch(self, images: object, max_concurrency: object, options: Mapping[str, Any]) -> tuple[OCROptions, int]:
        """An ``ocr_many`` call checked: its options, and its workers (``max_concurrency``, or the client's)."""
        opts = self._split_options(options)
        workers = self.max_concurrency
        if max_concurrency is not None:
            workers = check_whole(
                "max_concurrency", max_concurrency, minimum=1, maximum=MAX_CONCURRENCY, code="InvalidConcurrency"
            )
        if isinstance(images, (str, bytes, bytearray, memoryview, os.PathLike)) or not hasattr(images, "__iter__"):
            raise InvalidArgumentError(
                f"images must be an iterable of inputs (e.g. a list of paths), not a single {type(images).__name__}; "
                "to read one image, pass [image] or call ocr().",
                code="InvalidArgument",
            )
        return opts, workers

    @staticmethod
    def _batch_results(
        results: Mapping[int, OCRResult | QwenOCRError], return_exceptions: bool
    ) -> list[OCRResult | QwenOCRError]:
        """The results of ``ocr_many`` in input order; :class:`BatchOCRError` if any failed (unless
        ``return_exceptions``)."""
        ordered = [results[i] for i in range(len(results))]
        if not return_exceptions and any(isinstance(r, QwenOCRError) for r in ordered):
            raise BatchOCRError(ordered)
        return ordered

    @staticmethod
    def _item_failure(exc: Exception) -> QwenOCRError:
        """The typed error kept in a batch slot for an item that failed with something other than a QwenOCRError
        (so that one item's failure never loses the other items' results)."""
        error = QwenOCRError(
            f"this item failed unexpectedly ({type(exc).__name__}: {_text_of(exc)}); the other items are unaffected.",
            code="UnexpectedError",
        )
        error.__cause__ = exc
        return error

    @staticmethod
    def _split_options(options: Mapping[str, Any]) -> OCROptions:
        """The options of one reading, their names checked (values are checked by :meth:`_call`)."""
        check_names(options, OCR_OPTIONS, what="option", code="InvalidOption", where="ocr() accepts")
        checked: OCROptions = {**options}  # type: ignore[typeddict-item]  # the names were checked just above
        return checked

    def _stream_flow(self, image: ImageInput, options: Mapping[str, Any], *, prepare_now: bool) -> Flow[None]:
        """The flow of ``stream()``, its arguments checked now, as sending would check them (with a stand-in
        image: the options, the headers, the key). The image is prepared now too (``prepare_now``: the sync
        client), or when iteration starts, in a worker thread (the async client: no CPU work on the event loop)."""
        opts = self._split_options(options)
        if self.provider == "local":
            return _exchange.local_stream(self, image, opts)
        self._send_command(self._call(_STAND_IN, **opts), stream=True)
        preparing = _exchange.ready(self._call(image, **opts)) if prepare_now else _exchange.prepare(self, image, opts)
        return _exchange.stream(self, preparing)

    # -- HTTP pieces (pure) ------------------------------------------------------------------------------------

    def _send_command(self, call: OCRCall, *, stream: bool) -> Send:
        """What to send for ``call``: URL, headers (with the key) and body."""
        request = self._request(call, stream=stream)
        return Send(self._url(request), self._headers(request), request.content())

    def _request(self, call: OCRCall, *, stream: bool) -> HTTPRequest:
        if self.protocol == "openai":
            return compatible.build_request(
                call,
                stream=stream,
                workspace=self.workspace,
                data_inspection=self.data_inspection,
                path=self.chat_path,
            )
        return native.build_request(call, stream=stream, workspace=self.workspace, data_inspection=self.data_inspection)

    def _headers(self, request: HTTPRequest) -> dict[str, str]:
        from ._transport import ACCEPT_ENCODING

        headers = {
            "User-Agent": f"qwen-ocr-python/{__version__}",
            "Accept-Encoding": ACCEPT_ENCODING,  # the encodings inflated under max_response_bytes
            **self.default_headers,
            **request.headers,
        }
        for name, value in headers.items():  # checked at construction; again here, as settings may change after
            check_header(name, value)
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {check_api_key(self.api_key).get_secret_value()}"
        elif not (self.protocol == "openai" and self._custom_host):
            raise missing_key_error()  # a self-hosted OpenAI-compatible server may need no key
        return headers

    def _url(self, request: HTTPRequest) -> str:
        return self.base_url + request.path

    def _parse(self, status: int, headers: Mapping[str, str], content: bytes, call: OCRCall) -> OCRResult:
        if self.protocol == "openai":
            return compatible.parse_response(status, headers, content, call)
        return native.parse_response(status, headers, content, call)

    def _assembler(self, call: OCRCall, headers: Mapping[str, str]) -> StreamAssembler:
        if self.protocol == "openai":
            return compatible.OpenAIStreamAssembler(call, headers)
        return native.NativeStreamAssembler(call, headers)

    @staticmethod
    def _check_http_client(http: object, kind: type[httpx.Client | httpx.AsyncClient], twin: str) -> None:
        """A caller's ``http_client``: of the client's ``kind``; its headers are sent with every request, so one
        httpx would refuse (and quote in its error and debug log) is refused here by name, before any request."""
        if http is None:
            return
        import httpx

        if not isinstance(http, kind):
            other = "AsyncClient" if kind is httpx.Client else "Client"
            raise TypeError(f"http_client must be an httpx.{kind.__name__} (use {twin} for an httpx.{other})")
        for name, value in http.headers.raw:  # bytes, as sent: any byte from 0x80 up may go (h11's obs-text)
            check_header(
                name.decode("latin-1"), value.decode("latin-1"), setting="http_client headers", ascii_only=False
            )

    def _http_request(
        self, http: httpx.Client | httpx.AsyncClient, send: Send, *, sync: bool
    ) -> tuple[httpx.Request, Deadline]:
        """The httpx request for ``send``, and the deadline of this attempt (its per-step timeouts set; for a sync
        client, the hook that holds every socket read and write to it)."""
        deadline = self._deadline()
        request = http.build_request(
            "POST",
            send.url,
            content=send.content,
            headers=send.headers,
            extensions=deadline.extensions(http.timeout, sync=sync),
        )
        return request, deadline

    def _deadline(self) -> Deadline:
        """The deadline of one attempt: ``timeout`` seconds from now when it is a number; none for an
        ``httpx.Timeout`` (its per-step limits apply) or ``None``."""
        from ._transport import Deadline

        if isinstance(self.timeout, (int, float)) and not isinstance(self.timeout, bool):
            return Deadline(float(self.timeout))
        return Deadline(None)

    def _timeout(self) -> httpx.Timeout:
        import httpx

        if isinstance(self.timeout, httpx.Timeout):
            return self.timeout
        if self.timeout is None:
            return httpx.Timeout(None)
        return httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))

    def _limits(self) -> httpx.Limits:
        import httpx

        return httpx.Limits(max_connections=max(self.max_concurrency, 1) * 2, max_keepalive_connections=None)


_STAND_IN = PreparedImage(url="data:image/png;base64,")
"""The image ``stream()`` checks its other arguments with before the real one is prepared."""


def _in_original_frame(result: OCRResult, scale: tuple[float, float], size: tuple[int, int]) -> OCRResult:
    """Boxes of the sent pixels mapped to the caller's frame (a PDF page's points, a downscaled image's pixels)."""
    sx, sy = scale
    lines = []
    for line in result.lines:
        loc = line.location
        location = tuple(round(v * (sx if i % 2 == 0 else sy)) for i, v in enumerate(loc))
        rotate_rect = scale_rotate_rect(line.rotate_rect, sx, sy)  # at 90 degrees width is along y: sy
        lines.append(line.model_copy(update={"location": location, "rotate_rect": rotate_rect}))
    return result.model_copy(update={"lines": lines, "image_size": size})


def _chat_path_for(raw_base: str | None) -> str:
    """OpenAI-compatible path: DashScope's compatible mode, or ``/v1/...`` for a server given as ``http://host/v1``."""
    if raw_base:
        lowered = raw_base.strip().rstrip("/").lower()
        if lowered.endswith("/v1") and not lowered.endswith("/compatible-mode/v1"):
            return compatible.SELF_HOSTED_PATH
    return compatible.COMPAT_PATH


def _local_module() -> Any:
    """The offline engine's package (the ``local`` extra), imported only when it is used."""
    import importlib

    return importlib.import_module("qwen_ocr.local")


def _positive_finite(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _check_pixels(min_pixels: int | None, max_pixels: int | None, ceiling: int) -> None:
    for name, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise InvalidArgumentError(f"{name} must be a positive integer.", code="InvalidPixels")
    if max_pixels is not None and max_pixels > ceiling:
        raise InvalidArgumentError(
            f"max_pixels={max_pixels:,} is above this model's ceiling of {ceiling:,}.", code="InvalidPixels"
        )
    if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
        raise InvalidArgumentError("min_pixels must not exceed max_pixels.", code="InvalidPixels")


def unusable_input(exc: BaseException) -> InvalidImageError:
    """The typed error for an input that could not be read for a reason ``prepare_image`` did not foresee (a NUL
    byte in a path, an OS error, a decoder crash)."""
    return InvalidImageError(
        f"cannot read an image from this input ({type(exc).__name__}: {_text_of(exc)}). Pass a path to an image "
        "file, an http(s) or data: URL, bytes, or a PIL.Image.",
        code="UnreadableInput",
    )


def _text_of(exc: BaseException) -> str:
    from ._transport import safe_text

    try:
        text = safe_text(str(exc))
    except Exception:
        text = ""
    return (text[:200] + "...") if len(text) > 200 else (text or "no details")


def transport_error(exc: httpx.HTTPError, deadline: Deadline | None = None) -> QwenOCRError:
    """A typed error for an httpx transport failure: retryable, except a request httpx refused to send (an
    illegal header: the same request would fail again). Its text never holds a header value (nor the key)."""
    import httpx

    from ._transport import DeadlineExceeded, safe_text

    if isinstance(exc, httpx.TimeoutException):
        if isinstance(exc, DeadlineExceeded) or (deadline is not None and deadline.expired()):
            limit = f"={deadline.seconds:g} s" if deadline is not None and deadline.seconds is not None else ""
            return APITimeoutError(
                f"no complete answer within timeout{limit} (the deadline of each attempt as a whole). Raise "
                "timeout= for very large images or long outputs."
            )
        return APITimeoutError(
            f"no answer within the timeout ({type(exc).__name__}). Raise timeout= for very large images or "
            "long outputs."
        )
    text = safe_text(str(exc))
    if isinstance(exc, httpx.LocalProtocolError) and "illegal header" in text.lower():
        return InvalidArgumentError(
            f"the request was not sent: httpx refused a header ({text}). Check default_headers and the headers of "
            "your http_client.",
            code="InvalidHeader",
        )
    return APIConnectionError(f"the connection to the service failed ({type(exc).__name__}: {text}).")


def safe_cause(exc: BaseException) -> BaseException | None:
    """``exc`` to chain as the cause of our error, or ``None`` when its text (or its chain's) may quote a header
    value: then it is left out of the traceback."""
    from ._transport import leaks_header

    return None if leaks_header(exc) else exc

"""A loopback emulator of the Qwen-OCR service: both endpoints, streaming, rate limits and injected faults.

It serves, on ``127.0.0.1`` only:

- the native endpoint ``POST /api/v1/services/aigc/multimodal-generation/generation``, streaming as SSE when the
  request carries ``X-DashScope-SSE: enable`` (framing of a recorded stream: ``id:N``, ``event:result``,
  ``:HTTP_STATUS/200``, ``data:{...}`` with ``finish_reason`` ``"null"`` until the last frame, cumulative usage,
  incremental text with ``incremental_output: true``, the whole text so far in each frame without it);
- the OpenAI-compatible endpoint ``POST /compatible-mode/v1/chat/completions`` (also at ``/v1/chat/completions``,
  where self-hosted servers have it), streaming ``data: {chunk}`` frames and ``data: [DONE]`` for
  ``"stream": true``, with the usage chunk when ``stream_options.include_usage`` is set;
- the Batch File API (``/compatible-mode/v1/files`` and ``/compatible-mode/v1/batches``), through
  :attr:`Emulator.batches` (see :mod:`qwen_ocr.testing.batches`): each line answered as the endpoints above answer it.

Replies are recorded ones (see ``recordings/SOURCES.md``), chosen by task: ``parameters.ocr_options.task``
(native) or the official prompt of the text part (compatible); no task or a custom prompt gets the plain OCR
recording. With ``reader="local"`` the local engine (``qwen_ocr.local``) reads the image instead; with
``reader="digest"`` every image is answered ``image <the first 16 hex digits of its SHA-256>`` (plain text), so that
each image's text is its own: what tests of "which page got which answer" compare.

Switches: ``latency`` (seconds per request, spread over the frames of a stream), ``rpm`` (a sliding 60 s window;
over it: HTTP 429 ``Throttling.RateQuota`` with ``Retry-After``), faults drawn with a seeded RNG (``faults`` and
``fault_rate``), queued with :meth:`Emulator.inject` or queued for one image with :meth:`Emulator.inject_for`, and an
API-key check (``valid_keys``). ``stats`` counts requests, responses by status and successes per image;
``request_log`` keeps what was received; :attr:`Emulator.in_flight` says how many requests are being worked on.

What ``stats.successes_by_image`` counts (what a billing test expects to be charged): complete successful replies
only. A fault never counts (a garbled body, a stream cut or ended by an error frame, a dropped or stalled
connection: the emulator decides the fault before any reply, so it never "completes a request and then loses the
answer"), and neither does a request whose client went away before its reply was ready (``stats.abandoned``). The
real service may bill a request whose answer was lost on the way back; a client that retries it then pays twice.
The emulator does not model that case.

Example::

    from qwen_ocr import QwenOCR, RetryPolicy
    from qwen_ocr.testing import Emulator

    with Emulator(latency=0.05, rpm=1200, faults=["500", "drop"], fault_rate=0.1, seed=7) as emu:
        client = QwenOCR(api_key="k", base_url=emu.base_url, retry=RetryPolicy(initial_delay=0, max_delay=0))
        print(client.ocr("table.png", task="table_parsing").tables[0].to_markdown())
        emu.stats.responses                  # {200: 1} (or a 500 and then a 200)

From a shell::

    python -m qwen_ocr.testing.emulator --port 8000 --latency 0.3 --rpm 1200 --fault-rate 0.05 \\
        --faults 429,429_retry_after,500,503,drop,timeout,garbled,stream_error,stream_cut --stall 60
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import importlib
import json
import math
import random
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType, TracebackType
from typing import Any, Literal, get_args

from ..errors import QwenOCRError
from ..results import OCRResult
from ..tasks import Task
from ._wire import (
    COMPAT_PATHS,
    NATIVE_PATH,
    RECORDINGS,
    WireProtocol,
    compatible_error_body,
    compatible_frame,
    compatible_stream_for,
    decode_data_url,
    dumps,
    image_digest,
    image_url_of,
    load_recording,
    native_error_body,
    native_frame,
    native_sse_frames,
    native_to_compatible,
    new_request_id,
    result_to_native,
    task_of,
    wants_stream,
)
from .batches import BatchService

__all__ = [
    "FAULT_KINDS",
    "PERMANENT_FAULTS",
    "TRANSIENT_FAULTS",
    "Emulator",
    "EmulatorStats",
    "FaultKind",
    "LoggedRequest",
    "main",
]

TransientFault = Literal[
    "429",
    "429_retry_after",
    "insufficient_quota",
    "500",
    "503",
    "drop",
    "timeout",
    "garbled",
    "stream_error",
    "stream_cut",
]
PermanentFault = Literal["400", "401", "403", "DataInspectionFailed", "Arrearage"]
FaultKind = Literal[TransientFault, PermanentFault]
"""A fault the emulator can inject: see :data:`TRANSIENT_FAULTS` and :data:`PERMANENT_FAULTS`."""
TRANSIENT_FAULTS: tuple[str, ...] = get_args(TransientFault)
"""Faults a client should retry: HTTP 429 / 500 / 503 with the service's body (``429``: without ``Retry-After``;
``429_retry_after``: with ``Retry-After: <fault_retry_after>``; the RPM limit's 429 has one too);
``insufficient_quota``: the per-minute token throttling (HTTP 429; the compatible mode's OpenAI-style
``insufficient_quota`` "You exceeded your current quota" body, natively ``Throttling.AllocationQuota``); ``drop``: the
socket is closed without an answer; ``timeout``: no answer for ``stall`` seconds (longer than the client's timeout),
then the socket is closed; ``garbled``: HTTP 200 with a body that is not JSON; ``stream_error``: an error frame
mid-stream (``event:error`` + ``:HTTP_STATUS/500`` natively, a ``data: {"error": ...}`` or ``event: error`` frame
in compatible mode); ``stream_cut``: the stream ends mid-way without its final frame (and without ``[DONE]``)."""
PERMANENT_FAULTS: tuple[str, ...] = get_args(PermanentFault)
"""Faults a client must not retry, with the service's codes: ``400`` ``InvalidParameter``, ``401`` ``InvalidApiKey``,
``403`` ``AccessDenied``, ``DataInspectionFailed`` (HTTP 400, content inspection) and ``Arrearage`` (HTTP 400, an
account in arrears)."""
FAULT_KINDS: tuple[str, ...] = TRANSIENT_FAULTS + PERMANENT_FAULTS
"""Every injectable fault: :data:`TRANSIENT_FAULTS` and :data:`PERMANENT_FAULTS`."""

_STREAM_ONLY = frozenset({"stream_error", "stream_cut"})
_PERMANENT_REPLIES: dict[str, tuple[int, str | None, str | None]] = {
    "400": (400, None, None),
    "401": (401, None, None),
    "403": (403, None, None),
    "DataInspectionFailed": (400, "DataInspectionFailed", "Input or output data may contain inappropriate content."),
    "Arrearage": (400, "Arrearage", "Access denied, please make sure your account is in good standing."),
}
_WINDOW = 60.0
_TOKEN_THROTTLING: dict[str, tuple[str, str]] = {
    "openai": (
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. For details, see: "
        "https://help.aliyun.com/zh/model-studio/error-code#token-limit",
    ),
    "dashscope": ("Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."),
}
"""The per-minute token limit's 429, as each protocol words it (the error-code page's "token limit")."""


@dataclass
class LoggedRequest:
    """A request the emulator received.

    Attributes:
        method: the HTTP method.
        path: the path (with query string).
        headers: the headers; the ``Authorization`` value is replaced by ``"<redacted>"``.
        json: the parsed JSON body (``None`` if absent or not JSON).
        protocol: ``"dashscope"`` or ``"openai"`` (from the path).
        stream: whether a stream was asked for.
        task: the task recognised (``None``: no task or a custom prompt).
        time: when it arrived (``time.time()``).
        request_id: the request id of the reply (``None`` for GET requests).
        image: the image's key, as in ``stats.successes_by_image`` (``None`` until the request was checked, and for
            a request without an image).
    """

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    protocol: WireProtocol
    stream: bool
    task: Task | None
    time: float
    request_id: str | None = None
    image: str | None = None


@dataclass
class EmulatorStats:
    """Counters of an emulator (a snapshot: :attr:`Emulator.stats` returns a fresh copy).

    Attributes:
        requests: requests received (every method and path).
        responses: responses sent, by HTTP status (a dropped connection is not a response).
        successes_by_image: complete successful replies per image (SHA-256 of the image's bytes for a ``data:``
            URL, of the URL otherwise): what a billing test would expect to be charged.
        faults: faults injected, by kind.
        throttled: requests refused by the RPM limit.
        unauthorized: requests refused for a wrong or missing key.
        abandoned: requests whose client closed the connection before the reply was ready (not successes).
    """

    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)
    successes_by_image: dict[str, int] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)
    throttled: int = 0
    unauthorized: int = 0
    abandoned: int = 0

    @property
    def successes(self) -> int:
        """Complete successful replies in all."""
        return sum(self.successes_by_image.values())

    def copy(self) -> EmulatorStats:
        """A deep copy."""
        return EmulatorStats(
            requests=self.requests,
            responses=dict(self.responses),
            successes_by_image=dict(self.successes_by_image),
            faults=dict(self.faults),
            throttled=self.throttled,
            unauthorized=self.unauthorized,
            abandoned=self.abandoned,
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    """The listen backlog (socketserver's default is 5): a client opening 8 or more connections at once had the
    sixth and later wait for a SYN retransmit, a second or more."""
    emulator: Emulator

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that hang up (a timed-out or cancelled request); loud about anything else."""
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class Emulator:
    """The emulator; use it as a context manager (or :meth:`start` / :meth:`stop`).

    Args:
        port: the port on 127.0.0.1; 0 picks a free one (read it from :attr:`port` / :attr:`base_url`).
        latency: seconds added to every request; a stream spreads them over its frames.
        rpm: requests per minute allowed (a sliding 60 s window); ``None`` for no limit.
        per_second: also allow at most ``rpm // 60`` requests in any one second, as the service may enforce
            (its documentation: "rate limits may also be enforced at the per-second level, RPS = RPM/60").
        faults: fault kinds to inject at random (see :data:`FAULT_KINDS`), or a mapping of kind to probability.
        fault_rate: the probability that a request gets one of ``faults`` (for a sequence of kinds).
        seed: the seed of the fault RNG (the same seed gives the same faults for the same request order).
        valid_keys: the API keys accepted; any other ``Authorization: Bearer`` gets HTTP 401 ``InvalidApiKey``.
            ``None`` accepts every request.
        reader: ``"recorded"`` (answer with recorded replies), ``"digest"`` (answer ``image <16 hex digits of
            the image's SHA-256>``, the same text for the same image whatever the task) or ``"local"`` (the local
            engine reads the ``data:`` URL image; needs ``pip install qwen-ocr[local]``).
        chunk_chars: characters of text per stream frame.
        stall: seconds a ``timeout`` fault holds the request without answering before it closes the connection
            (set it above the client's timeout); the wait ends early when the client hangs up.
        fault_retry_after: the ``Retry-After`` (whole seconds) of a ``429_retry_after`` fault.

    Example::

        with Emulator(valid_keys={"k"}) as emu:
            httpx.post(emu.base_url + "/compatible-mode/v1/chat/completions", json={...},
                       headers={"Authorization": "Bearer k"})
            emu.request_log[-1].json["messages"]
    """

    def __init__(
        self,
        *,
        port: int = 0,
        latency: float = 0.0,
        rpm: int | None = None,
        per_second: bool = False,
        faults: Sequence[str] | Mapping[str, float] = (),
        fault_rate: float = 0.0,
        seed: int | None = 0,
        valid_keys: Collection[str] | None = None,
        reader: Literal["recorded", "digest", "local"] = "recorded",
        chunk_chars: int = 8,
        stall: float = 30.0,
        fault_retry_after: int = 1,
    ) -> None:
        if latency < 0:
            raise ValueError("latency must be >= 0")
        if rpm is not None and rpm < 1:
            raise ValueError("rpm must be >= 1 (or None for no limit)")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError("fault_rate must be within [0, 1]")
        if reader not in ("recorded", "digest", "local"):
            raise ValueError("reader must be 'recorded', 'digest' or 'local'")
        if stall < 0 or fault_retry_after < 0:
            raise ValueError("stall and fault_retry_after must be >= 0")
        kinds = list(faults.keys()) if isinstance(faults, Mapping) else list(faults)
        for kind in kinds:
            _check_kind(kind)
        self._fault_weights: dict[str, float] | None = (
            {str(k): float(v) for k, v in faults.items()} if isinstance(faults, Mapping) else None
        )
        self._fault_kinds = [str(k) for k in kinds]
        self._requested_port = port
        self.latency = latency
        self.rpm = rpm
        self.per_second = per_second
        self.fault_rate = fault_rate
        self.valid_keys = frozenset(valid_keys) if valid_keys is not None else None
        self.reader = reader
        self.chunk_chars = chunk_chars
        self.stall = stall
        self.fault_retry_after = int(fault_retry_after)
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not cryptography
        self._lock = threading.Lock()
        self._window: collections.deque[float] = collections.deque()
        self._second: collections.deque[float] = collections.deque()
        self._queued: collections.deque[str] = collections.deque()
        self._queued_for: dict[str, collections.deque[str]] = {}
        self._in_flight = 0
        self._stopping = threading.Event()
        self._stats = EmulatorStats()
        self._log: list[LoggedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._engine: Any = None
        self._engine_lock = threading.Lock()
        self.batches = BatchService(self)
        """The Batch File API (``/compatible-mode/v1/files``, ``/batches``): see :mod:`qwen_ocr.testing.batches`."""

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Bind 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", self._requested_port), _Handler)
        server.emulator = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="qwen-ocr-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # ends the waits of stalled requests
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The port served (after :meth:`start`)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; use it in a with block or call start()")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: pass it as ``base_url=`` to the client."""
        return f"http://127.0.0.1:{self.port}"

    # -- observing and steering --------------------------------------------------------------------------------

    @property
    def stats(self) -> EmulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            return self._stats.copy()

    @property
    def request_log(self) -> list[LoggedRequest]:
        """The requests received so far, in order (a copy)."""
        with self._lock:
            return list(self._log)

    def reset(self) -> None:
        """Clear the counters, the log, the RPM window and the queued faults."""
        with self._lock:
            self._stats = EmulatorStats()
            self._log.clear()
            self._window.clear()
            self._queued.clear()
            self._queued_for.clear()

    def inject(self, *kinds: str) -> None:
        """Queue faults for the next requests, one each, in order (deterministic, on top of random faults).

        A stream-only fault that meets a non-streamed request becomes its nearest equivalent: ``stream_error``
        an HTTP 500, ``stream_cut`` a dropped connection.

        Example::

            emu.inject("503", "drop")      # the next request gets a 503, the one after is dropped
        """
        for kind in kinds:
            _check_kind(kind)
        with self._lock:
            self._queued.extend(kinds)

    def inject_for(self, image: str | bytes, *kinds: str) -> None:
        """Queue faults for the next requests of one image, one each, in order (before :meth:`inject`'s).

        Args:
            image: the image's bytes as sent (a ``data:`` URL's payload) or their SHA-256 in hex (the keys of
                ``stats.successes_by_image``); for a remote image, its URL string's SHA-256.
            kinds: fault kinds (see :data:`FAULT_KINDS`).

        Example::

            emu.inject_for(png_bytes, "400")   # that image is refused once with InvalidParameter; others are not
        """
        for kind in kinds:
            _check_kind(kind)
        digest = hashlib.sha256(image).hexdigest() if isinstance(image, bytes) else image.lower()
        with self._lock:
            self._queued_for.setdefault(digest, collections.deque()).extend(kinds)

    @property
    def in_flight(self) -> int:
        """POST requests being worked on right now (received, reply not finished)."""
        with self._lock:
            return self._in_flight

    # -- decisions (called by the handler threads) -------------------------------------------------------------

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._stats.requests += 1
            self._log.append(entry)

    def _count_response(self, status: int) -> None:
        with self._lock:
            self._stats.responses[status] = self._stats.responses.get(status, 0) + 1

    def _count_success(self, digest: str | None) -> None:
        with self._lock:
            key = digest or "unknown"
            self._stats.successes_by_image[key] = self._stats.successes_by_image.get(key, 0) + 1

    def _count_fault(self, kind: str) -> None:
        with self._lock:
            self._stats.faults[kind] = self._stats.faults.get(kind, 0) + 1

    def _authorized(self, authorization: str | None) -> bool:
        if self.valid_keys is None:
            return True
        if not authorization or not authorization.lower().startswith("bearer "):
            return False
        return authorization[7:].strip() in self.valid_keys

    def _throttle(self) -> float | None:
        """Seconds until a slot frees when over the RPM limit, else ``None`` (and the request takes a slot)."""
        if self.rpm is None:
            return None
        now = time.monotonic()
        with self._lock:
            while self._window and now - self._window[0] >= _WINDOW:
                self._window.popleft()
            if len(self._window) >= self.rpm:
                self._stats.throttled += 1
                return max(0.0, self._window[0] + _WINDOW - now)
            if self.per_second:
                while self._second and now - self._second[0] >= 1.0:
                    self._second.popleft()
                if len(self._second) >= max(1, self.rpm // 60):
                    self._stats.throttled += 1
                    return max(0.0, self._second[0] + 1.0 - now)
                self._second.append(now)
            self._window.append(now)
        return None

    def _fault(self, stream: bool, digest: str | None = None) -> str | None:
        with self._lock:
            mine = self._queued_for.get(digest) if digest is not None else None
            if mine or self._queued:
                kind = mine.popleft() if mine else self._queued.popleft()
                if not stream and kind == "stream_error":
                    kind = "500"
                elif not stream and kind == "stream_cut":
                    kind = "drop"
                return kind
            applicable = [k for k in self._fault_kinds if stream or k not in _STREAM_ONLY]
            if not applicable:
                return None
            draw = self._rng.random()
            if self._fault_weights is not None:
                for kind in applicable:
                    draw -= self._fault_weights[kind]
                    if draw < 0:
                        return kind
                return None
            if draw >= self.fault_rate:
                return None
            return self._rng.choice(applicable)

    def _coin(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5

    def _reply_body(self, task: Task | None, image_url: str | None) -> dict[str, Any]:
        """The native reply for this task: a recorded one, or the local engine's reading."""
        try:
            if self.reader == "local":
                return result_to_native(self._read_locally(task, image_url))
            if self.reader == "digest":
                text = f"image {(image_digest(image_url) or 'none')[:16]}"
                return result_to_native(OCRResult(text=text, raw_text=text))
            return load_recording(RECORDINGS[task])
        except QwenOCRError as exc:  # answered as the service would: its status and code
            raise _Refusal(exc.status_code or 400, exc.code, exc.message) from None

    def _read_locally(self, task: Task | None, image_url: str | None) -> OCRResult:
        data = decode_data_url(image_url) if image_url else None
        if data is None:
            raise _Refusal(
                400,
                "InvalidParameter",
                "The emulator's local reader reads only images sent inline as data: URLs.",
            )
        with self._engine_lock:
            if self._engine is None:
                try:
                    module = importlib.import_module("qwen_ocr.local")
                    self._engine = module.get_engine()
                except ImportError as exc:
                    raise _Refusal(
                        500,
                        "InternalError",
                        f"reader='local' needs the local engine (pip install 'qwen-ocr[local]'): {exc}",
                    ) from None
            result = self._engine.ocr(data, task=task)
        if not isinstance(result, OCRResult):
            raise _Refusal(500, "InternalError", "The local engine returned no OCRResult.")
        return result


def _check_kind(kind: str) -> None:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault {kind!r}; use any of {', '.join(FAULT_KINDS)}")


class _ClientGone(Exception):
    """The client closed the connection while the emulator was still working on its request."""


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    server_version = "istio-envoy"
    sys_version = ""
    disable_nagle_algorithm = True
    """TCP_NODELAY: a reply (and each stream frame) leaves at once. With Nagle's algorithm on, a write that follows
    another before its ACK waits for the client's delayed ACK, about 40 ms per reply on loopback (issue 17)."""
    wbufsize = 64 * 1024
    """A buffered writer: a reply's headers and body go out in one write when it is flushed (unbuffered, the headers
    went alone and the body followed as a second small segment)."""

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the emulator keeps its own request log."""

    # -- routing -----------------------------------------------------------------------------------------------

    def do_GET(self) -> None:
        emulator = self.server.emulator
        path = self.path.split("?", 1)[0].rstrip("/")
        if BatchService.serves(path):
            self._batch_api("GET")
            return
        emulator._record(self._entry(None, "dashscope", False, None))
        if path in ("", "/health"):
            self._send_json(200, {"status": "ok", "native": NATIVE_PATH, "compatible": list(COMPAT_PATHS)}, {})
            return
        if path == "/stats":  # for a client in another process (benchmarks): the counters as JSON
            stats = emulator.stats
            self._send_json(
                200,
                {
                    "requests": stats.requests,
                    "responses": {str(k): v for k, v in stats.responses.items()},
                    "successes": stats.successes,
                    "successes_by_image": stats.successes_by_image,
                    "faults": stats.faults,
                    "throttled": stats.throttled,
                    "unauthorized": stats.unauthorized,
                    "abandoned": stats.abandoned,
                    "in_flight": emulator.in_flight,
                    "batches": dataclasses.asdict(emulator.batches.stats),
                },
                {},
            )
            return
        self._send_json(404, native_error_body(404, code="NotFound", message=f"No route for GET {path}."), {})

    def do_DELETE(self) -> None:
        self._batch_api("DELETE")

    def _batch_api(self, method: str) -> None:
        """A request of the Batch File API (files and batches), answered by ``emulator.batches``."""
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        entry = self._entry(None, "openai", False, None)
        emulator._record(entry)
        path = self.path.split("?", 1)[0].rstrip("/")
        if not BatchService.serves(path):
            self._send_error("openai", 404, new_request_id(), code="NotFound", message=f"No route for {method} {path}.")
            return
        if not emulator._authorized(self.headers.get("Authorization")):
            with emulator._lock:
                emulator._stats.unauthorized += 1
            self._send_error("openai", 401, new_request_id())
            return
        status, body = emulator.batches.handle(method, self.path, dict(self.headers.items()), raw)
        if isinstance(body, bytes):
            self._send_bytes(status, body, {"Content-Type": "application/jsonl"})
        else:
            self._send_json(status, body, {})

    def do_POST(self) -> None:
        emulator = self.server.emulator
        path = self.path.split("?", 1)[0].rstrip("/")
        if BatchService.serves(path):
            self._batch_api("POST")
            return
        with emulator._lock:
            emulator._in_flight += 1
        try:
            self._post()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except _ClientGone:
            self.close_connection = True
            with emulator._lock:
                emulator._stats.abandoned += 1
        except Exception as exc:  # a bug of the emulator: answer it rather than drop the connection
            self.close_connection = True
            body = native_error_body(500, code="InternalError", message=f"emulator error: {exc!r}")
            try:
                self._send_json(500, body, {})
            except OSError:
                pass
        finally:
            with emulator._lock:
                emulator._in_flight -= 1

    def _post(self) -> None:
        emulator = self.server.emulator
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = self.path.split("?", 1)[0].rstrip("/")
        protocol: WireProtocol = "openai" if path in COMPAT_PATHS else "dashscope"
        headers = {k: v for k, v in self.headers.items()}
        stream = wants_stream(protocol, headers, body)
        task = task_of(protocol, body)
        rid = new_request_id()
        entry = self._entry(body, protocol, stream, task)
        entry.request_id = rid
        emulator._record(entry)

        if path != NATIVE_PATH and path not in COMPAT_PATHS:
            self._send_error(protocol, 404, rid, code="NotFound", message=f"No route for POST {path}.")
            return
        if not emulator._authorized(self.headers.get("Authorization")):
            with emulator._lock:
                emulator._stats.unauthorized += 1
            if protocol == "dashscope":
                recorded = load_recording("cnblogs/auth-error-nosse.response.body.txt")
                recorded["request_id"] = rid
                self._send_json(401, recorded, {"x-request-id": rid})
            else:
                self._send_error(protocol, 401, rid)
            return
        wait = emulator._throttle()
        if wait is not None:
            retry_after = str(max(1, math.ceil(wait)))
            self._send_error(protocol, 429, rid, extra={"Retry-After": retry_after})
            return
        try:
            self._answer(protocol, body, stream, task, rid, entry)
        except _Refusal as refusal:  # a bad request, or one the local reader cannot read
            self._send_error(protocol, refusal.status, rid, code=refusal.code, message=refusal.message)

    def _answer(
        self, protocol: WireProtocol, body: Any, stream: bool, task: Task | None, rid: str, entry: LoggedRequest
    ) -> None:
        emulator = self.server.emulator
        image_url = self._validate(protocol, body)
        digest = image_digest(image_url)
        with emulator._lock:
            entry.image = digest
        fault = emulator._fault(stream, digest)
        if fault is not None:
            emulator._count_fault(fault)
        if fault == "timeout":
            self._wait(emulator.stall)  # no answer: the client's timeout fires first (or the stall ends)
            self._drop()
            return
        if not stream and emulator.latency:
            self._wait(emulator.latency)
        if fault in ("429", "500", "503"):
            self._send_error(protocol, int(fault), rid)
            return
        if fault == "429_retry_after":
            self._send_error(protocol, 429, rid, extra={"Retry-After": str(emulator.fault_retry_after)})
            return
        if fault == "insufficient_quota":
            throttled_code, throttled_message = _TOKEN_THROTTLING[protocol]
            self._send_error(protocol, 429, rid, code=throttled_code, message=throttled_message)
            return
        if fault in _PERMANENT_REPLIES:
            status, code, message = _PERMANENT_REPLIES[fault]
            self._send_error(protocol, status, rid, code=code, message=message)
            return
        if fault == "drop":
            self._drop()
            return
        if fault == "garbled":
            garbled = b'{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":[{"te'
            self._send_bytes(200, garbled, {"Content-Type": "application/json", "x-request-id": rid})
            return

        native = emulator._reply_body(task, image_url)
        native["request_id"] = rid
        model = body.get("model") if isinstance(body, Mapping) else None
        model = model if isinstance(model, str) else "qwen-vl-ocr"

        if not stream:
            reply = native if protocol == "dashscope" else native_to_compatible(native, model=model, request_id=rid)
            emulator._count_success(digest)  # counted before sending, so that a client never sees it late
            self._send_json(200, reply, {"x-request-id": rid, "x-dashscope-finished": "true"})
            return

        if protocol == "dashscope":
            params = body.get("parameters") if isinstance(body, Mapping) else None
            incremental = isinstance(params, Mapping) and params.get("incremental_output") is True
            frames = native_sse_frames(
                native, chunk_chars=emulator.chunk_chars, request_id=rid, incremental=incremental
            )
        else:
            frames = compatible_stream_for(native, body, model=model, request_id=rid, chunk_chars=emulator.chunk_chars)
        if fault in ("stream_error", "stream_cut"):
            keep = max(1, len(frames) // 2)
            frames = frames[:keep]
            if fault == "stream_error":
                frames.append(self._error_frame(protocol, keep + 1, rid))
        self._send_stream(
            frames, rid, emulator.latency, on_complete=None if fault else lambda: emulator._count_success(digest)
        )

    # -- request checks ----------------------------------------------------------------------------------------

    @staticmethod
    def _validate(protocol: WireProtocol, body: Any) -> str | None:
        """The image URL of a well-formed request; a refusal with the service's code otherwise."""
        if not isinstance(body, Mapping):
            raise _Refusal(400, "InvalidParameter", "The request body is not a JSON object.")
        if not isinstance(body.get("model"), str) or not body.get("model"):
            raise _Refusal(400, "BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
        if protocol == "dashscope":
            if not isinstance(body.get("input"), Mapping):
                raise _Refusal(400, "BadRequest.EmptyInput", "Required input parameter missing from request.")
            if not isinstance(body.get("parameters"), Mapping):
                raise _Refusal(
                    400, "BadRequest.EmptyParameters", 'Required parameter "parameters" missing from request.'
                )
        elif not isinstance(body.get("messages"), list) or not body["messages"]:
            raise _Refusal(400, "InvalidParameter", "messages must be a non-empty list.")
        image_url = image_url_of(protocol, body)
        if image_url is None:
            raise _Refusal(400, "InvalidParameter", "The user message has no image.")
        return image_url

    # -- writing -----------------------------------------------------------------------------------------------

    def _entry(self, body: Any, protocol: WireProtocol, stream: bool, task: Task | None) -> LoggedRequest:
        headers = {k: ("<redacted>" if k.lower() == "authorization" else v) for k, v in self.headers.items()}
        return LoggedRequest(
            method=self.command,
            path=self.path,
            headers=headers,
            json=body,
            protocol=protocol,
            stream=stream,
            task=task,
            time=time.time(),
        )

    def _send_error(
        self,
        protocol: WireProtocol,
        status: int,
        rid: str,
        *,
        code: str | None = None,
        message: str | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if protocol == "dashscope":
            body = native_error_body(status, code=code, message=message, request_id=rid)
        else:
            body = compatible_error_body(status, code=code, message=message, request_id=rid)
        self._send_json(status, body, {"x-request-id": rid, **(extra or {})})

    def _send_json(self, status: int, body: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        self._send_bytes(status, dumps(body).encode("utf-8"), {"Content-Type": "application/json", **headers})

    def _send_bytes(self, status: int, content: bytes, headers: Mapping[str, str]) -> None:
        self.server.emulator._count_response(status)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("x-dashscope-call-gateway", "true")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()  # into the write buffer (wbufsize): headers and body leave in one write at the flush
        self.wfile.write(content)
        self.wfile.flush()

    def _drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        self.wfile.flush()

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds`` (the emulator's stop ends it early); raise :class:`_ClientGone` as soon as the client
        closes its connection, as a server notices a cancelled request."""
        stopping = self.server.emulator._stopping
        deadline = time.monotonic() + seconds
        connection = self.connection
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or stopping.is_set():
                return
            try:
                readable, _, _ = select.select([connection], [], [], min(remaining, 0.05))
            except (OSError, ValueError):
                raise _ClientGone() from None
            if not readable:
                continue
            try:
                peeked = connection.recv(1, socket.MSG_PEEK)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                raise _ClientGone() from None
            if not peeked:
                raise _ClientGone()
            stopping.wait(remaining)  # the client sent more (pipelining): just wait out the time
            return

    def _error_frame(self, protocol: WireProtocol, index: int, rid: str) -> bytes:
        body = native_error_body(500, request_id=rid)
        if protocol == "dashscope":
            return native_frame(index, body, event="error", status=500)
        if self.server.emulator._coin():
            # Shape A: an OpenAI-style error object in a data frame.
            nested = {
                "error": {"code": body["code"], "param": None, "message": body["message"], "type": "internal_error"},
                "id": f"chatcmpl-{rid}",
                "request_id": rid,
            }
            return compatible_frame(nested)
        # Shape B: an "event: error" frame with the flat body.
        return compatible_frame(body, event="error")

    def _send_stream(
        self, frames: Sequence[bytes], rid: str, latency: float, on_complete: Callable[[], None] | None = None
    ) -> bool:
        """Send SSE frames with chunked transfer encoding; ``False`` if the client went away.

        ``on_complete`` runs after the last frame and before the end of the body, so that a client that has read
        the whole stream always sees its effect."""
        self.server.emulator._count_response(200)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
        self.send_header("x-request-id", rid)
        self.send_header("x-dashscope-call-gateway", "true")
        self.send_header("x-dashscope-finished", "false")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()  # the headers at once, as before the write buffer: the frames follow with the latency
        pause = latency / len(frames) if frames and latency else 0.0
        try:
            for frame in frames:
                if pause:
                    time.sleep(pause)
                self.wfile.write(b"%x\r\n%s\r\n" % (len(frame), frame))
                self.wfile.flush()
            if on_complete is not None:
                on_complete()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            return False
        return True


# ----------------------------------------------------------------------------------------------------------------
# Command line


def _parse_args(argv: Iterable[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m qwen_ocr.testing.emulator",
        description="Serve a loopback emulator of Qwen-OCR (native and OpenAI-compatible endpoints).",
    )
    parser.add_argument("--port", type=int, default=8000, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to each request")
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute before HTTP 429")
    parser.add_argument("--per-second", action="store_true", help="also enforce rpm/60 requests per second")
    parser.add_argument("--fault-rate", type=float, default=0.0, help="probability of a fault per request")
    parser.add_argument(
        "--faults",
        default=",".join(TRANSIENT_FAULTS),
        help=f"comma-separated fault kinds drawn at --fault-rate (default: the transient ones, "
        f"{','.join(TRANSIENT_FAULTS)}; also {','.join(PERMANENT_FAULTS)})",
    )
    parser.add_argument("--stall", type=float, default=30.0, help="seconds a 'timeout' fault holds a request")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault RNG")
    parser.add_argument(
        "--api-key", action="append", dest="api_keys", help="accepted API key (repeatable; default: accept any)"
    )
    parser.add_argument(
        "--reader", choices=("recorded", "digest", "local"), default="recorded", help="where readings come from"
    )
    parser.add_argument("--chunk-chars", type=int, default=8, help="characters of text per stream frame")
    parser.add_argument(
        "--batch-in-progress", type=float, default=0.1, help="seconds a batch's lines take in all (Batch API)"
    )
    parser.add_argument(
        "--batch-fail-share", type=float, default=0.0, help="share of batch lines that fail their first try"
    )
    return parser.parse_args(list(argv) if argv is not None else None)


def main(argv: Iterable[str] | None = None) -> int:
    """Run the emulator until interrupted (Ctrl-C or SIGTERM). Prints its base URL on the first line of stdout."""
    args = _parse_args(argv)
    faults = [kind.strip() for kind in args.faults.split(",") if kind.strip()]
    try:
        emulator = Emulator(
            port=args.port,
            latency=args.latency,
            rpm=args.rpm,
            per_second=args.per_second,
            faults=faults,
            fault_rate=args.fault_rate,
            seed=args.seed,
            valid_keys=args.api_keys,
            reader=args.reader,
            chunk_chars=args.chunk_chars,
            stall=args.stall,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    emulator.batches.configure(in_progress=args.batch_in_progress, fail_share=args.batch_fail_share)
    with emulator:
        print(emulator.base_url, flush=True)
        print(
            f"qwen-ocr emulator on {emulator.base_url}: native {NATIVE_PATH}, compatible {COMPAT_PATHS[0]} "
            f"(and {COMPAT_PATHS[1]}). Ctrl-C to stop.",
            file=sys.stderr,
            flush=True,
        )
        try:
            while not stop.wait(0.2):
                pass
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

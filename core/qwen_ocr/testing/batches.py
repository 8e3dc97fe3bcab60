"""The emulator's Batch File API: ``/compatible-mode/v1/files`` and ``/compatible-mode/v1/batches``, as DashScope
serves them (see the protocol notes: recorded exchanges of the live service, and the vendor's Batch page).

Served by :class:`~qwen_ocr.testing.Emulator` beside the real-time endpoints; reach it as ``emulator.batches``.

- ``POST /files`` (multipart ``file`` + ``purpose=batch``) stores the file (``file-batch-...``); ``GET /files``
  lists them (``after`` / ``limit``); ``GET /files/{id}`` describes one; ``GET /files/{id}/content`` downloads only
  output and error files (``file-batch_output-...``), as the service does; ``DELETE /files/{id}`` removes one.
- ``POST /batches`` reads the input file at once: a model the Batch API does not serve is refused with the
  service's HTTP 404 text; every other problem (a line that is not JSON, a duplicate ``custom_id``, a line whose url
  is not the endpoint, ``mismatched_model``, too many lines) fails the batch after ``validating`` seconds, HTTP 200
  with ``status: "failed"`` and ``errors.data[{code, message, param, line}]``.
- Statuses advance with time: ``validating`` -> ``in_progress`` (``request_counts.completed`` grows) ->
  ``finalizing`` -> ``completed``; ``POST /batches/{id}/cancel`` answers ``cancelling`` (``cancelling_at`` still
  null, as recorded) and the batch is ``cancelled`` ``cancelling`` seconds later; a batch not finished
  ``expire_after`` seconds after its creation is ``expired``. Unfinished requests of a cancelled or expired batch
  are listed in its error file (``batch_cancelled`` / ``batch_expired``), counted as failed.
- Every line is answered as the real-time emulator answers the same chat body (the recording of its task, or the
  local reader), so a batch's texts compare with a real-time read. The output file lists the finished lines in a
  shuffled order (never the input order). ``fail_share`` of the lines (chosen by a hash of their ``custom_id``)
  fail their first ``fail_tries`` attempts with a retryable error (``server_error`` with a 500 response, or
  ``request_timeout`` with no response); ``permanent_share`` of them, and every line whose image cannot be decoded,
  fail for good (``invalid_parameter_error``, HTTP 400). Only successful lines are billed.
- ``batch-test-model`` with url and endpoint ``/v1/chat/ds-test`` is the vendor's free test: every line answers
  "This is a test result." (at most 100 lines and 1 MB).

Counters (:attr:`BatchService.stats`): uploads, batches created, cancels, files deleted, lines billed and attempted
per ``custom_id``, and the real-time chat requests the emulator received (a batch job must send none).

Example::

    with Emulator() as emu:
        emu.batches.configure(in_progress=0.2, fail_share=0.2)
        ...                                  # client.batch.submit(...), job.wait(poll_interval=0.05)
        emu.batches.stats.billed             # {'p0': 1, 'p1': 1, ...}
"""

from __future__ import annotations

import collections
import hashlib
import json
import random
import threading
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from ._wire import COMPAT_PATHS, NATIVE_PATH, decode_data_url, fake_compatible_response, native_to_compatible, task_of

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = [
    "BATCH_MODELS",
    "TEST_ENDPOINT",
    "TEST_MODEL",
    "TEST_REPLY",
    "BatchService",
    "BatchStats",
]

PREFIX = "/compatible-mode/v1"
CHAT_ENDPOINT = "/v1/chat/completions"
TEST_ENDPOINT = "/v1/chat/ds-test"
"""The free test harness's url and endpoint."""
TEST_MODEL = "batch-test-model"
TEST_REPLY = "This is a test result."
BATCH_MODELS: frozenset[str] = frozenset(
    {"qwen-vl-ocr", "qwen-vl-ocr-latest", "qwen-vl-ocr-2025-11-20", "qwen-vl-ocr-2025-08-28", TEST_MODEL}
)
"""The models the emulated Batch API serves (the Beijing region's OCR models and the test model)."""

THROTTLED = "Batch requests are being throttled due to system capacity limits"
"""The service's 429 text for these endpoints."""
_MAX_LINES = 50_000
_MAX_FILE_BYTES = 500 * 1024 * 1024
_MAX_LINE_BYTES = 6 * 1024 * 1024
_TEST_MAX_LINES = 100
_TEST_MAX_BYTES = 1024 * 1024
_SETTINGS = (
    "validating",
    "in_progress",
    "finalizing",
    "cancelling",
    "expire_after",
    "stall_after",
    "fail_share",
    "fail_tries",
    "permanent_share",
    "models",
    "seed",
)
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


@dataclass
class BatchStats:
    """Counters of the emulated Batch API (a snapshot: :attr:`BatchService.stats` returns a fresh copy).

    Attributes:
        uploads: files uploaded.
        batches_created: batches created (refused creations not counted).
        cancels: cancel calls received.
        files_deleted: files deleted.
        billed: successful lines per ``custom_id``, over every batch: what the account is charged for.
        attempts: lines run per ``custom_id`` (successes and failures).
        chat_requests: real-time chat requests (native or compatible) the emulator received.
    """

    uploads: int = 0
    batches_created: int = 0
    cancels: int = 0
    files_deleted: int = 0
    billed: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    chat_requests: int = 0

    @property
    def lines_billed(self) -> int:
        """Successful lines in all."""
        return sum(self.billed.values())


@dataclass
class _File:
    id: str
    filename: str
    purpose: str
    content: bytes
    created_at: int

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.content),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "created_at": self.created_at,
        }


@dataclass
class _Line:
    number: int  # 1-based line of the input file
    custom_id: str
    body: dict[str, Any]


@dataclass
class _Batch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    metadata: dict[str, Any] | None
    created: float
    lines: list[_Line]
    errors: list[dict[str, Any]]
    order: list[int]  # the order lines are run in (a shuffle)
    status: str = "validating"
    cancel_at: float | None = None
    done_at_cancel: int = 0
    times: dict[str, int | None] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    completed: int = 0
    failed: int = 0


class BatchService:
    """The Files and Batches endpoints of an :class:`~qwen_ocr.testing.Emulator` (``emulator.batches``).

    Settings (attributes; change them at any time with :meth:`configure`, which refuses a misspelt name); durations
    are seconds:

        validating: seconds a batch stays ``validating``.
        in_progress: seconds its lines take in all (they finish evenly over this time).
        finalizing: seconds in ``finalizing`` before ``completed``.
        cancelling: seconds from a cancel call to ``cancelled``.
        expire_after: seconds after its creation at which an unfinished batch expires (``None``: never).
        stall_after: the batch stops making progress after this many lines (``None``: it does not), so that a test
            can cancel it mid-way for sure.
        fail_share: the share of lines (by a hash of the ``custom_id``) that fail their first ``fail_tries``
            attempts with a retryable error.
        fail_tries: how many attempts of such a line fail.
        permanent_share: the share of lines that fail for good (a bad image).
        models: the models served; a batch of another model is refused with the service's 404.
        seed: the seed of the shuffles.

    Example::

        emu.batches.configure(in_progress=0.2, fail_share=0.2, stall_after=None)
        emu.batches.refuse_next("duplicate_custom_id", line=3)     # the next batch fails validation
        emu.batches.inject(429)                                     # the next call is throttled
    """

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._lock = threading.Lock()
        self.validating = 0.02
        self.in_progress = 0.1
        self.finalizing = 0.02
        self.cancelling = 0.02
        self.expire_after: float | None = None
        self.stall_after: int | None = None
        self.fail_share = 0.0
        self.fail_tries = 1
        self.permanent_share = 0.0
        self.models: Collection[str] = BATCH_MODELS
        self.seed = 0
        self._files: dict[str, _File] = {}
        self._batches: dict[str, _Batch] = {}
        self._stats = BatchStats()
        self._queued: collections.deque[int] = collections.deque()
        self._refusals: collections.deque[dict[str, Any]] = collections.deque()

    def inject(self, *statuses: int) -> None:
        """Answer the next requests of these endpoints with these HTTP statuses, one each: ``429`` (the service's
        "Batch requests are being throttled due to system capacity limits") or ``500``."""
        with self._lock:
            self._queued.extend(statuses)

    def refuse_next(self, code: str = "invalid_request", *, line: int = 1, message: str | None = None) -> None:
        """Fail the next batch created at validation with this problem on ``line`` (as the service refuses a file it
        finds wrong: HTTP 200, ``status: "failed"``, ``errors.data``), whatever its lines hold."""
        with self._lock:
            self._refusals.append(_problem(code, message or f"The service refused line {line}.", None, line))

    def configure(self, **settings: Any) -> None:
        """Change settings (the names of the class's arguments); an unknown name raises ``ValueError``."""
        for name in settings:
            if name not in _SETTINGS:
                raise ValueError(f"unknown batch setting {name!r}; use any of {', '.join(_SETTINGS)}")
        for name, value in settings.items():
            setattr(self, name, value)

    @property
    def stats(self) -> BatchStats:
        """A snapshot of the counters."""
        log = self._emulator.request_log
        with self._lock:
            snapshot = BatchStats(
                uploads=self._stats.uploads,
                batches_created=self._stats.batches_created,
                cancels=self._stats.cancels,
                files_deleted=self._stats.files_deleted,
                billed=dict(self._stats.billed),
                attempts=dict(self._stats.attempts),
            )
        snapshot.chat_requests = sum(
            1
            for entry in log
            if entry.method == "POST" and entry.path.split("?", 1)[0].rstrip("/") in (NATIVE_PATH, *COMPAT_PATHS)
        )
        return snapshot

    def batch(self, batch_id: str) -> dict[str, Any]:
        """The batch object as ``GET /batches/{id}`` would answer now."""
        with self._lock:
            return self._describe(self._advance(self._batches[batch_id]))

    # -- routing (called by the emulator's handler threads) ---------------------------------------------------------

    @staticmethod
    def serves(path: str) -> bool:
        """Whether ``path`` (without its query) is one of these endpoints."""
        return path.startswith((PREFIX + "/files", PREFIX + "/batches"))

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | bytes]:
        """The status and JSON body (or raw bytes, for a file's content) of one request."""
        path, _, query_text = target.partition("?")
        path = path.rstrip("/")[len(PREFIX) :]
        query = {k: v[-1] for k, v in parse_qs(query_text).items()}
        parts = [p for p in path.split("/") if p]
        try:
            with self._lock:
                if self._queued:
                    status = self._queued.popleft()
                    message = THROTTLED if status == 429 else "Internal server error."
                    raise _Error(status, message, "Throttling" if status == 429 else "InternalError")
                return self._route(method, parts, query, headers, body)
        except _Error as exc:
            return exc.status, _error_body(exc.status, exc.message, exc.code, exc.param)

    def _route(
        self, method: str, parts: list[str], query: Mapping[str, str], headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, Any] | bytes]:
        if parts[0] == "files":
            if method == "POST" and len(parts) == 1:
                return 200, self._upload(headers, body)
            if method == "GET" and len(parts) == 1:
                return 200, self._list([f.describe() for f in self._files.values()], query)
            if len(parts) >= 2:
                file = self._files.get(parts[1])
                if file is None:
                    raise _Error(404, f"File {parts[1]} not found.", "not_found")
                if method == "DELETE" and len(parts) == 2:
                    del self._files[file.id]
                    self._stats.files_deleted += 1
                    return 200, {"id": file.id, "object": "file", "deleted": True}
                if method == "GET" and len(parts) == 2:
                    return 200, file.describe()
                if method == "GET" and len(parts) == 3 and parts[2] == "content":
                    if not file.id.startswith("file-batch_output-"):
                        raise _Error(400, "Only the output and error files of a batch can be downloaded.")
                    return 200, file.content
        elif parts[0] == "batches":
            if method == "POST" and len(parts) == 1:
                return 200, self._create(body)
            if method == "GET" and len(parts) == 1:
                for each in self._batches.values():
                    self._advance(each)
                listed = [
                    self._describe(b) for b in sorted(self._batches.values(), key=lambda b: b.created, reverse=True)
                ]
                if "ds_name" in query:
                    listed = [b for b in listed if query["ds_name"] in str((b["metadata"] or {}).get("ds_name", ""))]
                if "status" in query:
                    listed = [b for b in listed if b["status"] in query["status"].split(",")]
                return 200, self._list(listed, query)
            found = self._batches.get(parts[1]) if len(parts) >= 2 else None
            if found is None:
                raise _Error(404, f"Batch {parts[1] if len(parts) > 1 else ''} not found.", "not_found")
            if method == "GET" and len(parts) == 2:
                return 200, self._describe(self._advance(found))
            if method == "POST" and len(parts) == 3 and parts[2] == "cancel":
                return 200, self._cancel(found)
        raise _Error(404, f"No route for {method} {PREFIX}/{'/'.join(parts)}.", "not_found")

    # -- files ----------------------------------------------------------------------------------------------------

    def _upload(self, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        fields = _multipart(headers, body)
        purpose = fields.get("purpose", ("", b""))[1].decode("utf-8", "replace").strip()
        if purpose != "batch":
            raise _Error(400, "'purpose' must be 'batch'", "invalid_request_error", "purpose")
        if "file" not in fields:
            raise _Error(400, "The request has no 'file' part.", "invalid_request_error", "file")
        filename, content = fields["file"]
        if len(content) > _MAX_FILE_BYTES:
            raise _Error(400, "The file is larger than 500 MB.", "BadRequest.TooLarge")
        file = _File(f"file-batch-{uuid.uuid4().hex[:24]}", filename or "upload.jsonl", purpose, content, _now())
        self._files[file.id] = file
        self._stats.uploads += 1
        return file.describe()

    def _output_file(self, lines: list[dict[str, Any]]) -> str:
        content = b"".join(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n" for line in lines)
        file = _File(f"file-batch_output-{uuid.uuid4().hex[:24]}", "output.jsonl", "batch_output", content, _now())
        self._files[file.id] = file
        return file.id

    @staticmethod
    def _list(items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
        after = query.get("after")
        if after:
            ids = [item["id"] for item in items]
            items = items[ids.index(after) + 1 :] if after in ids else []
        limit = int(query.get("limit") or 20)
        page = items[:limit]
        return {
            "object": "list",
            "data": page or None,  # the service's empty list
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }

    # -- batches --------------------------------------------------------------------------------------------------

    def _create(self, raw: bytes) -> dict[str, Any]:
        try:
            request = json.loads(raw)
        except ValueError:
            raise _Error(400, "The request body is not JSON.") from None
        if not isinstance(request, Mapping):
            raise _Error(400, "The request body is not a JSON object.")
        endpoint = request.get("endpoint")
        if endpoint not in (CHAT_ENDPOINT, TEST_ENDPOINT):
            raise _Error(400, f"The endpoint {endpoint!r} is not supported by the Batch API.", param="endpoint")
        window = request.get("completion_window")
        if not _window_ok(window):
            raise _Error(400, "completion_window must be 24h to 336h (or 1d to 14d).", param="completion_window")
        file = self._files.get(str(request.get("input_file_id")))
        if file is None:
            raise _Error(404, f"File {request.get('input_file_id')} not found.", "not_found")
        metadata = request.get("metadata")
        lines, errors = _read_lines(file.content, str(endpoint))
        if self._refusals:
            errors.append(self._refusals.popleft())
        for line in lines:
            model = line.body.get("model")
            if isinstance(model, str) and model not in self.models:
                raise _Error(404, f"The provided model {model} is not supported by the Batch API.", "model_not_found")
        created = time.time()
        batch_id = f"batch_{uuid.uuid4()}"
        order = list(range(len(lines)))
        random.Random(f"{self.seed}:{batch_id}").shuffle(order)  # noqa: S311 - a test shuffle
        batch = _Batch(
            id=batch_id,
            input_file_id=file.id,
            endpoint=str(endpoint),
            completion_window=str(window),
            metadata=dict(metadata) if isinstance(metadata, Mapping) else None,
            created=created,
            lines=lines,
            errors=errors,
            order=order,
            times={"created_at": int(created)},
        )
        self._batches[batch.id] = batch
        self._stats.batches_created += 1
        return self._describe(batch)

    def _cancel(self, batch: _Batch) -> dict[str, Any]:
        self._stats.cancels += 1
        self._advance(batch)
        if batch.status in ("validating", "in_progress", "finalizing"):
            batch.done_at_cancel = self._done(batch, time.time())
            batch.cancel_at = time.time()
            batch.status = "cancelling"
        return self._describe(batch)

    def _done(self, batch: _Batch, now: float) -> int:
        """Lines finished by ``now`` (they finish evenly over ``in_progress`` seconds)."""
        start = batch.created + self.validating
        if now <= start:
            return 0
        share = 1.0 if self.in_progress <= 0 else min(1.0, (now - start) / self.in_progress)
        done = int(len(batch.lines) * share)
        return done if self.stall_after is None else min(done, self.stall_after)

    def _advance(self, batch: _Batch) -> _Batch:
        """Bring the batch's status up to now."""
        if batch.status in _TERMINAL:
            return batch
        now = time.time()
        if batch.status == "cancelling":
            assert batch.cancel_at is not None
            if now >= batch.cancel_at + self.cancelling:
                batch.times["cancelling_at"] = int(batch.cancel_at)
                self._finish(batch, batch.done_at_cancel, "cancelled", "batch_cancelled")
            return batch
        start = batch.created + self.validating
        if now < start:
            return batch
        if batch.errors:
            batch.status = "failed"
            batch.times["failed_at"] = int(now)
            return batch
        batch.times.setdefault("in_progress_at", int(start))
        if self.expire_after is not None and now >= batch.created + self.expire_after:
            self._finish(batch, self._done(batch, batch.created + self.expire_after), "expired", "batch_expired")
            return batch
        done = self._done(batch, now)
        stalled = self.stall_after is not None and self.stall_after < len(batch.lines)
        if done < len(batch.lines) or stalled:
            batch.status = "in_progress"
            batch.completed = done
            return batch
        end = start + self.in_progress
        batch.status = "finalizing"
        batch.times.setdefault("finalizing_at", int(end))
        if now >= end + self.finalizing:
            self._finish(batch, len(batch.lines), "completed", None)
        return batch

    def _finish(self, batch: _Batch, done: int, status: str, unfinished_code: str | None) -> None:
        """Run the first ``done`` lines (in the batch's order), write the output and error files."""
        outputs: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for position, index in enumerate(batch.order):
            line = batch.lines[index]
            if position >= done:
                assert unfinished_code is not None
                errors.append(_unfinished_line(line, unfinished_code))
                continue
            reply = self._run(batch, line)
            (outputs if reply.get("error") is None and reply["response"]["status_code"] == 200 else errors).append(
                reply
            )
        batch.completed = len(outputs)
        batch.failed = len(errors)
        batch.output_file_id = self._output_file(outputs) if outputs else None
        batch.error_file_id = self._output_file(errors) if errors else None
        batch.status = status
        batch.times[f"{status}_at"] = int(time.time())

    def _run(self, batch: _Batch, line: _Line) -> dict[str, Any]:
        """One line's answer: as the real-time emulator answers the same body, or a failure."""
        cid = line.custom_id
        attempt = self._stats.attempts.get(cid, 0) + 1
        self._stats.attempts[cid] = attempt
        rid = str(uuid.uuid4())
        draw = _share(cid)
        model = str(line.body.get("model") or "qwen-vl-ocr")
        if draw < self.permanent_share or not _image_ok(line.body):
            body = _error_body(400, "The image cannot be decoded: it is not a supported image.", "invalid_parameter")
            return _reply(line, rid, 400, body)
        if draw < self.permanent_share + self.fail_share and attempt <= self.fail_tries:
            if int(hashlib.sha256(cid.encode()).hexdigest()[:2], 16) % 2:
                return _reply(line, rid, 500, _error_body(500, "Internal server error.", "server_error"))
            return {
                "id": rid,
                "custom_id": cid,
                "response": None,
                "error": {"code": "request_timeout", "message": "The request timed out."},
            }
        if batch.endpoint == TEST_ENDPOINT:
            answer = fake_compatible_response(TEST_REPLY, request_id=rid, model=model)
        else:
            task = task_of("openai", line.body)
            image_url = _image_url(line.body)
            try:
                native = self._emulator._reply_body(task, image_url)
            except Exception as exc:  # the local reader refused the image: the service's 400
                return _reply(line, rid, 400, _error_body(400, str(exc), "invalid_parameter"))
            answer = native_to_compatible(native, model=model, request_id=rid)
        self._stats.billed[cid] = self._stats.billed.get(cid, 0) + 1
        return _reply(line, rid, 200, answer)

    def _describe(self, batch: _Batch) -> dict[str, Any]:
        times = batch.times
        total = len(batch.lines) if not batch.errors else 0
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "errors": {"object": "list", "data": batch.errors} if batch.errors and batch.status == "failed" else None,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "created_at": times.get("created_at"),
            "in_progress_at": times.get("in_progress_at"),
            "expires_at": None,
            "finalizing_at": times.get("finalizing_at"),
            "completed_at": times.get("completed_at"),
            "failed_at": times.get("failed_at"),
            "expired_at": times.get("expired_at"),
            "cancelling_at": times.get("cancelling_at"),  # null in the cancel call's own answer, as recorded
            "cancelled_at": times.get("cancelled_at"),
            "request_counts": {"total": total, "completed": batch.completed, "failed": batch.failed},
            "metadata": batch.metadata,
        }


class _Error(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def _error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    kind = "invalid_request_error" if status < 500 else "internal_error"
    return {
        "error": {"message": message, "type": kind, "param": param, "code": code},
        "request_id": str(uuid.uuid4()),
    }


def _reply(line: _Line, rid: str, status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": rid,
        "custom_id": line.custom_id,
        "response": {"status_code": status, "request_id": rid, "body": body},
        "error": None,
    }


def _unfinished_line(line: _Line, code: str) -> dict[str, Any]:
    what = "cancelled" if code == "batch_cancelled" else "expired"
    return {
        "id": str(uuid.uuid4()),
        "custom_id": line.custom_id,
        "response": None,
        "error": {"code": code, "message": f"This request was not run: the batch {what} first."},
    }


def _now() -> int:
    return int(time.time())


def _share(custom_id: str) -> float:
    """A number in [0, 1) fixed by the ``custom_id`` (which lines fail)."""
    return int(hashlib.sha256(custom_id.encode("utf-8")).hexdigest()[:8], 16) / 16**8


def _window_ok(window: Any) -> bool:
    if not isinstance(window, str) or len(window) < 2 or not window[:-1].isdigit():
        return False
    amount, unit = int(window[:-1]), window[-1]
    hours = amount if unit == "h" else amount * 24 if unit == "d" else -1
    return 24 <= hours <= 336


def _image_url(body: Mapping[str, Any]) -> str | None:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return None
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        for part in content if isinstance(content, list) else ():
            if isinstance(part, Mapping) and part.get("type") == "image_url":
                image = part.get("image_url")
                url = image.get("url") if isinstance(image, Mapping) else image
                return url if isinstance(url, str) else None
    return None


def _image_ok(body: Mapping[str, Any]) -> bool:
    """Whether the line's image can be used: a remote URL (not fetched here), or a ``data:`` URL holding an image."""
    url = _image_url(body)
    if url is None:
        return body.get("model") == TEST_MODEL
    if not url.startswith("data:"):
        return True
    data = decode_data_url(url)
    return data is not None and data.startswith(_IMAGE_MAGIC)


def _read_lines(content: bytes, endpoint: str) -> tuple[list[_Line], list[dict[str, Any]]]:
    """The lines of an input file, and the validation errors (``{code, message, param, line}``)."""
    lines: list[_Line] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None
    test = endpoint == TEST_ENDPOINT
    if test and len(content) > _TEST_MAX_BYTES:
        errors.append(_problem("file_too_large", "The test model takes files of at most 1 MB.", None, None))
    for number, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        if len(raw) > _MAX_LINE_BYTES:
            errors.append(_problem("line_too_large", "The line is larger than 6 MB.", None, number))
            continue
        try:
            item = json.loads(raw)
        except ValueError:
            errors.append(_problem("invalid_json_line", "The line is not valid JSON.", None, number))
            continue
        if not isinstance(item, Mapping) or not isinstance(item.get("body"), Mapping):
            errors.append(_problem("invalid_request", "The line has no request body.", "body", number))
            continue
        cid = item.get("custom_id")
        if not isinstance(cid, str) or not cid:
            errors.append(_problem("missing_required_parameter", "The line has no custom_id.", "custom_id", number))
            continue
        if cid in seen:
            errors.append(
                _problem("duplicate_custom_id", f"The custom_id '{cid}' is used more than once.", "custom_id", number)
            )
            continue
        seen.add(cid)
        if item.get("url") != endpoint:
            message = f"The provided url '{item.get('url')}' is not supported by the Batch API."
            errors.append(_problem("url_not_found", message, "url", number))
            continue
        line_model = item["body"].get("model")
        if model is None:
            model = line_model
        elif line_model != model:
            message = f"The line's model '{line_model}' differs from the file's '{model}'."
            errors.append(_problem("mismatched_model", message, "body.model", number))
            continue
        lines.append(_Line(number, cid, dict(item["body"])))
    limit = _TEST_MAX_LINES if test else _MAX_LINES
    if len(lines) > limit:
        errors.append(_problem("too_many_lines", f"The file has more than {limit:,} lines.", None, None))
    return lines, errors


def _problem(code: str, message: str, param: str | None, line: int | None) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def _multipart(headers: Mapping[str, str], body: bytes) -> dict[str, tuple[str, bytes]]:
    """The fields of a ``multipart/form-data`` body: name -> (filename, content)."""
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    boundary = ""
    for piece in content_type.split(";"):
        name, _, value = piece.strip().partition("=")
        if name.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise _Error(400, "The upload is not multipart/form-data.")
    fields: dict[str, tuple[str, bytes]] = {}
    for part in body.split(b"--" + boundary.encode("latin-1")):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if content.endswith(b"\r\n"):
            content = content[:-2]
        name = filename = ""
        for header_line in head.decode("utf-8", "replace").split("\r\n"):
            if header_line.lower().startswith("content-disposition"):
                for item in header_line.split(";")[1:]:
                    key, _, value = item.strip().partition("=")
                    if key == "name":
                        name = value.strip('"')
                    elif key == "filename":
                        filename = value.strip('"')
        if name:
            fields[name] = (filename, content)
    return fields

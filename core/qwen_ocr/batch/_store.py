"""A job's directory: its state (``job.json``, small, rewritten atomically before and after every remote step), its
pages (``pages.jsonl``, one record per selected page in input order, with ``pages.idx`` to find record ``n``), its
input files (``lines/``), the files the service returned (``out/``) and the outcome of every page (``index.bin``,
a fixed-size record per page).

Everything that grows with the pages is a file read or written a line (or a record) at a time, so a job of any
size takes the memory of a few pages.

Example::

    store = JobStore(Path("jobs/june"))
    state = store.load()                     # JobState
    for record in store.pages():             # PageRecord, in input order
        print(record.source, record.label, store.outcome(record.n))
"""

from __future__ import annotations

import contextlib
import json
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._files import atomic_write
from ..errors import BatchJobError
from ._api import RequestCounts

__all__ = [
    "FORMAT",
    "Flag",
    "JobState",
    "JobStore",
    "Outcome",
    "PageRecord",
    "PartState",
]

FORMAT = "qwen-ocr-batch/1"
"""The format of a job directory this version writes and reads."""

Stage = Literal["built", "uploading", "uploaded", "creating", "created", "skipped"]


class PartState(BaseModel):
    """One batch of the job: an input file of ``lines`` lines, uploaded and created once.

    ``stage`` is written before each remote step (``uploading``, ``creating``) and after it (``uploaded`` with the
    ``file_id``, ``created`` with the ``batch_id``), so that a job that stopped anywhere knows what may exist at the
    service. ``skipped``: never sent (the job was cancelled first).
    """

    model_config = ConfigDict(extra="allow")

    round: int
    part: int
    file: str
    lines: int
    bytes: int
    tag: str
    filename: str
    stage: Stage = "built"
    file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    request_counts: RequestCounts | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    problems: list[dict[str, Any]] = Field(default_factory=list)
    indexed: bool = False
    deleted: list[str] = Field(default_factory=list)
    """The ids of this batch's files deleted at the service."""
    billed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    image_tokens: int = 0

    @property
    def finished(self) -> bool:
        """Whether nothing more will happen to this batch (its outcomes are indexed, or it was never sent)."""
        return self.indexed or self.stage == "skipped"


class JobState(BaseModel):
    """``job.json``: what the job is and where each of its batches stands. No key, no page data."""

    model_config = ConfigDict(extra="allow")

    format: str = FORMAT
    job_id: str
    created_at: float
    base_url: str
    region: str | None = None
    model: str
    endpoint: str
    completion_window: str
    metadata: dict[str, str] = Field(default_factory=dict)
    max_rounds: int = 3
    options: dict[str, Any] = Field(default_factory=dict)
    pages: int = 0
    lines: int = 0
    keyed_for: str | None = None
    """The protocol the pages' cache keys are those of (``"openai"`` / ``"dashscope"``), ``None``: no keys."""
    cancelled: bool = False
    next_part: int = 0
    parts: list[PartState] = Field(default_factory=list)

    @property
    def done(self) -> bool:
        """Whether every batch is over and its outcomes indexed (no follow-up round is pending)."""
        return all(part.finished for part in self.parts)


class Flag:
    """The outcome of a page in ``index.bin``."""

    NONE = 0
    OK = 1
    RETRYABLE = 2
    PERMANENT = 3
    CANCELLED = 4
    REFUSED = 5
    """Its batch was refused at validation."""


@dataclass(frozen=True)
class Outcome:
    """A page's latest outcome: the round and part of the batch that gave it, where its line is (``which``: 0 the
    output file, 1 the error file, 2 no line: ``offset`` is then the line's number in the input file)."""

    round: int
    flag: int
    which: int
    part: int
    offset: int


_RECORD = struct.Struct("<BBBxIQ")
_OFFSET = struct.Struct("<Q")


@dataclass
class PageRecord:
    """One selected page, as ``pages.jsonl`` keeps it.

    Attributes:
        n: its position in the job (input order); its lines' ``custom_id`` is ``p{n}``.
        file: the file's position among the sources (``PageResult.file_index``).
        source: the file's label (``PageResult.source``).
        index: 0-based page index; label: the page's label; total: pages in the file.
        kind: ``"line"`` (sent in a batch), ``"text"`` (its text layer: no request), ``"failed"`` (could not be
            prepared), ``"file_failed"`` (the whole file could not be read).
        text: the text-layer text; error: the local error (``{"type", "code", "message"}``).
        call: what reading the answer needs (task, schema, prompt, model, budget, sizes).
        key: the cache key of the request the submitting client would have sent for this page, or ``None``.
    """

    n: int
    file: int
    source: str
    index: int
    label: str
    total: int
    kind: Literal["line", "text", "failed", "file_failed"]
    text: str | None = None
    error: dict[str, Any] | None = None
    call: dict[str, Any] | None = None
    key: str | None = None

    def dumps(self) -> bytes:
        data = {k: v for k, v in self.__dict__.items() if v is not None}
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"

    @classmethod
    def loads(cls, raw: bytes) -> PageRecord:
        return cls(**json.loads(raw))


class JobStore:
    """The files of one job directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.state_path = directory / "job.json"
        self.pages_path = directory / "pages.jsonl"
        self.offsets_path = directory / "pages.idx"
        self.index_path = directory / "index.bin"
        self.lock_path = directory / "job.lock"
        self._lock = threading.RLock()
        self._depth = 0

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the job's lock: one process (and one thread) drives a job at a time; re-entrant. An advisory
        ``flock`` on ``job.lock`` where the OS has it (POSIX); elsewhere, within this process only."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with open(self.lock_path, "a+b") as handle:
                _flock(handle, exclusive=True)
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0
                    _flock(handle, exclusive=False)

    def exists(self) -> bool:
        return self.state_path.is_file()

    def load(self) -> JobState:
        """The job's state; :class:`~qwen_ocr.errors.BatchJobError` when the directory holds no job of ours."""
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
            raise BatchJobError(
                f"{str(self.directory)!r} holds no batch job (no job.json): submit one with client.batch.submit(..., "
                "job_dir=...).",
                code="NoBatchJob",
            ) from None
        try:
            state = JobState.model_validate_json(raw)
        except ValidationError as exc:
            raise BatchJobError(
                f"{str(self.state_path)!r} is not a batch job's state ({exc.error_count()} problems).",
                code="BadBatchJob",
            ) from None
        if state.format != FORMAT:
            raise BatchJobError(
                f"{str(self.directory)!r} was written as {state.format!r}; this version reads {FORMAT!r}.",
                code="BadBatchJob",
            )
        return state

    def save(self, state: JobState) -> None:
        atomic_write(self.state_path, state.model_dump_json(indent=1).encode("utf-8"))

    def path(self, relative: str) -> Path:
        return self.directory / relative

    # -- pages ------------------------------------------------------------------------------------------------------

    def pages(self) -> Iterator[PageRecord]:
        """Every page record, in input order, one line at a time."""
        with open(self.pages_path, "rb") as handle:
            for raw in handle:
                yield PageRecord.loads(raw)

    def page(self, n: int, pages: IO[bytes], offsets: IO[bytes]) -> PageRecord:
        """Record ``n`` (``pages``/``offsets``: open handles of ``pages.jsonl`` / ``pages.idx``)."""
        offsets.seek(n * _OFFSET.size)
        (offset,) = _OFFSET.unpack(offsets.read(_OFFSET.size))
        pages.seek(offset)
        return PageRecord.loads(pages.readline())

    # -- outcomes ---------------------------------------------------------------------------------------------------

    def create_index(self, pages: int) -> None:
        """An ``index.bin`` of ``pages`` empty records."""
        with open(self.index_path, "wb") as handle:
            handle.truncate(pages * _RECORD.size)

    @staticmethod
    def read_outcome(index: IO[bytes], n: int) -> Outcome:
        index.seek(n * _RECORD.size)
        data = index.read(_RECORD.size)
        if len(data) < _RECORD.size:
            return Outcome(0, Flag.NONE, 2, 0, 0)
        return Outcome(*_RECORD.unpack(data))

    @staticmethod
    def write_outcome(index: IO[bytes], n: int, outcome: Outcome) -> None:
        index.seek(n * _RECORD.size)
        index.write(_RECORD.pack(outcome.round, outcome.flag, outcome.which, outcome.part, outcome.offset))


def _flock(handle: IO[bytes], *, exclusive: bool) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the in-process lock only
        return
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_UN)


OFFSET = _OFFSET
"""How ``pages.idx`` stores the offset of each record."""

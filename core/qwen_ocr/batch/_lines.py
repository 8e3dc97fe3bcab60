"""Turning sources into a job's pages and input lines, as the engine reads them in real time.

Sources are expanded as :func:`qwen_ocr.read_documents` expands them (:mod:`qwen_ocr.sources`), each file opened at
the budget of the model (:func:`qwen_ocr.reading.read_document`'s opening), each selected page either taken from
its text layer (``text_layer="auto"``: no line) or prepared, and its request built by the client itself, in the
OpenAI-compatible protocol (:mod:`qwen_ocr.protocols.compatible`): the body of a line is byte for byte the body
``protocol="openai"`` sends in real time. Lines are written into input files of at most 50,000 lines and 500 MB
(one batch each); a line over 6 MB stops the job before anything is uploaded.

Pages are prepared on a few threads, a small window ahead, so the memory is that of a few pages whatever the job.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from ..cache import request_key
from ..config import describe_region
from ..engine import is_fatal
from ..errors import BatchLineTooLargeError, BatchUnavailableError, QwenOCRError
from ..imaging import PreparedImage
from ..models import model_spec
from ..protocols import compatible
from ..protocols.base import OCRCall
from ..reading import _open, _prepare_or_text
from ..sources import Downloads, SourceItem
from ..tasks import Task
from ._api import CHAT_ENDPOINT, TEST_ENDPOINT
from ._outcomes import custom_id, error_to_json
from ._store import OFFSET, JobState, JobStore, PageRecord, PartState

if TYPE_CHECKING:
    from .._client import QwenOCR
    from ..documents import Page
    from ..engine import ReadOptions

__all__ = [
    "BATCH_MODELS",
    "BATCH_REGION",
    "TEST_MODEL",
    "BatchPage",
    "Limits",
    "LineWriter",
    "build_pages",
    "call_from_record",
    "check_batch_target",
]

logger = logging.getLogger("qwen_ocr")

BATCH_REGION = "cn-beijing"
"""The one region whose Batch API serves the OCR models."""
TEST_MODEL = "batch-test-model"
"""The vendor's free end-to-end test model: every line answers "This is a test result."."""
BATCH_MODELS: tuple[str, ...] = ("qwen-vl-ocr", "qwen-vl-ocr-latest", TEST_MODEL)
"""The models an OCR batch may use."""

_NATIVE_STRUCTURED = (Task.ADVANCED_RECOGNITION, Task.KEY_INFORMATION_EXTRACTION)
"""Tasks whose native answer carries structure (``words_info``, ``kv_result``) that a compatible answer lacks."""


@dataclass(frozen=True)
class Limits:
    """What one input file and one line may hold."""

    max_lines: int = 50_000
    max_bytes: int = 500_000_000
    max_line_bytes: int = 6_000_000


LIMITS = Limits()
"""The service's limits (documented: 50,000 lines, 500 MB a file, 6 MB a line; counted in decimal units, to stay
on the safe side)."""
TEST_LIMITS = Limits(max_lines=100, max_bytes=1_000_000, max_line_bytes=1_000_000)
"""The free test model's: 100 lines and 1 MB a file."""


@dataclass(frozen=True)
class BatchPage:
    """A page about to become a line, as ``image_url=`` is given it.

    Attributes:
        source: the file's label (``PageResult.source``); file_index: its position among the sources.
        index: the 0-based page index; label: its label; total_pages: pages in the file.
        page: the document page (render it with ``page.render()`` to upload it yourself).
    """

    source: str
    file_index: int
    index: int
    label: str
    total_pages: int
    page: Page


def check_batch_target(model: str, region: str | None) -> None:
    """Refuse, before anything is built or uploaded, a model the Batch API does not serve for OCR or a region
    where it does not serve it (``region=None``: a host of your own, not checked).

    >>> check_batch_target("qwen-vl-ocr", "cn-beijing")
    >>> check_batch_target("qwen-vl-ocr", "ap-southeast-1")
    Traceback (most recent call last):
    ...
    qwen_ocr.errors.BatchUnavailableError: OCR batch jobs are served in the Beijing region only ...
    """
    if model not in BATCH_MODELS:
        raise BatchUnavailableError(
            f"the Batch API does not serve {model!r} for OCR; use model='qwen-vl-ocr' or 'qwen-vl-ocr-latest' (or "
            f"'{TEST_MODEL}' to try the setup for free). Nothing was uploaded.",
            code="BatchModelNotSupported",
        )
    if region is not None and region != BATCH_REGION:
        raise BatchUnavailableError(
            f"OCR batch jobs are served in the Beijing region only (cn-beijing), and this client is for "
            f"{describe_region(region)}, where the service refuses the model. Create the client with region='cn' "
            "and a Beijing API key (keys are region-bound). Nothing was uploaded.",
            code="BatchRegionNotSupported",
        )


def call_from_record(record: Mapping[str, Any], region: str | None) -> OCRCall:
    """The call a page's answer is read with, rebuilt from what its record keeps (no image needed)."""
    task = record.get("task")

    def size(name: str) -> tuple[int, int] | None:
        value = record.get(name)
        return (int(value[0]), int(value[1])) if isinstance(value, list) and len(value) == 2 else None

    scale = record.get("scale") or [1.0, 1.0]
    image = PreparedImage(
        url="",
        original_size=size("original_size"),
        sent_size=size("sent_size"),
        scale=(float(scale[0]), float(scale[1])),
        min_pixels=record.get("min_pixels"),
        max_pixels=record.get("max_pixels"),
    )
    return OCRCall(
        image=image,
        spec=model_spec(str(record.get("model") or "qwen-vl-ocr")),
        task=Task(task) if task else None,
        schema=record.get("schema"),
        prompt=record.get("prompt"),
        min_pixels=record.get("min_pixels"),
        max_pixels=record.get("max_pixels"),
        region=region,
    )


def _call_record(call: OCRCall) -> dict[str, Any]:
    image = call.image
    return {
        "task": call.task.value if call.task is not None else None,
        "schema": call.schema,
        "prompt": call.prompt,
        "model": call.model,
        "min_pixels": call.min_pixels,
        "max_pixels": call.max_pixels,
        "scale": list(image.scale),
        "original_size": list(image.original_size) if image.original_size else None,
        "sent_size": list(image.sent_size) if image.sent_size else None,
    }


class LineWriter:
    """Writes lines into input files (``lines/p{part}.jsonl``), a new one whenever the next line would pass the
    limits; each file becomes a :class:`PartState` of ``round``."""

    def __init__(self, store: JobStore, state: JobState, round_: int, limits: Limits) -> None:
        self.store, self.state, self.round, self.limits = store, state, round_, limits
        self.parts: list[PartState] = []
        self._handle: IO[bytes] | None = None
        self._lines = 0
        self._bytes = 0

    def add(self, line: bytes) -> None:
        if (
            self._handle is None
            or self._lines >= self.limits.max_lines
            or self._bytes + len(line) > self.limits.max_bytes
        ):
            self._open()
        assert self._handle is not None
        self._handle.write(line)
        self._lines += 1
        self._bytes += len(line)

    def _open(self) -> None:
        self._finish()
        number = self.state.next_part
        self.state.next_part += 1
        relative = f"lines/p{number}.jsonl"
        path = self.store.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "wb")  # noqa: SIM115 - closed in _finish
        self._lines = self._bytes = 0
        label = self.state.metadata.get("ds_name") or "qwen-ocr"
        tag = f"{label[:60]} {self.state.job_id} r{self.round} p{number}"
        self.parts.append(
            PartState(
                round=self.round,
                part=number,
                file=relative,
                lines=0,
                bytes=0,
                tag=tag,
                filename=f"qwen-ocr-{self.state.job_id}-p{number}.jsonl",
            )
        )

    def _finish(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()
            self._handle = None
            self.parts[-1].lines, self.parts[-1].bytes = self._lines, self._bytes

    def close(self) -> list[PartState]:
        """Finish the last file; the parts written."""
        self._finish()
        return self.parts


@dataclass
class _Built:
    record: PageRecord
    line: bytes | None = None


def build_pages(
    client: QwenOCR,
    store: JobStore,
    state: JobState,
    items: Iterator[SourceItem],
    options: ReadOptions,
    *,
    image_url: Callable[[BatchPage], str | None] | None,
    keyed_for: str | None,
    limits: Limits,
    on_page: Callable[[PageRecord, bool], None] | None = None,
) -> list[PartState]:
    """Write every selected page of ``items`` to ``pages.jsonl`` (and ``pages.idx``), and the lines of the pages
    that go to the model into the first round's input files; the parts written. ``state.pages``/``state.lines`` are
    set. ``on_page(record, first)`` is called as each page is written (``first``: its file's first page)."""
    ocr = dict(options.ocr)
    endpoint_url = TEST_ENDPOINT if state.model == TEST_MODEL else CHAT_ENDPOINT
    writer = LineWriter(store, state, 1, limits)
    downloads = Downloads(
        max_bytes=options.max_download_bytes,
        timeout=options.download_timeout,
        allow_private=options.allow_private_urls,
    )
    n = last_file = 0
    workers = max(1, min(4, os.cpu_count() or 1))
    with (
        open(store.pages_path, "wb") as pages,
        open(store.offsets_path, "wb") as offsets,
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="qwen-ocr-batch") as pool,
        contextlib.closing(downloads),
    ):

        def emit(built: _Built) -> None:
            nonlocal n, last_file
            built.record.n = n
            offsets.write(OFFSET.pack(pages.tell()))
            if built.line is not None:
                if len(built.line) + 64 > limits.max_line_bytes:
                    raise BatchLineTooLargeError(
                        f"page {built.record.label} of {built.record.source} makes a batch line of "
                        f"{len(built.line) + 64:,} bytes, over the {limits.max_line_bytes:,} a line may have. "
                        "Lower the budget (resolution='standard', or a smaller max_pixels=) or pass image_url= (a "
                        "function page -> URL of the page you host) to send pages by URL. Nothing was uploaded."
                    )
                writer.add(_line(n, endpoint_url, built.line))
            pages.write(built.record.dumps())
            if on_page is not None:
                on_page(built.record, n == 0 or built.record.file != last_file)
            last_file = built.record.file
            n += 1

        for position, raw_item in enumerate(items):
            item = downloads.fetch(raw_item)
            for built in _file_pages(client, item, position, options, ocr, pool, workers, image_url, keyed_for):
                emit(built)
        writer.close()
        pages.flush()
        os.fsync(pages.fileno())
    state.pages = n
    state.lines = sum(part.lines for part in writer.parts)
    store.create_index(n)
    return writer.parts


def _line(n: int, url: str, body: bytes) -> bytes:
    head = b'{"custom_id":"%s","method":"POST","url":"%s","body":' % (custom_id(n).encode(), url.encode())
    return head + body + b"}\n"


def _file_pages(
    client: QwenOCR,
    item: SourceItem,
    position: int,
    options: ReadOptions,
    ocr: dict[str, Any],
    pool: ThreadPoolExecutor,
    window: int,
    image_url: Callable[[BatchPage], str | None] | None,
    keyed_for: str | None,
) -> Iterator[_Built]:
    """The pages of one file, in order, prepared a window ahead on ``pool``."""

    def failed_file(error: QwenOCRError, total: int = 0) -> _Built:
        record = PageRecord(0, position, item.label, 0, "", total, "file_failed", error=error_to_json(error))
        return _Built(record)

    if item.error is not None:
        yield failed_file(item.error)
        return
    if item.remote is not None:
        record = PageRecord(0, position, item.label, 0, "1", 1, "line")
        yield _request(client, record, item.remote, ocr, keyed_for)
        return
    try:
        doc, _ = _open(client, item.document_source(), options.pages, options.password, None, ocr)
    except QwenOCRError as exc:
        _raise_if_fatal(exc)
        yield failed_file(exc)
        return
    with doc:
        name, total = item.label, doc.page_count

        def work(page: Page) -> _Built:
            record = PageRecord(0, position, name, page.index, page.label, total, "line")
            try:
                if image_url is not None:
                    url = image_url(BatchPage(name, position, page.index, page.label, total, page))
                    if url is not None:
                        return _request(
                            client, record, url, _with_budget(ocr, doc.min_pixels, doc.max_pixels), keyed_for
                        )
                prepared = _prepare_or_text(page, options.text_layer)
            except QwenOCRError as exc:
                _raise_if_fatal(exc)
                record.kind, record.error = "failed", error_to_json(exc)
                return _Built(record)
            if isinstance(prepared, str):
                record.kind, record.text = "text", prepared
                return _Built(record)
            return _request(client, record, prepared, ocr, keyed_for)

        pending: deque[Future[_Built]] = deque()
        try:
            for page in doc:
                pending.append(pool.submit(work, page))
                while len(pending) > window or (pending and pending[0].done()):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except QwenOCRError as exc:  # the file stopped being readable
            _raise_if_fatal(exc)
            yield failed_file(exc, total)
        finally:
            for future in pending:
                future.cancel()
            for future in pending:
                with contextlib.suppress(BaseException):
                    future.result()


def _raise_if_fatal(error: QwenOCRError) -> None:
    """An error that would fail every page alike (a task the model cannot do, a bad option) stops the job before
    anything is uploaded, as :func:`qwen_ocr.read_documents` raises it whatever ``on_error`` says."""
    if is_fatal(error):
        raise error


def _with_budget(ocr: dict[str, Any], min_pixels: int | None, max_pixels: int | None) -> dict[str, Any]:
    """A page sent by URL states the budget it would have been rendered at, unless the options set one."""
    if any(ocr.get(name) is not None for name in ("resolution", "min_pixels", "max_pixels")):
        return ocr
    return {**ocr, "min_pixels": min_pixels, "max_pixels": max_pixels}


def _request(
    client: QwenOCR, record: PageRecord, image: PreparedImage | str, ocr: Mapping[str, Any], keyed_for: str | None
) -> _Built:
    """The page's line body (the compatible request ``protocol="openai"`` sends) and, when the results go to the
    cache, the key of the request the client's own protocol would send for it."""
    try:
        call = client._call(image, **ocr)
    except QwenOCRError as exc:
        _raise_if_fatal(exc)
        record.kind, record.error = "failed", error_to_json(exc)
        return _Built(record)
    body = compatible.build_request(call, stream=False).content()
    record.call = _call_record(call)
    if keyed_for is not None:
        send = client._send_command(call, stream=False)
        record.key = request_key(send.url, send.content, send.headers)
    return _Built(record, body)


def cache_protocol(client: QwenOCR, model: str, task: Task | None) -> str | None:
    """The protocol whose requests the results are cached as (the client's), or ``None`` when they are not: the
    test model's answers are no readings, and a native client's ``advanced_recognition`` and
    ``key_information_extraction`` answers carry structure a batch answer lacks."""
    if model == TEST_MODEL:
        return None
    if client.protocol == "dashscope" and task in _NATIVE_STRUCTURED:
        assert task is not None
        logger.info(
            "qwen_ocr: %s results of a batch are not written to the cache of a native-protocol client: its "
            "real-time answer carries structure (words_info, kv_result) a batch answer lacks. Use "
            "protocol='openai' to cache them.",
            task.value,
        )
        return None
    return client.protocol

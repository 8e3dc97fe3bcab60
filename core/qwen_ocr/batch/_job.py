"""Batch jobs: :class:`Batches` (``client.batch``) submits sources as a job; :class:`BatchJob` follows it to its
end and gives its pages back.

A job lives in its directory (see :mod:`qwen_ocr.batch._store`), so any process can pick it up where another left
it: the state is written before each remote step (``uploading``, ``creating``) and after it (the file's and the
batch's ids). A job reopened after a crash between the two looks for what the step may have made (the file by its
name, the batch by its ``ds_name`` tag and input file) before doing it again: each batch is uploaded once and
created once.

Failed lines that may succeed when sent again (a server error, a timeout, an expired batch, a line the output
lacks) go into a follow-up batch, up to ``max_rounds`` rounds in all; the others (a bad image) are not sent again.
Cancelled pages are marked, not sent again. Every selected page comes back from :meth:`BatchJob.results`, in input
order, read or with its typed error.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from .._closing import Closing
from ..config import missing_key_error
from ..cost import OUTPUT_TOKENS_PER_PAGE, PROMPT_TOKENS_PER_PAGE, price_usd
from ..engine import OCR_OPTIONS, OnError, ReadOptions, _apply_policy, _Progress, _tqdm, check_option_names
from ..errors import (
    BatchCancelledError,
    BatchJobError,
    BatchNotFinishedError,
    BatchUnavailableError,
    BatchValidationError,
    BatchWaitTimeoutError,
    InvalidArgumentError,
    NotFoundError,
    QwenOCRError,
    ServerError,
)
from ..imaging import tokens_for_size
from ..models import model_spec
from ..protocols import compatible
from ..reading import PageResult, _text_layer_result
from ..sources import check_sources, expand_sources
from ._api import CHAT_ENDPOINT, TEST_ENDPOINT, BatchAPI, BatchObject, BatchProblem, RequestCounts
from ._lines import (
    BATCH_REGION,
    LIMITS,
    TEST_LIMITS,
    TEST_MODEL,
    BatchPage,
    LineWriter,
    build_pages,
    cache_protocol,
    call_from_record,
    check_batch_target,
)
from ._outcomes import error_from_json, page_number, read_line
from ._store import Flag, JobState, JobStore, Outcome, PageRecord, PartState

if TYPE_CHECKING:
    from .._client import QwenOCR
    from ..documents import PageSpec, TextLayerMode
    from ..sources import Sources

__all__ = ["BatchCost", "BatchJob", "BatchStatus", "Batches", "JobStatus"]

logger = logging.getLogger("qwen_ocr")

_READ_ARGUMENTS = ("password", "max_download_bytes", "download_timeout", "allow_private_urls")
_WINDOW = re.compile(r"(\d{1,4})([hd])")


def _checkpoint(step: str, part: PartState) -> None:
    """Called at each remote step (``upload:before``, ``upload:after``, ``create:before``, ``create:after``); tests
    replace it to stop a job there, as a crash would."""


class BatchStatus(BaseModel):
    """One batch of a job.

    Attributes:
        batch_id: the service's id (``None`` until created).
        round: 1 for the job's first batches, 2 and more for the follow-ups of failed lines.
        part: the batch's number in the job; lines: its lines.
        status: the service's status (``validating`` ... ``completed``), or where the job stands with it before it
            exists: ``"pending"`` (not uploaded yet), ``"uploaded"``, ``"skipped"`` (cancelled before it was sent).
        collected: its outcomes were downloaded and read.
        request_counts: the service's ``total``, ``completed``, ``failed``.
        problems: what validation found wrong, each with its ``line`` (and the page: ``source``, ``page_label``).

    Example::

        for batch in job.status().batches:
            print(batch.round, batch.batch_id, batch.status, batch.request_counts.completed, "/", batch.lines)
    """

    model_config = ConfigDict(frozen=True)

    batch_id: str | None
    round: int
    part: int
    lines: int
    status: str
    collected: bool
    request_counts: RequestCounts = Field(default_factory=RequestCounts)
    output_file_id: str | None = None
    error_file_id: str | None = None
    problems: list[dict[str, Any]] = Field(default_factory=list)


class JobStatus(BaseModel):
    """Where a job stands: per batch, and in total.

    Attributes:
        job_id: the job's id (part of every batch's ``ds_name``); job_dir: its directory.
        pages: selected pages; lines: pages sent in the first round (the others came from their text layer or
            failed locally).
        done: every batch is over and collected, and no follow-up round is pending: :meth:`BatchJob.results` works.
        cancelled: the job was cancelled.
        rounds: rounds started; batches: each batch's :class:`BatchStatus`.
        request_counts: the batches' counts added up (a page sent twice counts twice).

    Example::

        status = job.status()
        print(status)                     # job 3f2a...: running, 30 pages, 1 batches in 1 rounds, ...
        [b.status for b in status.batches]
    """

    model_config = ConfigDict(frozen=True)

    job_id: str
    job_dir: str
    model: str
    pages: int
    lines: int
    done: bool
    cancelled: bool
    rounds: int
    batches: list[BatchStatus]
    request_counts: RequestCounts

    def __str__(self) -> str:
        state = "done" if self.done else ("cancelling" if self.cancelled else "running")
        counts = self.request_counts
        return (
            f"job {self.job_id}: {state}, {self.pages} pages, {len(self.batches)} batches in {self.rounds} rounds, "
            f"{counts.completed} lines completed, {counts.failed} failed"
        )


class BatchCost(BaseModel):
    """What a job cost: only successful lines are billed, at the Batch price (half the real-time price).

    Attributes:
        model: the model; region: the region priced (Beijing, where OCR batches run).
        lines_billed: successful lines; input_tokens, output_tokens, image_tokens: their usage.
        usd: the price at the Batch rate (``None`` when the model has no recorded price there; 0 for the free
            ``batch-test-model``); realtime_usd: the same tokens at the real-time price.

    Example::

        cost = job.cost()
        print(f"${cost.usd:.4f} instead of ${cost.realtime_usd:.4f} in real time")
    """

    model_config = ConfigDict(frozen=True)

    model: str
    region: str
    lines_billed: int
    input_tokens: int
    output_tokens: int
    image_tokens: int
    usd: float | None
    realtime_usd: float | None


class Batches:
    """``client.batch``: submit sources as a Batch API job (half the real-time price; results within the
    completion window), or reopen one.

    Example::

        job = client.batch.submit("scans/", job_dir="jobs/june")      # uploaded and created; returns at once
        ...                                                           # later, in any process:
        job = BatchJob.open("jobs/june", client=QwenOCR(region="cn"))
        job.wait(poll_interval=60, show_progress=True)
        for page in job.results():
            print(page.source, page.label, page.text if page.ok else page.error)
    """

    def __init__(self, client: QwenOCR) -> None:
        self._client = client

    def __repr__(self) -> str:
        return f"Batches(base_url={self._client.base_url!r})"

    def submit(
        self,
        sources: Sources | Iterable[Any],
        *,
        task: Any = None,
        schema: Any = None,
        prompt: str | None = None,
        model: str | None = None,
        pages: PageSpec = None,
        text_layer: TextLayerMode | None = None,
        job_dir: str | Path,
        completion_window: str = "24h",
        metadata: Mapping[str, str] | None = None,
        image_url: Callable[[BatchPage], str | None] | None = None,
        max_rounds: int = 3,
        name: str | None = None,
        recursive: bool = False,
        glob: str | None = None,
        show_progress: bool = False,
        **options: Any,
    ) -> BatchJob:
        """Submit every selected page of ``sources`` as a batch job, and return without waiting for it.

        Args:
            sources: what :func:`qwen_ocr.read_documents` takes (paths, patterns, folders, URLs, bytes, ...).
            task, schema, prompt, model, pages, text_layer: as for :func:`~qwen_ocr.read_documents`, defaults
                included (``text_layer=None`` is ``"auto"`` for plain text, ``"never"`` for a task, a schema or a
                prompt); a page whose text layer is used costs no line.
            job_dir: the job's directory (created; must not hold a job already): the state, the pages, the input
                and output files. Keep it until the results are read.
            completion_window: ``"24h"`` to ``"336h"`` (or ``"1d"`` to ``"14d"``).
            metadata: the batches' ``ds_name`` (its start: the job's id, round and part are added) and
                ``ds_description`` (at most 200 characters).
            image_url: a function ``BatchPage -> URL`` (e.g. a presigned object-store URL of the page you host) to
                send pages by URL instead of inline; ``None`` from it sends that page inline.
            max_rounds: rounds in all for a page whose line fails with a retryable error (a server error, a
                timeout, an expired batch): it is sent again in a follow-up batch, up to this many times in all.
            name, recursive, glob: how ``sources`` are expanded, as for :func:`~qwen_ocr.read_documents`.
            show_progress: tqdm bars (as ``read_documents(show_progress=True)`` shows them): the pages prepared
                (rendered, encoded, written into the input files), then the lines uploaded, batch by batch.
            **options: the other request options (``resolution``, ``min_pixels``, ``max_pixels``, ``max_tokens``,
                ``temperature``), and ``password``, ``max_download_bytes``, ``download_timeout``,
                ``allow_private_urls``.

        Raises:
            BatchUnavailableError: the model or the client's region has no OCR batch (Beijing only, ``qwen-vl-ocr``
                and ``qwen-vl-ocr-latest``, or ``batch-test-model``): raised before anything is built or uploaded.
            BatchLineTooLargeError: a page's line is over 6 MB (nothing was uploaded).
            BatchJobError: ``job_dir`` holds a job already.
            InvalidArgumentError: a wrong option.
        """
        client = self._client
        check_option_names(options, (*OCR_OPTIONS, *_READ_ARGUMENTS), "option", others=("job_dir", "metadata"))
        read = ReadOptions.build(
            task=task, schema=schema, prompt=prompt, model=model, pages=pages, text_layer=text_layer, **options
        )
        the_model = str(read.ocr.get("model") or client.model)
        if client.provider == "local":
            raise BatchUnavailableError("the local engine has no Batch API; use a DashScope client (region='cn').")
        check_batch_target(the_model, client.region)
        if client.api_key is None:
            raise missing_key_error()
        window = _check_window(completion_window)
        tags = _check_metadata(metadata)
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise InvalidArgumentError(f"max_rounds={max_rounds!r} must be a whole number of at least 1.")
        if image_url is not None and not callable(image_url):
            raise InvalidArgumentError("image_url must be a function taking a BatchPage and returning a URL (or None).")
        store = JobStore(Path(job_dir).expanduser())
        if store.exists():
            raise BatchJobError(
                f"{str(store.directory)!r} holds a batch job already: reopen it with BatchJob.open(job_dir), or pass "
                "a new job_dir.",
                code="BatchJobExists",
            )
        if show_progress:
            _tqdm()  # fail now (tqdm missing), not after the pages are prepared
        check_sources(sources)
        items = expand_sources(sources, name=name, recursive=recursive, glob=glob)
        store.directory.mkdir(parents=True, exist_ok=True)
        state = JobState(
            job_id=uuid.uuid4().hex[:12],
            created_at=time.time(),
            base_url=client.base_url,
            region=client.region,
            model=the_model,
            endpoint=TEST_ENDPOINT if the_model == TEST_MODEL else CHAT_ENDPOINT,
            completion_window=window,
            metadata=tags,
            max_rounds=max_rounds,
            options=_describe_options(read),
            keyed_for=cache_protocol(client, the_model, read.task),
        )
        limits = TEST_LIMITS if the_model == TEST_MODEL else LIMITS
        prepared = _Progress(show_progress, read.pages, desc="Qwen-OCR batch: preparing")
        try:
            state.parts = build_pages(
                client, store, state, items, read, image_url=image_url, keyed_for=state.keyed_for, limits=limits,
                on_page=lambda record, first: prepared.count(
                    record.source, record.total, first=first, file_failed=record.kind == "file_failed"
                ),
            )  # fmt: skip
        finally:
            prepared.close()
        store.save(state)  # the job exists from here on; nothing remote has happened yet
        job = BatchJob(store, state, client, owns_client=False)
        bar = _tqdm()(total=state.lines, unit="line", desc="Qwen-OCR batch: uploading") if show_progress else None
        try:
            job._drive(sent=None if bar is None else lambda part: bar.update(part.lines))
        finally:
            if bar is not None:
                bar.close()
        return job  # uploaded and created (each step journaled); not waited for

    def open(self, job_dir: str | Path) -> BatchJob:
        """Reopen a job with this client (see :meth:`BatchJob.open`)."""
        return BatchJob.open(job_dir, client=self._client)


class BatchJob(Closing):
    """A batch job, in its directory. Get one from ``client.batch.submit(...)`` or :meth:`open`.

    Example::

        job = BatchJob.open("jobs/june", client=client)
        job.status()                 # JobStatus: per batch and in total
        job.wait(poll_interval=60)   # also runs the follow-up rounds of failed lines
        pages = list(job.results())  # PageResults in input order
        job.cost().usd               # at the Batch price
    """

    def __init__(self, store: JobStore, state: JobState, client: QwenOCR, *, owns_client: bool) -> None:
        self._store = store
        self._state = state
        self._client = client
        self._owns_client = owns_client
        self._api = BatchAPI(client)

    @classmethod
    def open(cls, job_dir: str | Path, *, client: QwenOCR | None = None) -> BatchJob:
        """Reopen the job in ``job_dir`` (after a crash, or from another process). Nothing is sent here: the next
        :meth:`wait` finishes any remote step that was under way (without doing it twice), :meth:`cancel` stops it.

        Args:
            job_dir: the job's directory.
            client: the client to follow it with (it must talk to the host the job was submitted to); default: a
                new ``QwenOCR`` for that host, its key from the environment (closed by :meth:`close`).

        Raises:
            BatchJobError: no job there, or ``client`` talks to another host.
        """
        store = JobStore(Path(job_dir).expanduser())
        state = store.load()
        owns = client is None
        if client is None:
            from .._client import QwenOCR

            client = QwenOCR(base_url=state.base_url)
        if client.base_url != state.base_url:
            raise BatchJobError(
                f"the job in {str(store.directory)!r} was submitted to {state.base_url}; this client talks to "
                f"{client.base_url}. Batches live where they were created: open it with a client of that host.",
                code="BatchJobHost",
            )
        return cls(store, state, client, owns_client=owns)

    def __repr__(self) -> str:
        return f"BatchJob({str(self._store.directory)!r}, job_id={self._state.job_id!r}, pages={self._state.pages})"

    def close(self) -> None:
        """Close the client this job made (a client passed in is yours to close)."""
        if self._owns_client:
            self._client.close()

    @property
    def job_dir(self) -> Path:
        """The job's directory."""
        return self._store.directory

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._state.job_id

    @property
    def base_url(self) -> str:
        """The host the job was submitted to (a client following it must talk to this host)."""
        return self._state.base_url

    @property
    def model(self) -> str:
        """The model the job's pages were sent to."""
        return self._state.model

    @property
    def options(self) -> dict[str, Any]:
        """The reading options the job was submitted with: ``task``, ``schema``, ``prompt``, ``pages``,
        ``text_layer`` (a copy)."""
        return dict(self._state.options)

    # -- following ----------------------------------------------------------------------------------------------

    def status(self, *, refresh: bool = True) -> JobStatus:
        """Where the job stands, per batch and in total (``refresh``: ask the service about the running batches
        first; nothing else is done)."""
        with self._store.locked():
            self._reload()
            state = self._state
            if refresh:
                changed = False
                for part in state.parts:
                    if part.stage == "created" and part.batch_id and not _terminal(part):
                        changed |= self._update(part, self._api.get(part.batch_id))
                if changed:
                    self._save()
        total = RequestCounts()
        batches = []
        for part in state.parts:
            counts = part.request_counts or RequestCounts()
            total = RequestCounts(
                total=total.total + counts.total,
                completed=total.completed + counts.completed,
                failed=total.failed + counts.failed,
            )
            batches.append(
                BatchStatus(
                    batch_id=part.batch_id,
                    round=part.round,
                    part=part.part,
                    lines=part.lines,
                    status=_shown_status(part),
                    collected=part.finished,
                    request_counts=counts,
                    output_file_id=part.output_file_id,
                    error_file_id=part.error_file_id,
                    problems=part.problems,
                )
            )
        return JobStatus(
            job_id=state.job_id,
            job_dir=str(self._store.directory),
            model=state.model,
            pages=state.pages,
            lines=state.lines,
            done=state.done,
            cancelled=state.cancelled,
            rounds=max((p.round for p in state.parts), default=0),
            batches=batches,
            request_counts=total,
        )

    def wait(
        self, *, poll_interval: float = 30.0, timeout: float | None = None, show_progress: bool = False
    ) -> JobStatus:
        """Follow the job to its end: poll its batches every ``poll_interval`` seconds, download and read what each
        returns, send the retryable failures again in follow-up batches (up to ``max_rounds``).

        Raises:
            BatchWaitTimeoutError: ``timeout`` seconds passed first (the job goes on; wait again later).
            BatchValidationError: the job ended, but the service refused a batch at validation: the error names the
                line (and its page); :meth:`results` marks that batch's pages with it.
        """
        _check_poll_interval(poll_interval)
        start = time.monotonic()
        bar = _tqdm()(total=0, unit="line", desc="Qwen-OCR batch") if show_progress else None
        try:
            while True:
                self._drive()
                if bar is not None:
                    _show(bar, self._state)
                if self._state.done:
                    break
                time.sleep(_pause(self.job_id, start, poll_interval, timeout))
        finally:
            if bar is not None:
                bar.close()
        refused = [part for part in self._state.parts if part.problems]
        if refused:
            raise _validation_error(refused[0])
        return self.status(refresh=False)

    def cancel(self) -> JobStatus:
        """Cancel the job: its running batches are cancelled at the service, batches not sent yet are not sent, no
        follow-up round starts. What finished before is kept; :meth:`wait` then collects it, and :meth:`results`
        marks the other pages with :class:`~qwen_ocr.errors.BatchCancelledError`."""
        with self._store.locked():
            self._reload()
            state = self._state
            state.cancelled = True
            self._save()
            for part in state.parts:
                if part.stage == "created" and part.batch_id and not _terminal(part):
                    self._update(part, self._api.cancel(part.batch_id))
            self._save()
            self._drive(poll=False)
        return self.status(refresh=False)

    # -- results ------------------------------------------------------------------------------------------------

    def results(self, *, on_error: OnError = "mark") -> Iterator[PageResult]:
        """Every selected page, in input order (files as given, pages in page order), as the engine yields them:
        a :class:`~qwen_ocr.PageResult` with its reading (usage, request id; ``metadata()["batch"]`` names the batch
        that read it) or its typed error (``on_error="mark"``, the default; ``"skip"`` leaves failed pages out,
        ``"raise"`` raises the first). Read from the job's files a page at a time.

        Raises:
            BatchNotFinishedError: the job is not done (call :meth:`wait`).
        """
        self._reload()
        state = self._state
        if not state.done:
            raise BatchNotFinishedError(
                f"the job {state.job_id} is not finished ({self.status(refresh=False)}); call job.wait() first."
            )
        if on_error not in ("raise", "skip", "mark"):
            raise InvalidArgumentError(f"on_error={on_error!r}; use 'raise', 'skip' or 'mark'.")
        return self._results(on_error)

    def _results(self, on_error: OnError) -> Iterator[PageResult]:
        parts = {part.part: part for part in self._state.parts}
        files = _Files(self._store)
        try:
            with open(self._store.index_path, "rb") as index:
                for record in self._store.pages():
                    page = self._page(record, index, parts, files)
                    if _apply_policy(page, on_error):
                        yield page
        finally:
            files.close()

    def _page(self, record: PageRecord, index: IO[bytes], parts: dict[int, PartState], files: _Files) -> PageResult:
        page = PageResult(
            source=record.source,
            index=record.index,
            label=record.label,
            total_pages=record.total,
            file_index=record.file,
            file_failed=record.kind == "file_failed",
        )
        if record.kind == "text":
            page.text_source, page.result = "text_layer", _text_layer_result(record.text or "")
            return page
        if record.kind in ("failed", "file_failed"):
            page.error = error_from_json(record.error or {})
            return page
        outcome = JobStore.read_outcome(index, record.n)
        part = parts.get(outcome.part)
        if outcome.flag == Flag.NONE or part is None:
            page.error = QwenOCRError(f"page {record.label} of {record.source} has no outcome in the job.")
        elif outcome.which in (0, 1):
            line = read_line(files.line(part, outcome.which, outcome.offset))
            if line.body is not None:
                try:
                    result = _read_answer(line.body, record, self._state.region)
                except QwenOCRError as exc:
                    page.error = exc
                else:
                    if self._state.keyed_for == "dashscope":  # as the cache keeps it: a native client's reading
                        result = result.model_copy(update={"provider": "dashscope"})
                    result.metadata["batch"] = part.batch_id
                    page.result = result
            else:
                page.error = line.error
        elif outcome.flag == Flag.REFUSED:
            page.error = _validation_error(part, outcome.offset)
        elif outcome.flag == Flag.CANCELLED:
            page.error = BatchCancelledError(
                f"page {record.label} of {record.source} was not read: the job was cancelled before its batch ran it."
            )
        else:
            page.error = ServerError(
                f"the service returned no answer for page {record.label} of {record.source} in batch "
                f"{part.batch_id} (round {part.round} of at most {self._state.max_rounds}).",
                code="missing_output",
            )
        return page

    def estimate(
        self,
        *,
        output_tokens_per_page: int = OUTPUT_TOKENS_PER_PAGE,
        prompt_tokens_per_page: int = PROMPT_TOKENS_PER_PAGE,
    ) -> BatchCost:
        """What the job's first-round lines should cost if each succeeds once (nothing is sent): the image tokens
        of each line from the size its page is sent at and the budget it states (as
        :func:`qwen_ocr.imaging.tokens_for_size` counts them), the prompt and output tokens assumed as
        :func:`qwen_ocr.cost.estimate_document` assumes them. ``lines_billed`` is the lines counted.

        Example::

            est = job.estimate()
            print(f"{est.lines_billed} lines: ~${est.usd:.4f} (~${est.realtime_usd:.4f} in real time)")
        """
        self._reload()
        state = self._state
        spec = model_spec(state.model) if state.model != TEST_MODEL else None
        lines = image_tokens = 0
        for record in self._store.pages():
            if record.kind != "line":
                continue
            lines += 1
            call = record.call or {}
            size = call.get("sent_size") or call.get("original_size")
            if spec is None:
                continue
            if isinstance(size, list) and len(size) == 2:  # resized by the service at the budget the line states
                image_tokens += tokens_for_size(
                    int(size[0]), int(size[1]), model=spec,
                    min_pixels=call.get("min_pixels"), max_pixels=call.get("max_pixels"),
                )  # fmt: skip
            else:  # a page sent by URL whose size is not known: counted at the most an image may take
                image_tokens += spec.max_image_tokens
        tokens_in = image_tokens + lines * prompt_tokens_per_page
        tokens_out = lines * (min(output_tokens_per_page, spec.max_tokens) if spec is not None else 0)
        return _priced(state, lines, tokens_in, tokens_out, image_tokens)

    def cost(self) -> BatchCost:
        """What the job's successful lines cost at the Batch price (and would have in real time)."""
        self._reload()
        state = self._state
        billed = sum(p.billed for p in state.parts)
        tokens_in = sum(p.input_tokens for p in state.parts)
        tokens_out = sum(p.output_tokens for p in state.parts)
        return _priced(state, billed, tokens_in, tokens_out, sum(p.image_tokens for p in state.parts))

    def delete_files(self) -> int:
        """Delete the job's files at the service (its uploaded input files, and the output and error files it
        downloaded): the account keeps at most 10,000 files / 100 GB. The job's own copies in ``job_dir`` stay, so
        :meth:`results` still works. Only once the job is done; files already gone are skipped. Returns how many
        were deleted.

        Raises:
            BatchNotFinishedError: the job is not done (its files are still needed).
        """
        with self._store.locked():
            self._reload()
            state = self._state
            if not state.done:
                raise BatchNotFinishedError(
                    f"the job {state.job_id} is not finished: its files are still needed; call job.wait() first."
                )
            deleted = 0
            for part in state.parts:
                for file_id in (part.file_id, part.output_file_id, part.error_file_id):
                    if file_id and file_id not in part.deleted:
                        try:
                            deleted += self._api.delete(file_id)
                        except NotFoundError:
                            pass  # gone already (deleted by hand, or after the 30 days the service keeps them)
                        part.deleted.append(file_id)
                        self._save()
        return deleted

    # -- driving ------------------------------------------------------------------------------------------------

    def _save(self) -> None:
        self._store.save(self._state)

    def _reload(self) -> None:
        """The state as the job's files hold it now (another process may have moved the job on)."""
        if self._store.exists():
            self._state = self._store.load()

    def _drive(self, *, poll: bool = True, sent: Callable[[PartState], None] | None = None) -> None:
        """One pass over the batches, holding the job's lock: send what is not sent (or mark it skipped when
        cancelled), poll what runs (``poll``), collect what ended (which may add follow-up batches, handled in the
        same pass). ``sent(part)`` is called as each batch is uploaded and created."""
        with self._store.locked():
            self._reload()
            self._pass(poll, sent)

    def _pass(self, poll: bool, sent: Callable[[PartState], None] | None = None) -> None:
        position = 0
        while position < len(self._state.parts):
            part = self._state.parts[position]
            position += 1
            if part.finished:
                continue
            if part.stage != "created":
                if self._state.cancelled:
                    self._skip(part)
                else:
                    self._send(part)
                    if sent is not None:
                        sent(part)
                continue
            if not _terminal(part) and poll and part.batch_id and self._update(part, self._api.get(part.batch_id)):
                self._save()
            if _terminal(part):
                self._collect(part)

    def _send(self, part: PartState) -> None:
        """Upload and create one batch, each step journaled before and after, and looked for first when a previous
        run may have done it."""
        api = self._api
        if part.stage in ("built", "uploading"):
            resumed = part.stage == "uploading"
            part.stage = "uploading"
            self._save()
            _checkpoint("upload:before", part)
            found = api.find_file(part.filename) if resumed else None
            file = found or api.upload(self._store.path(part.file), filename=part.filename)
            _checkpoint("upload:after", part)
            part.file_id, part.stage = file.id, "uploaded"
            self._save()
        if part.stage in ("uploaded", "creating"):
            assert part.file_id is not None
            resumed = part.stage == "creating"
            part.stage = "creating"
            self._save()
            _checkpoint("create:before", part)
            batch = api.find_batch(part.tag, input_file_id=part.file_id) if resumed else None
            if batch is None:
                batch = api.create(
                    part.file_id,
                    endpoint=self._state.endpoint,
                    completion_window=self._state.completion_window,
                    metadata=self._metadata(part),
                )
            _checkpoint("create:after", part)
            part.batch_id, part.stage = batch.id, "created"
            self._update(part, batch)
            self._save()

    def _skip(self, part: PartState) -> None:
        """A batch of a cancelled job that was not created: it never will be (one whose creation may have happened
        is looked for, and cancelled when found)."""
        if part.stage == "creating" and part.file_id:
            batch = self._api.find_batch(part.tag, input_file_id=part.file_id)
            if batch is not None:
                part.batch_id, part.stage = batch.id, "created"
                self._update(part, batch if batch.terminal else self._api.cancel(batch.id))
                self._save()
                return
        part.stage = "skipped"
        self._sweep(part, "cancelled")
        part.indexed = True
        self._save()

    def _metadata(self, part: PartState) -> dict[str, str]:
        metadata = {k: v for k, v in self._state.metadata.items() if k != "ds_name"}
        metadata["ds_name"] = part.tag
        return metadata

    @staticmethod
    def _update(part: PartState, batch: BatchObject) -> bool:
        """Keep what the service says of the batch; whether anything changed."""
        before = (part.status, part.request_counts, part.output_file_id, part.error_file_id)
        part.status = batch.status
        part.request_counts = batch.request_counts
        part.output_file_id = batch.output_file_id
        part.error_file_id = batch.error_file_id
        if batch.status == "failed":
            part.problems = [problem.model_dump(exclude_none=True) for problem in batch.problems] or [
                {"code": "batch_failed", "message": "the service failed the batch without saying why."}
            ]
        return before != (part.status, part.request_counts, part.output_file_id, part.error_file_id)

    def _collect(self, part: PartState) -> None:
        """A batch that ended: download its output and error files, record every page's outcome (and write the
        answers to the client's cache), mark the pages it did not answer, start the follow-up of its retryable
        failures."""
        for which, file_id in ((0, part.output_file_id), (1, part.error_file_id)):
            if file_id:
                self._api.download(file_id, self._store.path(_out_file(part, which)))
        part.billed = part.input_tokens = part.output_tokens = part.image_tokens = 0
        pages = self._store.pages_path.open("rb")
        offsets = self._store.offsets_path.open("rb")
        try:
            with open(self._store.index_path, "r+b") as index:
                for which, file_id in ((0, part.output_file_id), (1, part.error_file_id)):
                    if file_id:
                        self._index(part, which, index, pages, offsets)
        finally:
            pages.close()
            offsets.close()
        if part.problems:
            self._locate(part)
        self._sweep(part, part.status or "completed")
        part.indexed = True
        self._save()

    def _index(self, part: PartState, which: int, index: IO[bytes], pages: IO[bytes], offsets: IO[bytes]) -> None:
        state, client = self._state, self._client
        with open(self._store.path(_out_file(part, which)), "rb") as handle:
            offset = 0
            for raw in handle:
                line = read_line(raw)
                if line.n is not None and line.n < state.pages:
                    JobStore.write_outcome(index, line.n, Outcome(part.round, line.flag, which, part.part, offset))
                    if line.body is not None:
                        usage = compatible.parse_usage(line.body.get("usage"))
                        part.billed += 1
                        part.input_tokens += usage.input_tokens
                        part.output_tokens += usage.output_tokens
                        part.image_tokens += usage.image_tokens
                        if client.cache is not None and state.keyed_for is not None:
                            self._cache(line.body, self._store.page(line.n, pages, offsets))
                offset += len(raw)

    def _cache(self, body: dict[str, Any], record: PageRecord) -> None:
        """Store the answer as the client would have stored its own real-time reading of the page."""
        if record.key is None:
            return
        try:
            result = _read_answer(body, record, self._state.region)
        except QwenOCRError:
            return  # an answer that cannot be read is not cached (it is the page's error in results())
        if self._state.keyed_for == "dashscope":
            result = result.model_copy(update={"provider": "dashscope"})
        self._client._cache_put(record.key, result)

    def _sweep(self, part: PartState, status: str) -> None:
        """Mark the pages of ``part`` its files said nothing of, and send its retryable failures again in a
        follow-up batch while rounds are left (not after a cancel)."""
        state = self._state
        missing = {"failed": Flag.REFUSED, "cancelled": Flag.CANCELLED}.get(status, Flag.RETRYABLE)
        again = not state.cancelled and part.round < state.max_rounds and status != "failed"
        writer = LineWriter(self._store, state, part.round + 1, TEST_LIMITS if state.model == TEST_MODEL else LIMITS)
        with open(self._store.path(part.file), "rb") as lines, open(self._store.index_path, "r+b") as index:
            for number, raw in enumerate(lines, start=1):
                n = _line_page(raw)
                if n is None or n >= state.pages:
                    continue
                outcome = JobStore.read_outcome(index, n)
                if outcome.round != part.round or outcome.part != part.part:
                    outcome = Outcome(part.round, missing, 2, part.part, number)
                    JobStore.write_outcome(index, n, outcome)
                if again and outcome.flag == Flag.RETRYABLE:
                    writer.add(raw)
        follow = writer.close()
        if follow:
            logger.info(
                "qwen_ocr: %d lines of batch %s failed and are sent again (round %d)",
                sum(p.lines for p in follow),
                part.batch_id,
                part.round + 1,
            )
        state.parts.extend(follow)

    def _locate(self, part: PartState) -> None:
        """Name the page of each line a validation problem points at."""
        wanted = {int(p["line"]): p for p in part.problems if isinstance(p.get("line"), int)}
        if not wanted:
            return
        pages = self._store.pages_path.open("rb")
        offsets = self._store.offsets_path.open("rb")
        try:
            with open(self._store.path(part.file), "rb") as lines:
                for number, raw in enumerate(lines, start=1):
                    problem = wanted.get(number)
                    n = _line_page(raw) if problem is not None else None
                    if problem is not None and n is not None and n < self._state.pages:
                        record = self._store.page(n, pages, offsets)
                        problem["source"], problem["page_label"] = record.source, record.label
        finally:
            pages.close()
            offsets.close()


class _Files:
    """The open output and error files a job's results are read from."""

    def __init__(self, store: JobStore) -> None:
        self._store = store
        self._open: dict[tuple[int, int], IO[bytes]] = {}

    def line(self, part: PartState, which: int, offset: int) -> bytes:
        key = (part.part, which)
        handle = self._open.get(key)
        if handle is None:
            handle = self._open[key] = self._store.path(_out_file(part, which)).open("rb")
        handle.seek(offset)
        return handle.readline()

    def close(self) -> None:
        for handle in self._open.values():
            handle.close()
        self._open.clear()


def integration_results(
    job: BatchJob, *, on_error: OnError, wait: bool, poll_interval: float, timeout: float | None, made_by: str
) -> Iterator[PageResult]:
    """The pages of ``job`` for an integration (``QwenOCRLoader.from_batch``, ``QwenOCRReader.from_batch``: named
    by ``made_by``): after following it to its end when ``wait`` is on; a job not finished raises
    :class:`~qwen_ocr.errors.BatchNotFinishedError` saying how to wait for it, in the integration's words."""
    if wait:
        job.wait(poll_interval=poll_interval, timeout=timeout)
    try:
        return job.results(on_error=on_error)
    except BatchNotFinishedError as exc:
        raise BatchNotFinishedError(
            f"{exc.message.removesuffix(' call job.wait() first.').rstrip(';')}: wait for it first "
            f"(BatchJob.open(job_dir).wait(), or qwen-ocr batch wait), or pass wait=True to {made_by}."
        ) from None


def _read_answer(body: dict[str, Any], record: PageRecord, region: str | None) -> Any:
    call = call_from_record(record.call or {}, region)
    content = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return compatible.parse_response(200, None, content, call)


def _out_file(part: PartState, which: int) -> str:
    return f"out/p{part.part}.{'output' if which == 0 else 'error'}.jsonl"


_LINE_ID = re.compile(rb'"custom_id"\s*:\s*"(p\d{1,12})"')


def _line_page(raw: bytes) -> int | None:
    """The page of an input line (its ``custom_id`` comes first: the line is not decoded whole)."""
    match = _LINE_ID.search(raw, 0, 200)
    return page_number(match.group(1).decode()) if match else None


def _terminal(part: PartState) -> bool:
    return part.status in ("completed", "failed", "expired", "cancelled")


def _shown_status(part: PartState) -> str:
    if part.stage == "skipped":
        return "skipped"
    if part.stage == "created" and part.status:
        return part.status
    return "uploaded" if part.stage in ("uploaded", "creating") else "pending"


def _validation_error(part: PartState, line: int | None = None) -> BatchValidationError:
    problems = [BatchProblem.model_validate(p) for p in part.problems]
    mine = next((p for p in problems if line is not None and p.line == line), None)
    first = mine or (problems[0] if problems else BatchProblem())
    where = f"line {first.line}" if first.line is not None else "the input file"
    raw = next((p for p in part.problems if p.get("line") == first.line), {})
    if raw.get("source"):
        where += f" (page {raw.get('page_label')} of {raw.get('source')})"
    message = f"the service refused batch {part.batch_id} at validation: {where}: {first.code}: {first.message}"
    if line is not None and mine is None:
        message += f"; this page (line {line}) was not run"
    return BatchValidationError(
        message + ". Nothing of the batch was run or billed.",
        line=first.line,
        param=first.param,
        batch_id=part.batch_id,
        errors=part.problems,
        code=first.code or None,
    )


def _check_poll_interval(poll_interval: float) -> None:
    if not poll_interval > 0 or not math.isfinite(poll_interval):
        raise InvalidArgumentError(f"poll_interval={poll_interval!r} must be a positive number of seconds.")


def _pause(job_id: str, start: float, poll_interval: float, timeout: float | None) -> float:
    """The seconds to sleep before the next look at a job waited for since ``start`` (``time.monotonic()``);
    :class:`BatchWaitTimeoutError` once ``timeout`` seconds have passed."""
    waited = time.monotonic() - start
    if timeout is not None and waited >= timeout:
        raise BatchWaitTimeoutError(
            f"the job {job_id} is not finished after {timeout:g} s; it goes on at the service: wait again, or reopen "
            "it later with BatchJob.open(job_dir)."
        )
    return poll_interval if timeout is None else max(0.0, min(poll_interval, timeout - waited))


def _show(bar: Any, state: JobState) -> None:
    total = sum(p.lines for p in state.parts)
    done = sum(
        p.lines if p.finished else ((p.request_counts.completed + p.request_counts.failed) if p.request_counts else 0)
        for p in state.parts
    )
    bar.total = total
    bar.n = done
    bar.refresh()


def _priced(state: JobState, lines: int, tokens_in: int, tokens_out: int, image_tokens: int) -> BatchCost:
    """The :class:`BatchCost` of these lines and tokens at the Batch price and the real-time price of the job's
    model and region (free for ``batch-test-model``; ``None`` where no price is recorded)."""
    region = state.region or BATCH_REGION
    usd: float | None
    realtime: float | None
    if state.model == TEST_MODEL:
        usd = realtime = 0.0
    else:
        try:
            usd = price_usd(tokens_in, tokens_out, model=state.model, region=region, batch=True)
            realtime = price_usd(tokens_in, tokens_out, model=state.model, region=region)
        except InvalidArgumentError:
            usd = realtime = None
    return BatchCost(
        model=state.model,
        region=region,
        lines_billed=lines,
        input_tokens=tokens_in,
        output_tokens=tokens_out,
        image_tokens=image_tokens,
        usd=usd,
        realtime_usd=realtime,
    )


def _check_window(window: object) -> str:
    match = _WINDOW.fullmatch(window) if isinstance(window, str) else None
    if match is not None:
        hours = int(match.group(1)) * (24 if match.group(2) == "d" else 1)
        if 24 <= hours <= 336:
            return str(window)
    raise InvalidArgumentError(
        f"completion_window={window!r}; use '24h' to '336h' (or '1d' to '14d').", code="InvalidCompletionWindow"
    )


def _check_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    tags = dict(metadata or {})
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgumentError("metadata must map names to strings, e.g. {'ds_name': 'june scans'}.")
    if len(tags.get("ds_name", "")) > 60:
        raise InvalidArgumentError("metadata['ds_name'] may have at most 60 characters (the job's tag is added).")
    if len(tags.get("ds_description", "")) > 200:
        raise InvalidArgumentError("metadata['ds_description'] may have at most 200 characters.")
    return tags


def _describe_options(read: ReadOptions) -> dict[str, Any]:
    """The reading options a job keeps (for people and integrations): task, schema, prompt, pages, text layer."""
    ocr = read.ocr
    pages = read.pages
    return {
        "task": read.task.value if read.task is not None else None,
        "schema": ocr.get("schema") if isinstance(ocr.get("schema"), (dict, list, str)) else None,
        "prompt": ocr.get("prompt"),
        "pages": pages if isinstance(pages, (str, int, list)) else None,
        "text_layer": read.text_layer,
    }

"""``QwenOCRBatchLoader``: the pages of a finished Batch API job (:mod:`qwen_ocr.batch`) as LangChain Documents.

Made by :meth:`QwenOCRLoader.from_batch <langchain_qwen_ocr.document_loaders.QwenOCRLoader.from_batch>`. The pages
come from :meth:`qwen_ocr.batch.BatchJob.results` (input order, read from the job's files: nothing is sent) and go
through the same assembly as a real-time :class:`~langchain_qwen_ocr.document_loaders.QwenOCRLoader` (the
:class:`~qwen_ocr.assembly.Collator` of :mod:`~langchain_qwen_ocr.document_loaders.documents`), so ``page_content``,
``id`` and metadata are a real-time read's, with ``batch`` (the id of the batch that read the page) added; request
ids and token counts are the batch's own.

Example::

    from langchain_qwen_ocr.document_loaders import QwenOCRLoader

    docs = QwenOCRLoader.from_batch("jobs/june").load()                  # a finished job
    docs = QwenOCRLoader.from_batch("jobs/june", wait=True, poll_interval=60, mode="single").load()
"""

from __future__ import annotations

import os
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from qwen_ocr.assembly import DEFAULT_PAGE_SEPARATOR, MODES, Mode
from qwen_ocr.batch import BatchJob
from qwen_ocr.batch._job import integration_results
from qwen_ocr.engine import ON_ERROR, OnError
from qwen_ocr.errors import InvalidArgumentError
from qwen_ocr.reading import PageResult
from qwen_ocr.rendering import check_content_format

from .documents import Assembler, ContentFormat

if TYPE_CHECKING:
    from qwen_ocr import QwenOCR

__all__ = ["QwenOCRBatchLoader"]


class QwenOCRBatchLoader(BaseLoader):
    """The Documents of a Batch API job's pages, assembled as :class:`QwenOCRLoader` assembles a real-time read.

    Get one from :meth:`QwenOCRLoader.from_batch` (the same arguments). ``load()`` / ``lazy_load()`` give the
    Documents a real-time read of the same sources with the job's options gives (same ``page_content``, ``id`` and
    metadata, plus ``batch``: the batch that read the page), in input order, read from the job's files (nothing is
    sent). What to read, and how, was fixed when the job was submitted (task, schema, prompt, pages, text layer);
    this loader only chooses how the pages become Documents, what a failed page does and whether to wait for a job
    still running.

    Args:
        job_dir: the job's directory (``client.batch.submit(..., job_dir=...)``, ``qwen-ocr batch submit --job``).
        client: the client to open the job with (it must talk to the host the job was submitted to); default: one
            for that host, its key from the environment (needed only to wait).
        mode, content_format, page_separator, include_lines: as for :class:`QwenOCRLoader`.
        on_error: a page or file that failed: ``"raise"`` its error (default), ``"skip"`` it or ``"mark"`` it.
        wait: follow a job still running to its end first (:meth:`qwen_ocr.batch.BatchJob.wait`, which also sends
            retryable failures again), polling every ``poll_interval`` seconds for at most ``timeout`` seconds;
            off: a job not finished raises :class:`~qwen_ocr.errors.BatchNotFinishedError`.

    Raises:
        BatchJobError: ``job_dir`` holds no job, or ``client`` talks to another host (at construction, not at load).
        BatchNotFinishedError: from :meth:`lazy_load`, when the job is not finished and ``wait`` is off.
        InvalidArgumentError: a wrong argument (at construction).

    Example::

        loader = QwenOCRLoader.from_batch("jobs/june", on_error="mark")
        for doc in loader.lazy_load():
            print(doc.metadata["source"], doc.metadata["page"], doc.metadata["batch"], doc.page_content[:60])
    """

    def __init__(
        self,
        job_dir: str | os.PathLike[str],
        *,
        client: QwenOCR | None = None,
        mode: Mode = "page",
        content_format: ContentFormat = "markdown",
        page_separator: str = DEFAULT_PAGE_SEPARATOR,
        include_lines: bool = False,
        on_error: OnError = "raise",
        wait: bool = False,
        poll_interval: float = 30.0,
        timeout: float | None = None,
    ) -> None:
        if mode not in MODES:
            raise InvalidArgumentError(f"mode={mode!r}; use one of {', '.join(map(repr, MODES))}.")
        check_content_format(content_format)
        if on_error not in ON_ERROR:
            raise InvalidArgumentError(f"on_error={on_error!r}; use one of {', '.join(map(repr, ON_ERROR))}.")
        if not isinstance(poll_interval, (int, float)) or isinstance(poll_interval, bool) or not poll_interval > 0:
            raise InvalidArgumentError(f"poll_interval={poll_interval!r} must be a positive number of seconds.")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
            raise InvalidArgumentError(f"timeout={timeout!r} must be a number of seconds (or None: no limit).")
        self.job_dir = Path(job_dir)
        self.client = client
        self.mode, self.content_format, self.page_separator = mode, content_format, page_separator
        self.include_lines, self.on_error = include_lines, on_error
        self.wait, self.poll_interval, self.timeout = wait, float(poll_interval), timeout
        BatchJob.open(self.job_dir, client=client).close()  # a job, of this client's host: said now, not at load

    def __repr__(self) -> str:
        return (
            f"QwenOCRLoader.from_batch({str(self.job_dir)!r}, mode={self.mode!r}, "
            f"content_format={self.content_format!r}, on_error={self.on_error!r}, wait={self.wait!r})"
        )

    def lazy_load(self) -> Iterator[Document]:
        """The job's Documents, file by file and page by page in input order, read from the job's files a page at
        a time (after waiting for the job when ``wait`` is on)."""
        with BatchJob.open(self.job_dir, client=self.client) as job:
            pages = integration_results(
                job, on_error=self.on_error, wait=self.wait, poll_interval=self.poll_interval, timeout=self.timeout,
                made_by="QwenOCRLoader.from_batch",
            )  # fmt: skip
            assembler = Assembler(
                self.mode, self.content_format, self.page_separator, job.options.get("pages"), self.include_lines
            )
            yield from assembler.collect(_generator(pages))


def _generator(pages: Iterator[PageResult]) -> Generator[PageResult, None, None]:
    yield from pages

"""``QwenOCRBatchReader``: the pages of a Batch API job (:mod:`qwen_ocr.batch`) as LlamaIndex Documents.

Made by :meth:`QwenOCRReader.from_batch <llamaindex_qwen_ocr.QwenOCRReader.from_batch>`. The job names its own
files, so ``load_data()`` takes no ``file_path``: it gives every selected page of the job, in input order, from
:meth:`qwen_ocr.batch.BatchJob.results` (read from the job's files; nothing is sent), each built by the same
:func:`~llamaindex_qwen_ocr.readers.base.page_document` as a real-time :class:`QwenOCRReader` page, so text, id and
metadata are a real-time read's, with ``batch`` (the id of the batch that read the page, hidden from embeddings)
added; request ids and token counts are the batch's own. ``extra_info`` is merged into every page, as
``QwenOCRReader.load_data`` merges it. (Bytes without a name: the real-time reader names them after their content,
:func:`qwen_ocr.sources.named_sources`; submit ``named_sources(data)`` for the job's ids to be the reader's.)

Example::

    from llamaindex_qwen_ocr import QwenOCRReader

    docs = QwenOCRReader.from_batch("jobs/june").load_data()
    docs = QwenOCRReader.from_batch("jobs/june", wait=True, poll_interval=60).load_data(extra_info={"lot": "june"})
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import Any

from llama_index.core.readers.base import BasePydanticReader
from llama_index.core.schema import Document
from pydantic import Field, PrivateAttr, model_validator

from qwen_ocr import QwenOCR  # a field's type: pydantic resolves it at run time
from qwen_ocr.batch import BatchJob
from qwen_ocr.batch._job import integration_results
from qwen_ocr.engine import OnError, StrictSettings, fatal_noted
from qwen_ocr.rendering import ContentFormat

from .base import page_document

__all__ = ["QwenOCRBatchReader"]

logger = logging.getLogger("llamaindex_qwen_ocr")

_UNNAMED = re.compile(r"sha256:[0-9a-f]{32}|<bytes #\d+>")
"""The names of bytes without a name (:func:`qwen_ocr.sources.content_key`'s, as the real-time reader names them,
or ``<bytes #n>``, as a job submitted with bare bytes does): such a source has no ``file_name`` or ``file_path``."""


class QwenOCRBatchReader(StrictSettings, BasePydanticReader):
    """The Documents of a Batch API job's pages, built as :class:`QwenOCRReader` builds a real-time read's.

    Get one from :meth:`QwenOCRReader.from_batch` (the settings are described there). What was read, and how (task,
    schema, prompt, pages, text layer), was fixed when the job was submitted; this reader chooses the page text's
    format, what a failed page does and whether to wait for a job still running. An unknown setting is refused.

    Raises:
        BatchJobError: ``job_dir`` holds no job, or ``client`` talks to another host (at construction).
        BatchNotFinishedError: from :meth:`lazy_load_data`, when the job is not finished and ``wait`` is off.

    Example::

        reader = QwenOCRReader.from_batch("jobs/june", on_error="mark")
        for doc in reader.lazy_load_data():
            print(doc.metadata["file_name"], doc.metadata["page_label"], doc.metadata["batch"], doc.text[:60])
    """

    job_dir: str = Field(description="The job's directory.")
    content_format: ContentFormat = Field(
        default="markdown", description="The page text: 'markdown' (default), 'text' or the model's 'raw' text."
    )
    on_error: OnError = Field(
        default="raise",
        description="A failed page or file: 'raise' its error, 'skip' it, or 'mark' it (empty text, error metadata).",
    )
    wait: bool = Field(default=False, description="Follow a job still running to its end before reading it.")
    poll_interval: float = Field(default=30.0, gt=0, description="Seconds between two looks at the service (wait).")
    timeout: float | None = Field(default=None, ge=0, description="The longest wait in seconds (None: no limit).")
    client: QwenOCR | None = Field(
        default=None, exclude=True, repr=False, description="The client to open the job with."
    )
    _warned: set[str] = PrivateAttr(default_factory=set)

    @classmethod
    def class_name(cls) -> str:
        """The stable name used in serialisation."""
        return "QwenOCRBatchReader"

    @model_validator(mode="after")
    def _a_job(self) -> QwenOCRBatchReader:
        BatchJob.open(self.job_dir, client=self.client).close()  # a job, of this client's host: said now
        return self

    def lazy_load_data(self, extra_info: dict[str, Any] | None = None) -> Iterator[Document]:
        """Each selected page's ``Document``, in input order, read from the job's files a page at a time (after
        waiting for the job when ``wait`` is on); ``load_data()`` gives them as a list.

        Args:
            extra_info: metadata merged into every page (the page's own keys win).
        """
        with (
            BatchJob.open(self.job_dir, client=self.client) as job,
            fatal_noted(self._warned, logger, "QwenOCRBatchReader"),
        ):
            pages = integration_results(
                job, on_error=self.on_error, wait=self.wait, poll_interval=self.poll_interval, timeout=self.timeout,
                made_by="QwenOCRReader.from_batch",
            )  # fmt: skip
            unnamed: set[str] = set()
            for page in pages:
                if _UNNAMED.fullmatch(page.source):
                    unnamed.add(page.source)
                yield page_document(page, unnamed, extra_info, self.content_format)

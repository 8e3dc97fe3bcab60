"""Batch jobs: whole archives through DashScope's Batch API at half the real-time price, resumable, nothing lost
or billed twice.

``client.batch.submit(sources, job_dir=...)`` turns every selected page of ``sources`` (what
:func:`qwen_ocr.read_documents` takes) into one line of a batch input file, the chat body ``protocol="openai"``
sends in real time, uploads the files and creates the batches, and returns: the job goes on at the service (within
its ``completion_window``). Any process can then reopen it from ``job_dir`` with :meth:`BatchJob.open`, follow it
(:meth:`BatchJob.wait`, which also sends retryable failures again in follow-up batches) and read its pages
(:meth:`BatchJob.results`: :class:`~qwen_ocr.PageResult` objects in input order, as the engine yields them). The
answers also go to the client's cache, so reading the same pages in real time afterwards sends nothing.

**The cache.** Each answer is stored under the key of the request the submitting client's own protocol would
send for that page in real time (:func:`qwen_ocr.cache.request_key` over its host, ``X-DashScope-*`` headers and
body): with ``protocol="openai"`` that body is the line's own; with the native protocol it is the native body of
the same call. A later :func:`~qwen_ocr.read_documents` (or a loader) over the same pages with the same options
then answers every page from the cache. Not cached: the test model's answers (they are no readings), and for a
native-protocol client the ``advanced_recognition`` and ``key_information_extraction`` answers (their native reply
carries ``words_info`` / ``kv_result``, which a batch answer, text only, lacks: a real-time read would differ).

**Resuming.** One process (or thread) drives a job at a time (an advisory lock on ``job_dir/job.lock``); any
number may reopen it. A job stopped between an upload and its record looks for the file by its name (listing the
account's files), one stopped between a create and its record for the batch by its ``ds_name`` tag.

OCR batches are served in the Beijing region only (``region="cn"``), for ``qwen-vl-ocr`` and
``qwen-vl-ocr-latest``; ``model="batch-test-model"`` is the vendor's free end-to-end test.

Example::

    from qwen_ocr import QwenOCR
    from qwen_ocr.batch import BatchJob

    with QwenOCR(region="cn") as client:
        job = client.batch.submit(["scans/", "fax.pdf"], job_dir="jobs/june")
    ...                                                        # hours later, anywhere
    with QwenOCR(region="cn") as client:
        job = BatchJob.open("jobs/june", client=client)
        job.wait(poll_interval=60, show_progress=True)
        for page in job.results():
            print(page.source, page.label, page.text if page.ok else page.error)
        print(job.cost())                                      # at the Batch price
"""

from __future__ import annotations

from ..errors import (
    BatchCancelledError,
    BatchError,
    BatchExpiredError,
    BatchJobError,
    BatchLineTooLargeError,
    BatchNotFinishedError,
    BatchUnavailableError,
    BatchValidationError,
    BatchWaitTimeoutError,
)
from ._api import (
    CHAT_ENDPOINT,
    TERMINAL_STATUSES,
    TEST_ENDPOINT,
    BatchAPI,
    BatchList,
    BatchObject,
    BatchProblem,
    FileObject,
    RequestCounts,
)
from ._async import AsyncBatches, AsyncBatchJob
from ._job import BatchCost, Batches, BatchJob, BatchStatus, JobStatus
from ._lines import BATCH_MODELS, BATCH_REGION, TEST_MODEL, BatchPage, Limits, check_batch_target

__all__ = [
    "BATCH_MODELS",
    "BATCH_REGION",
    "CHAT_ENDPOINT",
    "TERMINAL_STATUSES",
    "TEST_ENDPOINT",
    "TEST_MODEL",
    "AsyncBatchJob",
    "AsyncBatches",
    "BatchAPI",
    "BatchCancelledError",
    "BatchCost",
    "BatchError",
    "BatchExpiredError",
    "BatchJob",
    "BatchJobError",
    "BatchLineTooLargeError",
    "BatchList",
    "BatchNotFinishedError",
    "BatchObject",
    "BatchPage",
    "BatchProblem",
    "BatchStatus",
    "BatchUnavailableError",
    "BatchValidationError",
    "BatchWaitTimeoutError",
    "Batches",
    "FileObject",
    "JobStatus",
    "Limits",
    "RequestCounts",
    "check_batch_target",
]

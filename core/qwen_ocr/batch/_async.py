"""Batch jobs from async code: ``aclient.batch`` (:class:`AsyncBatches`) and :class:`AsyncBatchJob`.

A batch job is a handful of calls spread over hours, and file work in between (preparing pages, writing lines,
reading output files): the async twins run the sync job (:class:`~qwen_ocr.batch.BatchJob`) in worker threads, with
a sync client made from the async one (:meth:`QwenOCR.from_client <qwen_ocr.QwenOCR.from_client>`: the same
settings, key, cache and pacer; connections of its own), and never block the event loop. :meth:`AsyncBatchJob.wait`
sleeps on the loop between polls, so cancelling it stops it at once (the job goes on at the service).

Example::

    async with AsyncQwenOCR(region="cn") as aclient:
        job = await aclient.batch.submit("scans/", job_dir="jobs/june")
        await job.wait(poll_interval=60)
        async for page in job.results():
            print(page.source, page.label, page.text)
        await job.aclose()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._job import BatchCost, BatchJob, JobStatus, _check_poll_interval, _pause, _validation_error

if TYPE_CHECKING:
    from .._async_client import AsyncQwenOCR
    from ..engine import OnError
    from ..reading import PageResult
    from ..sources import Sources

__all__ = ["AsyncBatchJob", "AsyncBatches"]


def _sync_client(aclient: AsyncQwenOCR) -> Any:
    from .._client import QwenOCR

    return QwenOCR.from_client(aclient)


class AsyncBatches:
    """``aclient.batch``: the async twin of :class:`~qwen_ocr.batch.Batches` (same arguments)."""

    def __init__(self, aclient: AsyncQwenOCR) -> None:
        self._aclient = aclient

    def __repr__(self) -> str:
        return f"AsyncBatches(base_url={self._aclient.base_url!r})"

    async def submit(
        self, sources: Sources | Iterable[Any], *, show_progress: bool = False, **arguments: Any
    ) -> AsyncBatchJob:
        """Submit a job (see :meth:`Batches.submit <qwen_ocr.batch.Batches.submit>`), in a worker thread;
        ``show_progress``: the bars of the pages prepared, then of the lines uploaded."""
        client = _sync_client(self._aclient)
        try:
            job = await asyncio.to_thread(
                lambda: client.batch.submit(sources, show_progress=show_progress, **arguments)
            )
        except BaseException:
            client.close()
            raise
        job._owns_client = True
        return AsyncBatchJob(job)

    async def open(self, job_dir: str | Path) -> AsyncBatchJob:
        """Reopen a job with this client (see :meth:`BatchJob.open <qwen_ocr.batch.BatchJob.open>`)."""
        return await AsyncBatchJob.open(job_dir, client=self._aclient)


class AsyncBatchJob:
    """The async twin of :class:`~qwen_ocr.batch.BatchJob`; close it with :meth:`aclose` (or ``async with``)."""

    def __init__(self, job: BatchJob) -> None:
        self.job = job
        """The sync job it runs."""

    @classmethod
    async def open(cls, job_dir: str | Path, *, client: AsyncQwenOCR | None = None) -> AsyncBatchJob:
        """Reopen the job in ``job_dir``; ``client``: an async client of the job's host (default: a new client)."""
        sync = _sync_client(client) if client is not None else None
        try:
            job = await asyncio.to_thread(BatchJob.open, job_dir, client=sync)
        except BaseException:
            if sync is not None:
                sync.close()
            raise
        if sync is not None:
            job._owns_client = True
        return cls(job)

    def __repr__(self) -> str:
        return f"Async{self.job!r}"

    async def aclose(self) -> None:
        """Close the sync client this job made."""
        await asyncio.to_thread(self.job.close)

    async def __aenter__(self) -> AsyncBatchJob:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def status(self, *, refresh: bool = True) -> JobStatus:
        """See :meth:`BatchJob.status <qwen_ocr.batch.BatchJob.status>`."""
        return await asyncio.to_thread(self.job.status, refresh=refresh)

    async def wait(self, *, poll_interval: float = 30.0, timeout: float | None = None) -> JobStatus:
        """See :meth:`BatchJob.wait <qwen_ocr.batch.BatchJob.wait>`; the waits between polls are on the loop."""
        _check_poll_interval(poll_interval)
        start = time.monotonic()
        job = self.job
        while True:
            await asyncio.to_thread(job._drive)
            if job._state.done:
                break
            await asyncio.sleep(_pause(job.job_id, start, poll_interval, timeout))
        refused = [part for part in job._state.parts if part.problems]
        if refused:
            raise _validation_error(refused[0])
        return await self.status(refresh=False)

    async def cancel(self) -> JobStatus:
        """See :meth:`BatchJob.cancel <qwen_ocr.batch.BatchJob.cancel>`."""
        return await asyncio.to_thread(self.job.cancel)

    async def delete_files(self) -> int:
        """See :meth:`BatchJob.delete_files <qwen_ocr.batch.BatchJob.delete_files>`."""
        return await asyncio.to_thread(self.job.delete_files)

    async def cost(self) -> BatchCost:
        """See :meth:`BatchJob.cost <qwen_ocr.batch.BatchJob.cost>`."""
        return await asyncio.to_thread(self.job.cost)

    async def results(self, *, on_error: OnError = "mark") -> AsyncIterator[PageResult]:
        """See :meth:`BatchJob.results <qwen_ocr.batch.BatchJob.results>`: the same pages, read in a worker thread
        a page at a time."""
        pages = self.job.results(on_error=on_error)
        try:
            while (page := await asyncio.to_thread(next, pages, None)) is not None:
                yield page
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                await asyncio.to_thread(close)

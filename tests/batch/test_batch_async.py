"""``AsyncQwenOCR.batch``: the same job from async code, the event loop never blocked, ``wait`` cancellable."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from qwen_ocr import AsyncQwenOCR, read_documents
from qwen_ocr.batch import AsyncBatchJob, BatchWaitTimeoutError
from qwen_ocr.testing import Emulator

from .conftest import FAST, png


def test_an_async_client_submits_follows_and_reads_a_job(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.configure(fail_share=0.2)
    sources = [(f"p{i}.png", png(i)) for i in range(8)]

    async def run() -> list[str]:
        async with AsyncQwenOCR(
            api_key="k", base_url=emulator.base_url, retry=FAST, cache=tmp_path / "cache"
        ) as aclient:
            job = await aclient.batch.submit(sources, job_dir=tmp_path / "job")
            await job.aclose()
            async with await AsyncBatchJob.open(tmp_path / "job", client=aclient) as again:
                status = await again.wait(poll_interval=0.02, timeout=20)
                assert status.done and (await again.cost()).lines_billed == 8
                return [page.source async for page in again.results()]

    assert asyncio.run(asyncio.wait_for(run(), 30)) == [f"p{i}.png" for i in range(8)]
    assert set(emulator.batches.stats.billed.values()) == {1}
    from qwen_ocr import QwenOCR

    with QwenOCR(api_key="k", base_url=emulator.base_url, cache=tmp_path / "cache") as client:
        assert [p.metadata().get("cache") for p in read_documents(client, sources)] == ["hit"] * 8


def test_an_async_wait_times_out_and_is_cancellable(emulator: Emulator, tmp_path: Path) -> None:
    emulator.batches.configure(stall_after=0)

    async def run() -> None:
        async with AsyncQwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as aclient:
            job = await aclient.batch.submit([("a.png", png(1))], job_dir=tmp_path / "job")
            with pytest.raises(BatchWaitTimeoutError):
                await job.wait(poll_interval=0.02, timeout=0.1)
            waiting = asyncio.ensure_future(job.wait(poll_interval=10))
            await asyncio.sleep(0.1)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            await job.cancel()
            assert (await job.wait(poll_interval=0.02, timeout=20)).cancelled
            await job.aclose()

    asyncio.run(asyncio.wait_for(run(), 30))

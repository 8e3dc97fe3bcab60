"""``QwenOCRLoader.from_batch``: a finished Batch API job's pages as Documents, against the emulator, with the same
``page_content``, ids and metadata as a real-time ``QwenOCRLoader`` over the same sources and options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document

from langchain_qwen_ocr.document_loaders import QwenOCRBatchLoader, QwenOCRLoader
from qwen_ocr import QwenOCR
from qwen_ocr.batch import BatchJobError, BatchNotFinishedError, BatchWaitTimeoutError
from qwen_ocr.errors import InvalidArgumentError
from qwen_ocr.testing import Emulator
from tests.batch._support import fast_batch_emulator
from tests.conftest import FAST_RETRY, make_image
from tests.langchain.test_loader_support import BORN_DIGITAL, SKEW

PER_REQUEST = {"request_id", "request_ids", "input_tokens", "output_tokens", "image_tokens", "total_tokens"}
"""The keys that differ between two readings of the same page (a request of its own, the service's own count)."""
WAIT: dict[str, Any] = {"poll_interval": 0.02, "timeout": 20.0}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with fast_batch_emulator(60) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator) -> Iterator[QwenOCR]:
    """A native-protocol client (the default), without a cache: the real-time read sends every page."""
    with QwenOCR(api_key="sk-batch-loader", base_url=emulator.base_url, region="cn", retry=FAST_RETRY) as made:
        yield made


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    """Two images, a scanned page and a born-digital PDF (4 pages from their text layer under text_layer='auto')."""
    paths = []
    for name in ("receipt.png", "letter.png"):
        path = tmp_path / name
        path.write_bytes(make_image(text=name))
        paths.append(str(path))
    return [*paths, str(SKEW), str(BORN_DIGITAL)]


def _submit(client: QwenOCR, sources: list[str], job_dir: Path, **options: Any) -> None:
    job = client.batch.submit(sources, job_dir=job_dir, **options)
    job.wait(**WAIT)


def _same(batch: list[Document], live: list[Document]) -> None:
    assert len(batch) == len(live) > 0
    for ours, theirs in zip(batch, live, strict=True):
        assert ours.id == theirs.id
        assert ours.page_content == theirs.page_content
        mine = {k: v for k, v in ours.metadata.items() if k not in PER_REQUEST | {"batch"}}
        assert mine == {k: v for k, v in theirs.metadata.items() if k not in PER_REQUEST}


@pytest.mark.parametrize(
    ("options", "mode", "on_error"),
    [
        ({"task": "text_recognition", "text_layer": "auto"}, "page", "raise"),
        ({"task": "table_parsing", "text_layer": "never", "pages": "1-2"}, "single", "mark"),
        ({"task": "document_parsing", "text_layer": "never", "pages": "2"}, "elements", "mark"),
    ],
    ids=["page", "single", "elements"],
)
def test_documents_match_a_real_time_read_of_the_same_sources(
    emulator: Emulator,
    client: QwenOCR,
    sources: list[str],
    tmp_path: Path,
    options: dict[str, Any],
    mode: Any,
    on_error: Any,
) -> None:
    _submit(client, sources, tmp_path / "job", **options)
    loader = QwenOCRLoader.from_batch(tmp_path / "job", client=client, mode=mode, on_error=on_error)
    batch_docs = loader.load()
    assert emulator.batches.stats.chat_requests == 0, "the batch loader sends nothing"

    live = QwenOCRLoader(sources, client=client, mode=mode, on_error=on_error, **options).load()
    assert emulator.batches.stats.chat_requests > 0
    _same(batch_docs, live)
    if mode == "page":
        assert [d.metadata["source"] for d in batch_docs] == [*sources[:3], *[sources[3]] * 4], "input order"
        assert {d.metadata["text_source"] for d in batch_docs} == {"ocr", "text_layer"}
        read = [d for d in batch_docs if d.metadata["text_source"] == "ocr"]
        assert len(read) == 3 and all(
            d.metadata["batch"].startswith("batch_") and d.metadata["request_id"] for d in read
        )
        assert all("batch" not in d.metadata for d in batch_docs if d.metadata["text_source"] == "text_layer")
    else:  # page 2 of a one-page file: the same marked failures as in real time, then the PDF's pages
        unreadable = [f"{source}_unreadable" for source in sources[:3]]
        assert [d.id for d in batch_docs[:3]] == unreadable
        assert {d.metadata["error_code"] for d in batch_docs[:3]} == {"InvalidPages"}
        rest = batch_docs[3:]
        if mode == "single":
            assert [d.id for d in rest] == [sources[3]] and rest[0].metadata["pages"] == [0, 1]
        else:
            assert [d.id for d in rest] == [f"{sources[3]}_part_1_{n}" for n in range(len(rest))]
            assert {"Title", "NarrativeText"} <= {d.metadata["category"] for d in rest}


def test_the_client_default_opens_the_job_and_failed_pages_are_marked_as_in_real_time(
    emulator: Emulator, client: QwenOCR, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator.batches.configure(permanent_share=0.4)
    images = []
    for i in range(6):
        path = tmp_path / f"p{i}.png"
        path.write_bytes(make_image(text=f"page {i}"))
        images.append(str(path))
    _submit(client, images, tmp_path / "job", task="text_recognition")
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-batch-loader")  # the job's own client: the key from the environment
    with pytest.raises(Exception) as raised:
        QwenOCRLoader.from_batch(tmp_path / "job").load()  # on_error="raise", as QwenOCRLoader
    assert "cannot be decoded" in str(raised.value)

    docs = QwenOCRLoader.from_batch(tmp_path / "job", on_error="mark").load()
    marked = [d for d in docs if "error" in d.metadata]
    assert [d.metadata["source"] for d in docs] == images
    assert 1 <= len(marked) < 6 and all(d.page_content == "" and d.metadata["error_code"] for d in marked)
    assert [d.id for d in marked] == [f"{d.metadata['source']}_part_0" for d in marked]
    skipped = QwenOCRLoader.from_batch(tmp_path / "job", on_error="skip").load()
    assert len(skipped) == len(docs) - len(marked)


def test_a_job_not_finished_says_to_wait_and_wait_true_waits(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    emulator.batches.configure(stall_after=0)
    path = tmp_path / "a.png"
    path.write_bytes(make_image(text="a"))
    client.batch.submit([str(path)], job_dir=tmp_path / "job", task="text_recognition")
    loader = QwenOCRLoader.from_batch(tmp_path / "job", client=client)
    with pytest.raises(BatchNotFinishedError) as raised:
        loader.load()
    assert "wait=True" in raised.value.message and "is not finished" in raised.value.message

    waiting = QwenOCRLoader.from_batch(tmp_path / "job", client=client, wait=True, poll_interval=0.02, timeout=0.1)
    with pytest.raises(BatchWaitTimeoutError):
        waiting.load()
    emulator.batches.configure(stall_after=None)
    docs = QwenOCRLoader.from_batch(tmp_path / "job", client=client, wait=True, poll_interval=0.02).load()
    assert [d.metadata["source"] for d in docs] == [str(path)] and docs[0].page_content


def test_bad_arguments_and_no_job_are_said_at_construction(client: QwenOCR, tmp_path: Path) -> None:
    with pytest.raises(BatchJobError, match="holds no batch job"):
        QwenOCRLoader.from_batch(tmp_path / "nothing")
    with pytest.raises(InvalidArgumentError, match="mode="):
        QwenOCRLoader.from_batch(tmp_path, mode="pages")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="on_error="):
        QwenOCRLoader.from_batch(tmp_path, on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="poll_interval="):
        QwenOCRLoader.from_batch(tmp_path, poll_interval=0)


def test_a_client_of_another_host_is_refused_and_the_repr_names_the_job(
    emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(make_image(text="a"))
    _submit(client, [str(path)], tmp_path / "job")
    with QwenOCR(api_key="k", base_url="http://127.0.0.1:9") as other, pytest.raises(BatchJobError, match="host"):
        QwenOCRLoader.from_batch(tmp_path / "job", client=other)
    loader = QwenOCRLoader.from_batch(tmp_path / "job", client=client, mode="single")
    assert isinstance(loader, QwenOCRBatchLoader)
    assert repr(loader).startswith(f"QwenOCRLoader.from_batch({str(tmp_path / 'job')!r}, mode='single'")
    assert "sk-" not in repr(loader)


async def test_aload_gives_the_same_documents(client: QwenOCR, sources: list[str], tmp_path: Path) -> None:
    _submit(client, sources[:2], tmp_path / "job", task="text_recognition")
    loader = QwenOCRLoader.from_batch(tmp_path / "job", client=client)
    docs = await loader.aload()
    assert [(d.id, d.page_content) for d in docs] == [(d.id, d.page_content) for d in loader.load()]
    assert [d.id for d in docs] == [f"{source}_part_0" for source in sources[:2]]

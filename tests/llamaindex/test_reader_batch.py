"""``QwenOCRReader.from_batch``: a finished Batch API job's pages as LlamaIndex Documents, against the emulator, with
the same text, ids and metadata as a real-time ``QwenOCRReader`` over the same sources and options."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import MetadataMode

from llamaindex_qwen_ocr import QwenOCRBatchReader, QwenOCRReader
from qwen_ocr import QwenOCR
from qwen_ocr.batch import BatchJobError, BatchNotFinishedError
from qwen_ocr.errors import InvalidArgumentError
from qwen_ocr.sources import named_sources
from qwen_ocr.testing import Emulator
from tests.batch._support import fast_batch_emulator
from tests.conftest import FAST_RETRY, make_image

from .conftest import CROM, FOUR_PAGES, KEY

PER_REQUEST = {"request_id", "input_tokens", "output_tokens", "image_tokens", "total_tokens"}
"""The keys that differ between two readings of the same page (a request of its own, the service's own count)."""
WAIT: dict[str, Any] = {"poll_interval": 0.02, "timeout": 20.0}


@pytest.fixture
def batch_emulator() -> Iterator[Emulator]:
    with fast_batch_emulator(60) as emu:
        yield emu


@pytest.fixture
def client(batch_emulator: Emulator) -> Iterator[QwenOCR]:
    """A native-protocol client (the default), without a cache: the real-time read sends every page."""
    with QwenOCR(api_key=KEY, base_url=batch_emulator.base_url, region="cn", retry=FAST_RETRY) as made:
        yield made


@pytest.mark.parametrize(
    "options",
    [
        {"task": "text_recognition"},  # the reader's default task; FOUR_PAGES from its text layer
        {"task": "table_parsing", "text_layer": "never", "pages": "1"},
    ],
    ids=["text", "table"],
)
def test_documents_match_a_real_time_read_of_the_same_sources(
    batch_emulator: Emulator, client: QwenOCR, tmp_path: Path, options: dict[str, Any]
) -> None:
    sources = [str(CROM), str(FOUR_PAGES)]
    client.batch.submit(sources, job_dir=tmp_path / "job", **options).wait(**WAIT)

    reader = QwenOCRReader.from_batch(tmp_path / "job", client=client)
    docs = reader.load_data()  # no file_path: the job names its files
    assert batch_emulator.batches.stats.chat_requests == 0, "the batch reader sends nothing"
    live = QwenOCRReader(client=client, **options).load_data(sources)
    assert batch_emulator.batches.stats.chat_requests > 0

    assert len(docs) == len(live) == (5 if "pages" not in options else 2)
    for ours, theirs in zip(docs, live, strict=True):
        assert ours.id_ == theirs.id_
        assert ours.text == theirs.text
        assert {k: v for k, v in ours.metadata.items() if k not in PER_REQUEST | {"batch"}} == {
            k: v for k, v in theirs.metadata.items() if k not in PER_REQUEST
        }
        batch_key = {"batch"} & set(ours.metadata)  # pages read from the text layer have none
        assert set(ours.excluded_embed_metadata_keys) == {*theirs.excluded_embed_metadata_keys, *batch_key}
        assert ours.get_content(MetadataMode.EMBED) == theirs.get_content(MetadataMode.EMBED), "batch id not embedded"
    assert docs[0].metadata["file_name"] == "crom.png" and docs[0].metadata["batch"].startswith("batch_")
    assert [d.metadata["file_path"] for d in docs] == [sources[0], *[sources[1]] * (len(docs) - 1)], "input order"


def test_extra_info_bytes_without_a_name_and_marked_failures(
    batch_emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    batch_emulator.batches.configure(permanent_share=0.5)
    images = [make_image(text=f"page {i}") for i in range(6)]
    # named as the real-time reader names bytes (after their content), so that the ids are the reader's
    client.batch.submit(list(named_sources(images)), job_dir=tmp_path / "job", task="text_recognition").wait(**WAIT)

    docs = QwenOCRReader.from_batch(tmp_path / "job", client=client, on_error="mark").load_data(
        extra_info={"lot": "june"}
    )
    assert len(docs) == 6 and all(d.metadata["lot"] == "june" for d in docs)
    assert all("file_path" not in d.metadata for d in docs), "bytes named after their content have no file_path"
    live = QwenOCRReader(client=client, on_error="mark").load_data(images, extra_info={"lot": "june"})
    assert [d.id_ for d in docs] == [d.id_ for d in live]
    marked = [d for d in docs if "error" in d.metadata]
    assert 1 <= len(marked) < 6 and all(d.text == "" and d.metadata["error_code"] for d in marked)
    with pytest.raises(Exception, match="cannot be decoded"):
        QwenOCRReader.from_batch(tmp_path / "job", client=client).load_data()  # on_error="raise", the default

    client.batch.submit(images[:2], job_dir=tmp_path / "bare", task="text_recognition").wait(**WAIT)
    bare = QwenOCRReader.from_batch(tmp_path / "bare", client=client, on_error="mark").load_data()
    assert [d.id_ for d in bare] == ["<bytes #0>_part_0", "<bytes #1>_part_0"]
    assert all("file_path" not in d.metadata and "file_name" not in d.metadata for d in bare)


def test_a_job_not_finished_says_to_wait_and_wait_true_waits(
    batch_emulator: Emulator, client: QwenOCR, tmp_path: Path
) -> None:
    batch_emulator.batches.configure(in_progress=0.3)
    client.batch.submit([str(CROM)], job_dir=tmp_path / "job", task="text_recognition")
    with pytest.raises(BatchNotFinishedError) as raised:
        QwenOCRReader.from_batch(tmp_path / "job", client=client).load_data()
    assert "wait=True" in raised.value.message and "QwenOCRReader.from_batch" in raised.value.message

    reader = QwenOCRReader.from_batch(tmp_path / "job", client=client, wait=True, poll_interval=0.02, timeout=20)
    (doc,) = reader.load_data()
    assert doc.text and doc.metadata["file_name"] == "crom.png"


def test_settings_are_checked_and_serialised_without_the_client(client: QwenOCR, tmp_path: Path) -> None:
    with pytest.raises(BatchJobError, match="holds no batch job"):
        QwenOCRReader.from_batch(tmp_path / "nothing", client=client)
    with pytest.raises(InvalidArgumentError, match="unknown setting"):
        QwenOCRBatchReader(job_dir=str(tmp_path), clint=client)  # type: ignore[call-arg]
    client.batch.submit([str(CROM)], job_dir=tmp_path / "job").wait(**WAIT)
    reader = QwenOCRReader.from_batch(tmp_path / "job", client=client, content_format="text")
    assert isinstance(reader, QwenOCRBatchReader) and reader.class_name() == "QwenOCRBatchReader"
    data = reader.to_dict()
    assert data["job_dir"] == str(tmp_path / "job") and data["content_format"] == "text"
    assert "client" not in data and KEY not in repr(reader) and KEY not in str(data)
    with pytest.raises(ValueError, match="poll_interval"):
        QwenOCRReader.from_batch(tmp_path / "job", client=client, poll_interval=0)


async def test_aload_data_gives_the_same_documents(client: QwenOCR, tmp_path: Path) -> None:
    client.batch.submit([str(CROM)], job_dir=tmp_path / "job", task="text_recognition").wait(**WAIT)
    reader = QwenOCRReader.from_batch(tmp_path / "job", client=client)
    docs = await reader.aload_data()
    assert [(d.id_, d.text) for d in docs] == [(d.id_, d.text) for d in reader.load_data()]

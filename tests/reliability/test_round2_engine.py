"""Round 2: one engine. ``qwen_ocr.read_documents`` / ``aread_documents`` read every kind of source with one window of
pages in flight across files and one ``on_error`` policy; the CLI, the LangChain loader, the LlamaIndex reader and
``ImageReader`` behave alike on it.

Overlap across files is measured with the emulator (its requests in flight, polled, and the arrival times of requests
of different images), never with a stopwatch; every test that could hang runs under a hang guard.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen_ocr import (
    AsyncQwenOCR,
    AuthenticationError,
    InvalidArgumentError,
    PageResult,
    QwenOCR,
    aread_documents,
    read_documents,
)
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest, image_url_of
from tests.langchain.test_loader_support import BORN_DIGITAL

from ._support import numbered_png, time_budget, wait_until

GUARD = 20.0  # seconds: a hang guard
LATENCY = 0.3  # seconds each emulated request takes, so that requests in flight at once can be seen
CORRUPT_PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage, cut short"


@contextlib.contextmanager
def peak_in_flight(emu: Emulator) -> Iterator[list[int]]:
    """Polls the emulator's requests in flight while the block runs; yields a list whose only item is the peak."""
    peak = [0]
    done = threading.Event()

    def poll() -> None:
        while not done.wait(0.005):
            peak[0] = max(peak[0], emu.in_flight)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    try:
        yield peak
    finally:
        done.set()
        poller.join(5)


def _overlapping_images(emu: Emulator) -> int:
    """How many requests of an image arrived while a request of another image was still in flight (by arrival time:
    each request takes ``LATENCY``)."""
    arrivals = sorted((r.time, image_digest(image_url_of(r.protocol, r.json))) for r in emu.request_log)
    return sum(1 for (t0, d0), (t1, d1) in itertools.pairwise(arrivals) if d0 != d1 and t1 - t0 < LATENCY * 0.8)


def _client(emu: Emulator, **kwargs: Any) -> QwenOCR:
    client = QwenOCR(api_key="sk-engine", base_url=emu.base_url, **kwargs)
    client.pacer = None
    return client


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    paths = []
    for index in range(6):
        path = tmp_path / f"img{index}.png"
        path.write_bytes(numbered_png(index))
        paths.append(path)
    return paths


# -- the CLI ---------------------------------------------------------------------------------------------------------


def test_cli_reads_six_images_and_a_corrupt_pdf_with_requests_overlapping_across_files(
    images: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    bad = tmp_path / "broken.pdf"
    bad.write_bytes(CORRUPT_PDF)
    inputs = [*images[:3], bad, *images[3:]]
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-engine")
    with Emulator(latency=LATENCY) as emu, peak_in_flight(emu) as peak, time_budget(GUARD):
        run = ["read", *map(str, inputs), "--provider", "dashscope", "--base-url", emu.base_url, "--no-progress"]
        code = main([*run, "--format", "jsonl"])
        overlapping = _overlapping_images(emu)
        successes = emu.stats.successes
    captured = capsys.readouterr()
    assert code == 1
    records = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["source"] for r in records] == [str(p) for p in images]  # all 6, in the order given
    assert all(r["error"] is None and r["result"]["text"] for r in records)
    errors = [line for line in captured.err.splitlines() if line.startswith("qwen-ocr: error:")]
    assert len(errors) == 1 and str(bad) in errors[0]
    assert "Traceback" not in captured.err
    assert successes == 6
    # Requests of different files were in flight at once (each file is one image, so in flight > 1 is across files).
    assert peak[0] > 1, f"at most {peak[0]} request in flight: the files were read one after another"
    assert overlapping >= 1


# -- read_documents / aread_documents ---------------------------------------------------------------------------------


def _summary(pages: list[PageResult]) -> list[tuple[str, int, bool, bool, str | None]]:
    return [(p.source, p.file_index, p.ok, p.file_failed, p.error.code if p.error else None) for p in pages]


def test_every_kind_of_source_in_input_order_with_file_boundaries(tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    for index in range(3):
        (folder / f"{index}.png").write_bytes(numbered_png(10 + index))
    data_url = "data:image/png;base64," + base64.b64encode(numbered_png(20)).decode()
    sources: list[Any] = [
        folder,
        numbered_png(21),
        ("named.png", numbered_png(22)),
        tmp_path / "missing.pdf",
        data_url,
        "oss://bucket/scan.png",  # only the service reads these: sent to it as they are
        ("broken.pdf", CORRUPT_PDF),
    ]
    expected = [
        (str(folder / "0.png"), 0, True, False, None),
        (str(folder / "1.png"), 1, True, False, None),
        (str(folder / "2.png"), 2, True, False, None),
        ("<bytes #1>", 3, True, False, None),
        ("named.png", 4, True, False, None),
        (str(tmp_path / "missing.pdf"), 5, False, True, "FileNotFound"),
        ("<data: URL #4>", 6, True, False, None),
        ("oss://bucket/scan.png", 7, True, False, None),
        ("broken.pdf", 8, False, True, "CorruptDocument"),
    ]
    with Emulator() as emu, time_budget(GUARD):
        with _client(emu, max_concurrency=3) as client:
            pages = list(read_documents(client, sources, on_error="mark"))
        assert _summary(pages) == expected
        assert any(r.json and "oss://bucket/scan.png" in json.dumps(r.json) for r in emu.request_log)

        async def main() -> list[PageResult]:
            async with AsyncQwenOCR(api_key="sk-engine", base_url=emu.base_url, max_concurrency=3) as aclient:
                aclient.pacer = None
                return [page async for page in aread_documents(aclient, sources, on_error="mark")]

        assert _summary(asyncio.run(main())) == expected


def test_skip_leaves_out_and_logs_raise_raises_after_the_results_before(
    images: list[Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(CORRUPT_PDF)
    sources = [images[0], bad, images[1]]
    with Emulator() as emu, _client(emu) as client, time_budget(GUARD):
        with caplog.at_level(logging.WARNING, logger="qwen_ocr"):
            skipped = list(read_documents(client, sources, on_error="skip"))
        assert [p.source for p in skipped] == [str(images[0]), str(images[1])]
        assert any(str(bad) in record.getMessage() for record in caplog.records)
        got: list[PageResult] = []
        with pytest.raises(Exception) as caught:
            got.extend(read_documents(client, sources))
        assert [p.source for p in got] == [str(images[0])]
        assert str(bad) in str(caught.value)


@pytest.mark.parametrize("probe_first", [False, True])
@pytest.mark.parametrize("on_error", ["skip", "mark"])
def test_a_wrong_key_is_raised_whatever_on_error(images: list[Path], on_error: str, probe_first: bool) -> None:
    options = {"on_error": on_error, "probe_first": probe_first, "max_concurrency": 4}
    with Emulator(valid_keys={"sk-right"}) as emu, time_budget(GUARD):
        with QwenOCR(api_key="sk-wrong", base_url=emu.base_url) as client, pytest.raises(AuthenticationError):
            list(read_documents(client, images, **options))
        sync_sent = emu.stats.requests

        async def main() -> None:
            async with AsyncQwenOCR(api_key="sk-wrong", base_url=emu.base_url) as aclient:
                with pytest.raises(AuthenticationError):
                    [page async for page in aread_documents(aclient, images, **options)]

        asyncio.run(main())
        async_sent = emu.stats.requests - sync_sent
    if probe_first:  # the other five files' requests waited for the first answer, and were never sent
        assert (sync_sent, async_sent) == (1, 1)
    else:  # at most the window in flight when the first answer came
        assert 1 <= sync_sent <= 4 and 1 <= async_sent <= 4


def test_one_window_across_files_bounded_by_max_concurrency(tmp_path: Path) -> None:
    paths = []
    for index in range(12):
        path = tmp_path / f"{index:02}.png"
        path.write_bytes(numbered_png(30 + index))
        paths.append(path)
    with Emulator(latency=0.1) as emu, _client(emu) as client, peak_in_flight(emu) as peak, time_budget(GUARD):
        pages = list(read_documents(client, paths, max_concurrency=3))
    assert [p.source for p in pages] == [str(p) for p in paths]
    assert 1 < peak[0] <= 3


def test_a_cancel_event_set_from_another_thread_ends_the_reading(tmp_path: Path) -> None:
    paths = []
    for index in range(20):
        path = tmp_path / f"{index:02}.png"
        path.write_bytes(numbered_png(60 + index))
        paths.append(path)
    cancel = threading.Event()
    got: list[PageResult] = []
    with Emulator(latency=0.2) as emu, _client(emu) as client, time_budget(GUARD):
        for page in read_documents(client, paths, max_concurrency=2, cancel=cancel):
            got.append(page)
            if len(got) == 2:
                threading.Timer(0.05, cancel.set).start()
        sent = emu.stats.requests
    assert 2 <= len(got) < 20
    assert sent < 20


def test_wrong_options_are_refused_at_the_call_naming_the_closest(images: list[Path]) -> None:
    client = QwenOCR(api_key="sk-engine", base_url="http://127.0.0.1:9")
    with pytest.raises(InvalidArgumentError, match=r"'on_eror'.*did you mean 'on_error'"):
        read_documents(client, images, on_eror="mark")
    with pytest.raises(InvalidArgumentError, match=r"sources\[1\] is a dict"):
        read_documents(client, [images[0], {"path": "x"}])
    client.close()


# -- the integrations: one policy, one default ------------------------------------------------------------------------


def test_one_text_layer_default_in_the_loader_the_reader_and_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A born-digital PDF: its own text for plain reading (no request), OCR for a structured task, everywhere."""
    from langchain_qwen_ocr import QwenOCRLoader
    from llamaindex_qwen_ocr import QwenOCRReader
    from qwen_ocr.cli import main

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-engine")
    with Emulator() as emu, time_budget(GUARD):
        key = {"api_key": "sk-engine", "base_url": emu.base_url}
        cli = ["read", str(BORN_DIGITAL), "--base-url", emu.base_url, "--no-progress", "--format", "jsonl"]
        for task, sent in ((None, 0), ("table_parsing", 4)):
            emu.reset()
            loader = QwenOCRLoader(BORN_DIGITAL, task=task, **key).load()
            reader = QwenOCRReader(task=task, **key).load_data(BORN_DIGITAL)
            assert main([*cli, *(["--task", task] if task else [])]) == 0
            sources = [json.loads(line)["text_source"] for line in capsys.readouterr().out.splitlines()]
            expected = "text_layer" if sent == 0 else "ocr"
            assert [d.metadata["text_source"] for d in loader] == [expected] * 4
            assert [d.metadata["text_source"] for d in reader] == [expected] * 4
            assert sources == [expected] * 4
            assert emu.stats.requests == 3 * sent


def test_the_llamaindex_reader_reads_lists_folders_and_patterns(images: list[Path], tmp_path: Path) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    with Emulator() as emu, time_budget(GUARD):
        reader = QwenOCRReader(api_key="sk-engine", base_url=emu.base_url)
        docs = reader.load_data([images[5], str(tmp_path)])
        assert [d.metadata["file_name"] for d in docs] == ["img5.png", *[p.name for p in images]]
        assert docs[0].id_ == f"{images[5]}_part_0"
        assert [d.metadata["file_name"] for d in reader.load_data(str(tmp_path / "img[01].png"))] == [
            "img0.png",
            "img1.png",
        ]
        adocs = asyncio.run(reader.aload_data([images[5], str(tmp_path)]))
        assert [d.id_ for d in adocs] == [d.id_ for d in docs]


def test_the_llamaindex_reader_raises_skips_or_marks_an_unreadable_file(images: list[Path], tmp_path: Path) -> None:
    from llamaindex_qwen_ocr import QwenOCRReader
    from qwen_ocr.documents import CorruptDocumentError

    bad = tmp_path / "broken.pdf"
    bad.write_bytes(CORRUPT_PDF)
    with Emulator() as emu, time_budget(GUARD):

        def reader(on_error: str) -> QwenOCRReader:
            return QwenOCRReader(api_key="sk-engine", base_url=emu.base_url, on_error=on_error)

        with pytest.raises(CorruptDocumentError):
            reader("raise").load_data([bad, images[0]])
        assert [d.metadata["file_name"] for d in reader("skip").load_data([bad, images[0]])] == ["img0.png"]
        marked = reader("mark").load_data([bad, images[0]])
    assert [d.id_ for d in marked] == [f"{bad}_unreadable", f"{images[0]}_part_0"]
    assert marked[0].text == "" and marked[0].metadata["error_type"] == "CorruptDocumentError"
    assert "error" in marked[0].excluded_embed_metadata_keys


def test_the_llamaindex_reader_refuses_an_unknown_setting_naming_the_closest() -> None:
    from llamaindex_qwen_ocr import QwenOCRReader

    with pytest.raises(InvalidArgumentError, match=r"'max_retires'.*did you mean 'max_retries'"):
        QwenOCRReader(max_retires=2)
    assert QwenOCRReader(schema={"Total": ""}, max_retries=2).extraction_schema == {"Total": ""}


def test_the_loader_refuses_an_unknown_argument_and_passes_client_settings_through(images: list[Path]) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    with pytest.raises(InvalidArgumentError, match=r"'on_eror'.*did you mean 'on_error'"):
        QwenOCRLoader(images, on_eror="mark")
    loader = QwenOCRLoader(images, api_key="sk-engine", timeout=12.5, max_retries=1, workspace="ws-1")
    client = loader._holder.get_client()
    assert (client.max_retries, client.workspace) == (1, "ws-1")
    client.close()


def test_image_reader_raises_a_wrong_key_whatever_on_error() -> None:
    from langchain_core.messages import HumanMessage

    from langchain_qwen_ocr.image_reader import ImageReader

    url = "data:image/png;base64," + base64.b64encode(numbered_png(90)).decode()
    message = HumanMessage([{"type": "image_url", "image_url": {"url": url}}])
    with Emulator(valid_keys={"sk-right"}) as emu, time_budget(GUARD):
        for on_error in ("mark", "skip", "keep_image"):
            reader = ImageReader(api_key="sk-wrong", base_url=emu.base_url, on_error=on_error)
            with pytest.raises(AuthenticationError):
                reader.invoke([message])


def test_single_mode_gives_a_files_document_with_its_last_page_not_the_next_files_first(tmp_path: Path) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    from ._support import sent_digest

    first, second = tmp_path / "first.png", tmp_path / "second.png"
    first.write_bytes(numbered_png(70))
    second.write_bytes(numbered_png(71))
    with Emulator(stall=2.0) as emu, time_budget(GUARD):
        emu.inject_for(sent_digest(numbered_png(71)), "timeout")  # the second file's answer is held back
        with _client(emu, max_retries=0, timeout=10) as client:
            docs = QwenOCRLoader([first, second], client=client, mode="single", on_error="mark").lazy_load()
            doc = next(docs)
            assert doc.metadata["source"] == str(first)
            # It came before the second file's answer: that request is (still, or only now) in flight.
            assert wait_until(lambda: emu.in_flight == 1, timeout=1.5)
            docs.close()  # type: ignore[attr-defined]

"""Round 2: stopping the loader stops the spending at once; the CLI keeps every result and every good input.

The CLI part runs ``qwen_ocr.cli.main`` in-process against the emulator: ``--out`` gives inputs with the same name
files of their own (``scan.txt``, ``scan-2.txt``, in the order given), refuses to replace a file it did not write
(unless ``--overwrite``), and an input that cannot be read is named on stderr while the others are still read.

Closing a loader early (``break``, ``close()``, ``aclose()``, Ctrl-C in the consumer) while pages are being retried
must start no new page, send no retry, and return without waiting for the requests already in flight: the
emulator's request count after the break stays within the requests that were already on their way (at most one per
page slot, never a retry), and the call returns well within a hang guard (a guard, not a timed assertion: the old
code took 10 s and more here, waiting for every in-flight page to exhaust its retries).
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import AsyncQwenOCR, QwenOCR, QwenOCRError, RetryPolicy, read_document
from qwen_ocr.documents import open_document
from qwen_ocr.errors import RequestCancelledError, is_retryable
from qwen_ocr.retry import cancel_scope
from qwen_ocr.testing import Emulator
from qwen_ocr.testing._wire import image_digest

from ._support import numbered_png, time_budget, wait_until

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from langchain_qwen_ocr import QwenOCRLoader

GUARD = 8.0  # seconds: a hang guard; the old code needed 10 s and more to return from the break below
WINDOW = 4  # pages in flight
READ_BEFORE_BREAK = 2  # the consumer breaks after this many Documents

# Pages after the first READ_BEFORE_BREAK fail and fail again (HTTP 500s and stalls past the client's timeout),
# with enough retries that, unstopped, each would keep retrying for seconds.
STUBBORN = RetryPolicy(max_retries=20, initial_delay=0.05, max_delay=0.2, jitter=0.0)
CLIENT_TIMEOUT = 0.5


def _pdf(pages: int) -> bytes:
    images = []
    for i in range(pages):
        im = Image.new("L", (120, 40), 255)
        ImageDraw.Draw(im).text((4, 14), f"leaf {i + 1}", fill=0)
        images.append(im)
    buf = io.BytesIO()
    images[0].save(buf, "PDF", save_all=True, append_images=images[1:], resolution=72)
    return buf.getvalue()


@pytest.fixture(scope="module")
def pdf_24(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("round2") / "twenty-four.pdf"
    path.write_bytes(_pdf(24))
    return path


def _page_digests(path: Path) -> list[str]:
    """The emulator's key of each page as the loader sends it (rendered at the default model's budget)."""
    with open_document(path) as doc:
        digests = [image_digest(page.prepare().url) for page in doc]
    assert all(digests)
    return [d for d in digests if d is not None]


@pytest.fixture
def failing_emulator(pdf_24: Path) -> Iterator[Emulator]:
    """The first pages are read at once; every later page gets 500s and stalls, attempt after attempt."""
    with Emulator(stall=10.0) as emu:
        for index, digest in enumerate(_page_digests(pdf_24)):
            if index >= READ_BEFORE_BREAK:
                emu.inject_for(digest, *(["500", "timeout"] * 20))
        yield emu


def _our_threads(before: set[threading.Thread]) -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t not in before and t.is_alive() and t.daemon is False)


def _sent_after(emu: Emulator, at_break: int) -> int:
    """Requests received after the break, once the emulator has gone quiet: nothing in flight and no new request
    for longer than a retry's delay (a page still retrying would be seen). An attempt that began just before the
    close may still arrive: it is counted, and bounded by the caller (one per page slot)."""

    def quiet() -> bool:
        seen = emu.stats.requests
        if emu.in_flight:
            return False
        time.sleep(0.4)
        return emu.in_flight == 0 and emu.stats.requests == seen

    assert wait_until(quiet, timeout=GUARD), "requests kept coming after the close"
    return emu.stats.requests - at_break


def _sync_loader(pdf: Path, client: QwenOCR) -> QwenOCRLoader:
    from langchain_qwen_ocr import QwenOCRLoader

    return QwenOCRLoader(str(pdf), client=client, text_layer="never", on_error="mark", max_concurrency=WINDOW)


def _client(emu: Emulator) -> QwenOCR:
    client = QwenOCR(api_key="k", base_url=emu.base_url, timeout=CLIENT_TIMEOUT, retry=STUBBORN)
    client.pacer = None
    return client


def test_break_in_lazy_load_sends_no_retry_and_starts_no_page(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    before = set(threading.enumerate())
    with _client(emu) as client:
        loader = _sync_loader(pdf_24, client)
        got = []
        with time_budget(GUARD):
            for doc in loader.lazy_load():
                got.append(doc)
                if len(got) == READ_BEFORE_BREAK:
                    at_break = emu.stats.requests
                    break
        after = _sent_after(emu, at_break)
    assert [d.metadata["page"] for d in got] == [0, 1]
    assert all(not d.metadata.get("error") for d in got)
    assert after <= WINDOW, f"{after} requests after the break (retries or new pages)"
    assert wait_until(lambda: not _our_threads(before), timeout=GUARD), _our_threads(before)


def test_closing_the_lazy_load_generator_sends_no_retry(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    with _client(emu) as client:
        docs = _sync_loader(pdf_24, client).lazy_load()
        with time_budget(GUARD):
            first = [next(docs) for _ in range(READ_BEFORE_BREAK)]
            at_break = emu.stats.requests
            docs.close()  # type: ignore[attr-defined]
        after = _sent_after(emu, at_break)
    assert [d.metadata["page"] for d in first] == [0, 1]
    assert after <= WINDOW, f"{after} requests after the close"


def test_ctrl_c_in_the_consumer_stops_the_sync_loader(pdf_24: Path, failing_emulator: Emulator) -> None:
    emu = failing_emulator
    marks: list[int] = []

    def consume(docs: Iterator[Document]) -> None:
        for index, _ in enumerate(docs):
            if index + 1 == READ_BEFORE_BREAK:
                marks.append(emu.stats.requests)
                raise KeyboardInterrupt

    with _client(emu) as client:
        loader = _sync_loader(pdf_24, client)
        with time_budget(GUARD), pytest.raises(KeyboardInterrupt):
            consume(loader.lazy_load())
        after = _sent_after(emu, marks[0])
    assert after <= WINDOW, f"{after} requests after Ctrl-C"


@pytest.mark.parametrize("how", ["aclose", "ctrl-c"])
def test_closing_alazy_load_cancels_the_pages(pdf_24: Path, failing_emulator: Emulator, how: str) -> None:
    from langchain_qwen_ocr import QwenOCRLoader

    emu = failing_emulator
    marks: list[int] = []

    async def main() -> None:
        aclient = AsyncQwenOCR(api_key="k", base_url=emu.base_url, timeout=CLIENT_TIMEOUT, retry=STUBBORN)
        aclient.pacer = None
        loader = QwenOCRLoader(
            str(pdf_24), aclient=aclient, text_layer="never", on_error="mark", max_concurrency=WINDOW
        )
        docs = loader.alazy_load()
        try:
            count = 0
            async for _ in docs:
                count += 1
                if count == READ_BEFORE_BREAK:
                    marks.append(emu.stats.requests)
                    if how == "ctrl-c":
                        raise KeyboardInterrupt
                    break
        finally:
            await docs.aclose()  # type: ignore[attr-defined]
            await aclient.aclose()

    with time_budget(GUARD):
        if how == "ctrl-c":
            with pytest.raises(KeyboardInterrupt):
                asyncio.run(main())
        else:
            asyncio.run(main())
    after = _sent_after(emu, marks[0])
    assert after <= WINDOW, f"{after} requests after the close"


def test_closing_read_document_sends_no_retry(pdf_24: Path, failing_emulator: Emulator) -> None:
    """The reading under the loader, the CLI and the LlamaIndex reader: the same stop when closed."""
    emu = failing_emulator
    with _client(emu) as client:
        pages = read_document(client, pdf_24, max_concurrency=WINDOW)
        with time_budget(GUARD):
            first = [next(pages) for _ in range(READ_BEFORE_BREAK)]
            at_break = emu.stats.requests
            pages.close()
        after = _sent_after(emu, at_break)
    assert [p.index for p in first] == [0, 1]
    assert all(p.ok for p in first)
    assert after <= WINDOW, f"{after} requests after the close"


def test_a_cancel_scope_ends_the_retries_of_a_sync_request() -> None:
    stop = threading.Event()
    outcome: list[BaseException] = []
    with Emulator() as emu, _client(emu) as client:
        emu.inject(*(["500"] * 30))

        def work() -> None:
            with cancel_scope(stop):
                try:
                    client.ocr(numbered_png(7))
                except QwenOCRError as exc:
                    outcome.append(exc)

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        assert wait_until(lambda: emu.stats.requests >= 2, timeout=GUARD)
        stop.set()
        worker.join(GUARD)
        assert not worker.is_alive()
        sent = emu.stats.requests
        assert not wait_until(lambda: emu.stats.requests > sent, timeout=0.3)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RequestCancelledError)
    assert not is_retryable(outcome[0])
    assert sent < 1 + STUBBORN.max_retries


# ----------------------------------------------------------------------------------------------------------------
# The CLI: one output file per input, nothing replaced unasked, an unreadable input does not stop the run


@pytest.fixture(scope="module")
def cli_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def cli(cli_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The service options of a ``qwen-ocr read`` run against the emulator (with a key)."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-round2")
    cli_emulator.reset()
    return ["--provider", "dashscope", "--base-url", cli_emulator.base_url, "--no-progress"]


def _inputs(tmp_path: Path) -> dict[str, Path]:
    """Two inputs called scan.png in different folders, a good one, and three that cannot be read."""
    paths = {
        "a": tmp_path / "a" / "scan.png",
        "b": tmp_path / "b" / "scan.png",
        "good": tmp_path / "good.png",
        "missing": tmp_path / "missing.png",
        "corrupt": tmp_path / "corrupt.pdf",
        "text": tmp_path / "notes.png",
    }
    for index, key in enumerate(("a", "b", "good")):
        paths[key].parent.mkdir(parents=True, exist_ok=True)
        paths[key].write_bytes(numbered_png(index))
    paths["corrupt"].write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> garbage, cut short")
    paths["text"].write_text("just some text, not an image")
    return paths


def _sources(out: Path) -> dict[str, list[str]]:
    """Each output file of a ``--format jsonl`` run, and the sources its records are of."""
    return {
        path.name: [json.loads(line)["source"] for line in path.read_text(encoding="utf-8").splitlines()]
        for path in sorted(out.iterdir())
    }


def test_cli_out_gives_inputs_with_the_same_name_files_of_their_own(
    tmp_path: Path, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = _inputs(tmp_path)
    out = tmp_path / "out"
    sources = [str(paths["a"]), str(paths["b"]), str(paths["a"])]
    assert main(["read", *sources, "--format", "jsonl", "--out", str(out), *cli]) == 0
    assert _sources(out) == {
        "scan.jsonl": [sources[0]],
        "scan-2.jsonl": [sources[1]],
        "scan-3.jsonl": [sources[2]],
    }
    err = capsys.readouterr().err
    assert err.count("wrote ") == 3


def test_cli_never_replaces_a_file_it_did_not_write_unless_asked(
    tmp_path: Path, cli: list[str], cli_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = _inputs(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "scan-2.txt"
    mine.write_text("my notes")
    run = ["read", str(paths["a"]), str(paths["b"]), "--out", str(out), *cli]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert str(mine) in err
    assert "--overwrite" in err
    assert mine.read_text() == "my notes"
    assert not (out / "scan.txt").exists()
    assert cli_emulator.stats.requests == 0  # refused before anything was read (or paid for)

    assert main([*run, "--overwrite"]) == 0
    assert mine.read_text() != "my notes"
    assert (out / "scan.txt").read_text()


def test_cli_reports_each_unreadable_input_and_reads_the_others(
    tmp_path: Path, cli: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = _inputs(tmp_path)
    out = tmp_path / "out"
    bad = [paths["missing"], paths["corrupt"], paths["text"]]
    order = [str(bad[0]), str(paths["a"]), str(bad[1]), str(bad[2]), str(paths["good"])]
    assert main(["read", *order, "--format", "jsonl", "--out", str(out), *cli]) == 1
    assert _sources(out) == {"good.jsonl": [str(paths["good"])], "scan.jsonl": [str(paths["a"])]}
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("qwen-ocr: error:")]
    assert len(errors) == 3
    for path, line in zip(bad, errors, strict=True):
        assert str(path) in line
    assert "Traceback" not in "".join(errors)

    # To stdout as well: every readable input is printed, the unreadable ones are named on stderr.
    assert main(["read", str(paths["missing"]), str(paths["good"]), *cli]) == 1
    captured = capsys.readouterr()
    assert f"==> {paths['good']} <==" in captured.out
    assert str(paths["missing"]) in captured.err


def test_cli_an_error_that_fails_every_input_stops_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    paths = _inputs(tmp_path)
    with Emulator(valid_keys={"sk-right"}) as emu:
        monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-wrong")
        code = main(["read", str(paths["a"]), str(paths["b"]), str(paths["good"]), "--base-url", emu.base_url])
        sent = emu.stats.requests
    assert code == 1
    assert sent == 1  # not once per input
    err = capsys.readouterr().err
    assert "not read" in err
    assert str(paths["good"]) in err


def test_cli_estimate_goes_on_after_an_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from qwen_ocr.cli import main

    paths = _inputs(tmp_path)
    assert main(["estimate", str(paths["corrupt"]), str(paths["good"])]) == 1
    captured = capsys.readouterr()
    assert str(paths["corrupt"]) in captured.err
    assert str(paths["good"]) in captured.out


@pytest.mark.parametrize("command", [["--help"], ["read", "--help"]])
def test_cli_help_documents_the_exit_codes_and_the_out_names(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from qwen_ocr.cli import main

    with pytest.raises(SystemExit) as info:
        main(command)
    assert info.value.code == 0
    shown = capsys.readouterr().out
    assert "exit codes:" in shown
    for code in ("0 ", "1 ", "2 ", "130 "):
        assert f"\n  {code}" in shown
    if command[0] == "read":
        assert "scan-2.md" in shown
        assert "--overwrite" in shown

"""Round 2, everyday use: defects of the ``qwen-ocr`` command found while using it as a Unix tool.

Each test here failed on the code before its fix. Requests in flight are measured with the emulator (polled), never
with a stopwatch; every test that could hang runs under a hang guard.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_ocr.testing import Emulator

from ._support import numbered_png, time_budget
from .test_round2_engine import peak_in_flight

GUARD = 20.0  # seconds: a hang guard


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-everyday")
    with Emulator(latency=0.3) as emu:
        yield emu


def _images(tmp_path: Path, count: int) -> list[str]:
    paths = []
    for index in range(count):
        path = tmp_path / f"img{index:02}.png"
        path.write_bytes(numbered_png(index))
        paths.append(str(path))
    return paths


def test_cli_concurrency_above_the_clients_default_is_not_capped_by_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--concurrency 16`` sent at most 8 requests at once: the window was 16, but the client it read through kept
    its own default of 8 request slots. (Two seconds per request, so that a busy machine still starts them all
    while the first ones are in flight: the CLI's first request goes alone, as a probe.)"""
    from qwen_ocr.cli import main

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-everyday")
    inputs = _images(tmp_path, 16)
    with Emulator(latency=2.0) as emu, peak_in_flight(emu) as peak, time_budget(GUARD):
        assert main(["read", *inputs, "--base-url", emu.base_url, "--no-progress", "--concurrency", "16"]) == 0
    capsys.readouterr()
    assert peak[0] > 8, f"at most {peak[0]} requests in flight with --concurrency 16"


def test_cli_default_concurrency_is_the_librarys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ``--concurrency`` the command kept 4 pages in flight, half the library's default
    (``DEFAULT_MAX_CONCURRENCY``, 8): the same job took twice as long from the shell as from Python."""
    from qwen_ocr.cli import main
    from qwen_ocr.options import DEFAULT_MAX_CONCURRENCY

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-everyday")
    inputs = _images(tmp_path, DEFAULT_MAX_CONCURRENCY + 2)
    with Emulator(latency=1.0) as emu, peak_in_flight(emu) as peak, time_budget(GUARD):
        assert main(["read", *inputs, "--base-url", emu.base_url, "--no-progress"]) == 0
    capsys.readouterr()
    assert 4 < peak[0] <= DEFAULT_MAX_CONCURRENCY, f"{peak[0]} requests in flight by default"


class _ClosedPipe(io.StringIO):
    """A stdout whose reader has gone away (``qwen-ocr read ... | head -1``)."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        raise io.UnsupportedOperation("no file descriptor")


def test_cli_a_reader_that_goes_away_ends_the_run_quietly(
    tmp_path: Path, emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``qwen-ocr read *.png | head -1``: the closed pipe raised ``BrokenPipeError`` out of ``main`` (a traceback on
    the terminal); a Unix tool stops quietly instead."""
    from qwen_ocr.cli import main

    inputs = _images(tmp_path, 3)
    monkeypatch.setattr("sys.stdout", _ClosedPipe())
    with time_budget(GUARD):
        code = main(["read", *inputs, "--base-url", emulator.base_url, "--no-progress", "--quiet"])
    assert code == 141  # as a shell reports a program ended by SIGPIPE
    assert "Traceback" not in capsys.readouterr().err


def test_cli_json_is_one_document(tmp_path: Path, emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """``--format json`` printed JSON Lines: ``json.loads`` of two inputs' output failed with "Extra data"."""
    from qwen_ocr.cli import main

    inputs = _images(tmp_path, 2)
    with time_budget(GUARD):
        assert main(["read", *inputs, "--base-url", emulator.base_url, "--no-progress", "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in records] == inputs

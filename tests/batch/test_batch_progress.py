"""``client.batch.submit(show_progress=True)``: a bar of the pages prepared, then one of the lines uploaded (the
engine's bar, as ``read_documents(show_progress=True)`` shows it). Counts are asserted, never timings. (``qwen-ocr
batch submit`` showing them on a terminal: ``test_batch_cli.py``.)"""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
from typing import Any, ClassVar

import pytest
from PIL import Image

from qwen_ocr import AsyncQwenOCR, QwenOCR
from qwen_ocr.batch import _job
from qwen_ocr.batch._lines import Limits
from qwen_ocr.errors import BatchLineTooLargeError
from qwen_ocr.testing import Emulator

from .conftest import FAST, png


class _Bar:
    """A stand-in for ``tqdm``: records what it was told."""

    made: ClassVar[list[_Bar]] = []

    def __init__(self, total: int | None = None, unit: str = "", desc: str = "", **_: Any) -> None:
        self.total, self.unit, self.desc = total, unit, desc
        self.n = 0
        self.postfix: list[str] = []
        self.closed = False
        _Bar.made.append(self)

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str, refresh: bool = True) -> None:
        self.postfix.append(text)

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def bars(monkeypatch: pytest.MonkeyPatch) -> list[_Bar]:
    _Bar.made = []
    monkeypatch.setattr("qwen_ocr.engine._tqdm", lambda: _Bar)
    monkeypatch.setattr("qwen_ocr.batch._job._tqdm", lambda: _Bar)
    return _Bar.made


def test_submit_shows_the_pages_prepared_then_the_lines_uploaded(
    client: QwenOCR, scans: list[str], tmp_path: Path, bars: list[_Bar]
) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.4 not a pdf")
    job = client.batch.submit([*scans, str(broken)], job_dir=tmp_path / "job", show_progress=True)
    prepared, uploaded = bars
    assert prepared.desc == "Qwen-OCR batch: preparing" and prepared.unit == "page"
    assert (prepared.n, prepared.total) == (30, 30)  # 24 images + the 6-page PDF; the broken file counts none
    assert prepared.postfix == [*scans]  # each file named as its first page is prepared
    assert uploaded.desc == "Qwen-OCR batch: uploading" and uploaded.unit == "line"
    assert (uploaded.n, uploaded.total) == (30, 30) == (job.status(refresh=False).lines,) * 2
    assert prepared.closed and uploaded.closed


def test_no_bar_unless_asked(client: QwenOCR, scans: list[str], tmp_path: Path, bars: list[_Bar]) -> None:
    client.batch.submit(scans[:2], job_dir=tmp_path / "job")
    assert bars == []


def test_the_bar_closes_when_preparing_fails(
    client: QwenOCR, tmp_path: Path, bars: list[_Bar], monkeypatch: pytest.MonkeyPatch
) -> None:
    noisy = io.BytesIO()
    Image.frombytes("L", (200, 200), os.urandom(40_000)).save(noisy, format="PNG")  # ~40 kB, incompressible
    monkeypatch.setattr(_job, "LIMITS", Limits(max_line_bytes=20_000))
    with pytest.raises(BatchLineTooLargeError):
        client.batch.submit(
            [("a.png", png(1)), ("big.png", noisy.getvalue())], job_dir=tmp_path / "job", show_progress=True
        )
    assert len(bars) == 1 and bars[0].n == 1 and bars[0].closed  # nothing uploaded: no second bar


def test_the_async_submit_shows_them_too(
    emulator: Emulator, scans: list[str], tmp_path: Path, bars: list[_Bar]
) -> None:
    async def go() -> int:
        async with AsyncQwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST) as aclient:
            job = await aclient.batch.submit(scans[:3], job_dir=tmp_path / "job", show_progress=True)
            await job.aclose()
        return len(bars)

    assert asyncio.run(go()) == 2
    assert [(bar.n, bar.total) for bar in bars] == [(3, 3), (3, 3)]

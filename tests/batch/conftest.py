"""Fixtures of the batch tests: an emulator whose batches finish in a fraction of a second, a client of it, and a
job's worth of files (24 images and a 6-page PDF, drawn here)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from qwen_ocr import QwenOCR, RetryPolicy
from qwen_ocr.testing import Emulator

from ._support import fast_batch_emulator

FAST = RetryPolicy(max_retries=3, initial_delay=0.0, max_delay=0.0, jitter=0.0, max_retry_after=0.0)
"""Retries without waiting."""


def drawn_page(index: int, size: tuple[int, int] = (160, 60)) -> Image.Image:
    """A small page with ``index`` on it: every index gives different pixels."""
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    draw.text((6, 20), f"page {index}", fill=0)
    im.putpixel((size[0] - 1, size[1] - 1), index % 251)
    return im


def png(index: int) -> bytes:
    buf = io.BytesIO()
    drawn_page(index).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with fast_batch_emulator(30) as emu:
        yield emu


@pytest.fixture
def client(emulator: Emulator, tmp_path: Path) -> Iterator[QwenOCR]:
    with QwenOCR(api_key="k", base_url=emulator.base_url, retry=FAST, cache=tmp_path / "cache") as made:
        yield made


@pytest.fixture
def scans(tmp_path: Path) -> list[str]:
    """24 images and a 6-page PDF (image pages: no text layer), in the order a job takes them."""
    folder = tmp_path / "scans"
    folder.mkdir()
    paths = []
    for i in range(24):
        path = folder / f"img{i:02d}.png"
        path.write_bytes(png(i))
        paths.append(str(path))
    pdf = folder / "report.pdf"
    pages = [drawn_page(100 + i, (200, 260)).convert("RGB") for i in range(6)]
    pages[0].save(pdf, save_all=True, append_images=pages[1:], resolution=72)
    paths.append(str(pdf))
    return paths

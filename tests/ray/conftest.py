"""A local Ray for the tests of ``qwen_ocr.ray``: started once (it takes seconds), shut down at the end of the
session; every test under a hang guard."""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from PIL import Image, ImageDraw

from tests.reliability._support import time_budget

WORKERS = 4
"""CPUs of the local Ray: one per worker actor of the 4-worker tests (the machine has two cores; the workers mostly
wait on the pacer and the network)."""


@pytest.fixture(scope="session")
def local_ray() -> Iterator[Any]:
    """One local Ray for the session (a Ray started by an earlier test is used as it is), without dashboard; its
    workers inherit this process's environment. It stays up until the session ends: a second ``ray.init`` in one
    process after ``ray.shutdown`` can fail (Ray 2.60's token authentication looks for its token under a ``HOME``
    that tests change)."""
    import ray.data

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=WORKERS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


@pytest.fixture(autouse=True)
def _hang_guard() -> Iterator[None]:
    """No test of this folder may hang: 60 s at most, each."""
    with time_budget(60):
        yield


def page_png(index: int, size: tuple[int, int] = (120, 40)) -> bytes:
    """A small PNG with ``index`` on it: every index its own bytes, so its own text from ``reader="digest"``."""
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).text((4, 12), f"page {index}", fill=0)
    im.putpixel((size[0] - 1, size[1] - 1), index % 251)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def pdf_of(pages: int, size: tuple[int, int] = (100, 60)) -> bytes:
    """A PDF of ``pages`` small scanned pages (no text layer), each with its number drawn on it."""
    frames = []
    for number in range(1, pages + 1):
        im = Image.new("L", size, 255)
        ImageDraw.Draw(im).text((4, 20), f"p{number}", fill=0)
        im.putpixel((0, 0), number % 251)
        frames.append(im.convert("RGB"))
    buf = io.BytesIO()
    frames[0].save(buf, format="PDF", save_all=True, append_images=frames[1:], resolution=72.0)
    return buf.getvalue()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Ray Data reads its own deprecated settings when a dataset first runs: not ours to fix."""
    for item in items:
        if "tests/ray/" in item.nodeid:
            item.add_marker(pytest.mark.filterwarnings("ignore:.*deprecated.*:DeprecationWarning:ray"))

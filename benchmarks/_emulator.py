"""The emulator in a process of its own, for the benchmarks that measure the client side alone (run from this
folder, as ``_rss`` is imported).

Example::

    with emulator_process("--latency", "0.05") as base_url:
        ...                     # a QwenOCR(base_url=base_url, api_key="k") reads against it
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator

__all__ = ["emulator_process"]


@contextlib.contextmanager
def emulator_process(*options: str) -> Iterator[str]:
    """``python -m qwen_ocr.testing.emulator --port 0 OPTIONS``: yields its base URL; stopped at the end."""
    emulator = subprocess.Popen(
        [sys.executable, "-m", "qwen_ocr.testing.emulator", "--port", "0", *options], stdout=subprocess.PIPE, text=True
    )
    try:
        assert emulator.stdout is not None
        yield emulator.stdout.readline().strip().split()[-1]
    finally:
        emulator.terminate()
        emulator.wait(timeout=10)

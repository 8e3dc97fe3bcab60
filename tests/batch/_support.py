"""What the batch tests of the core and of the integrations share: an emulator whose batches finish in a fraction
of a second, under a hang guard."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from qwen_ocr.testing import Emulator

from ..reliability._support import time_budget

__all__ = ["fast_batch_emulator"]


@contextlib.contextmanager
def fast_batch_emulator(seconds: float) -> Iterator[Emulator]:
    """An emulator whose batches go through every status in about 0.1 s; the block fails after ``seconds``."""
    with time_budget(seconds), Emulator() as emu:
        emu.batches.configure(validating=0.01, in_progress=0.05, finalizing=0.01, cancelling=0.01)
        yield emu

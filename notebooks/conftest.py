"""``pytest --nbmake notebooks/`` (part of ``make test``): a time limit for each whole notebook.

nbmake's ``--nbmake-timeout`` bounds each cell; this bounds the notebook: ``NOTEBOOK_TIME_LIMIT`` seconds (default
300), after which the notebook fails with ``TimeoutError``. Where there is no ``SIGALRM`` (Windows) only the cell
limit applies.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from types import FrameType

import pytest

NOTEBOOK_TIME_LIMIT = float(os.environ.get("NOTEBOOK_TIME_LIMIT", "300"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    if not str(item.path).endswith(".ipynb") or not hasattr(signal, "SIGALRM") or NOTEBOOK_TIME_LIMIT <= 0:
        yield
        return

    def expired(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError(f"{item.path.name} ran longer than its limit of {NOTEBOOK_TIME_LIMIT:g} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, NOTEBOOK_TIME_LIMIT)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

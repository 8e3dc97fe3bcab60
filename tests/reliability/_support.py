"""Helpers of the reliability suite: distinct numbered images, a fast retry policy, a wait-until helper."""

from __future__ import annotations

import contextlib
import hashlib
import io
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

from PIL import Image, ImageDraw

from qwen_ocr import RetryPolicy

RETRIES = 8
"""Retries per request in the fault jobs: with 20% faults a page fails all 9 attempts with probability 0.2**9
(5e-7), so a 500-page job loses no page in practice even though the fault draws depend on thread timing."""

JOB_POLICY = RetryPolicy(max_retries=RETRIES, initial_delay=0.0, max_delay=0.0, jitter=0.0, max_retry_after=0.01)
"""No waiting between attempts; a ``Retry-After`` is honoured up to 10 ms."""


def numbered_png(index: int, size: tuple[int, int] = (96, 32)) -> bytes:
    """A small PNG with ``index`` drawn on it: every index gives different bytes (its own digest)."""
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    draw.text((4, 10), f"p{index}", fill=0)
    # A one-pixel code in the corner as well, so that two indices never render alike.
    im.putpixel((size[0] - 1, size[1] - 1), index % 251)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def digest(data: bytes) -> str:
    """The emulator's key of an image sent as these bytes (``stats.successes_by_image``)."""
    return hashlib.sha256(data).hexdigest()


def wait_until(condition: Callable[[], bool], timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def sent_digest(image: bytes, model: str = "qwen-vl-ocr") -> str:
    """The emulator's key of ``image`` as the client will send it (after any downscaling or re-encoding)."""
    from qwen_ocr import prepare_image
    from qwen_ocr.testing._wire import image_digest

    key = image_digest(prepare_image(image, model=model).url)
    assert key is not None
    return key


class OverBudget(BaseException):
    """Raised in the main thread when an example runs past its time budget (a BaseException, so that no
    ``except Exception`` in the code under test can swallow it)."""


@contextlib.contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Fail with :class:`OverBudget` if the block runs longer than ``seconds`` (a hang guard; POSIX main thread
    only, a no-op elsewhere). Pure-Python loops are interrupted at once, C code when it returns."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        raise OverBudget(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

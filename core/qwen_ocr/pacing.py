"""Client-side pacing: stay just under the account's requests-per-minute and tokens-per-minute limits.

A cloud OCR job is bound by ``min(concurrency / latency, RPM / 60)`` pages per second. Sending faster than the
rate limit does not read pages faster; it buys 429s, retries and back-off storms. :class:`Pacer` spaces request
starts evenly at a little under the limit (a generic cell rate algorithm; no bursts by default, because the service
may also enforce RPM/60 per second), and adapts: a 429 pauses every sender for the
``Retry-After`` and lowers the pace, and successes bring it back up step by step. When no limit is known it sends
freely until the first 429, then paces at what the service just proved it accepts.

The pacer is pure arithmetic under a lock: :meth:`Pacer.reserve` returns how long the caller must wait, and the
sync client sleeps while the async client awaits, so one pacer serves threads and event loops alike.

Example::

    from qwen_ocr.pacing import Pacer

    pacer = Pacer(rpm=600)                 # qwen-vl-ocr's documented limit
    delay = pacer.reserve(tokens=1200)     # seconds to wait before sending this request
    ...
    pacer.on_throttled(retry_after=2.0)    # the service said 429: everyone waits and slows down
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Pacer", "PacerStats"]

_WINDOW = 60.0
_MIN_SAMPLE = 10  # requests in the last minute needed before a 429 teaches a rate limit


@dataclass
class PacerStats:
    """What a pacer has done.

    Attributes:
        reserved: requests that asked for a start time.
        delayed: requests that had to wait.
        waited: seconds of waiting handed out, in all.
        throttled: 429s reported.
        rpm: the pace now, in requests per minute (``None``: unpaced).
    """

    reserved: int = 0
    delayed: int = 0
    waited: float = 0.0
    throttled: int = 0
    rpm: float | None = None


class Pacer:
    """Paces request starts to a requests-per-minute and tokens-per-minute budget; thread-safe.

    Args:
        rpm: the requests-per-minute limit; ``None`` when unknown (learned from the first 429).
        tpm: the tokens-per-minute limit (input + output); ``None`` for none.
        headroom: the fraction of the limits to use (default 0.95): room for clock skew and other senders.
        burst: requests that may start back to back after idle time (default 1: the service may enforce the
            limit per second as well, RPM/60, so a burst above that is refused even under the minute's limit).
        clock: a monotonic clock in seconds (tests pass a fake one).

    >>> pacer = Pacer(rpm=60, headroom=1.0, burst=1, clock=lambda: 0.0)
    >>> [pacer.reserve() for _ in range(3)]
    [0.0, 1.0, 2.0]
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float = 0.95,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rpm is not None and rpm <= 0:
            raise ValueError("rpm must be positive (or None for no limit)")
        if tpm is not None and tpm <= 0:
            raise ValueError("tpm must be positive (or None for no limit)")
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self._limit_rpm = rpm
        self._tpm = tpm
        self._headroom = headroom
        self._burst = burst
        self._clock = clock
        self._lock = threading.Lock()
        self._factor = 1.0  # adaptive share of the paced rate: lowered by 429s, raised by successes
        self._next_request = 0.0  # the theoretical start time of the next request (GCRA)
        self._next_token = 0.0  # the same for the token budget
        self._paused_until = 0.0
        self._recent: deque[float] = deque()  # start times within the last minute, to learn an unknown limit
        self._expected_output = 512.0  # output tokens expected per request, for the token budget
        self._expected_input = 1280.0  # input tokens assumed for a request of unknown size
        self.stats = PacerStats(rpm=self.rpm)

    @property
    def rpm(self) -> float | None:
        """The pace now, in requests per minute (``None``: no limit known yet)."""
        if self._limit_rpm is None:
            return None
        return self._limit_rpm * self._headroom * self._factor

    @property
    def limit_rpm(self) -> float | None:
        """The requests-per-minute limit being paced to (given, or learned from a 429)."""
        return self._limit_rpm

    def reserve(self, tokens: int | None = None) -> float:
        """Claim the next start time for a request expected to use ``tokens`` input tokens.

        Args:
            tokens: the request's input tokens; ``None`` when unknown (an image given by URL): the average of
                the requests seen so far is assumed.

        Returns:
            Seconds to wait before sending (0.0 to send now).
        """
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            rpm = self.rpm
            if rpm is not None:
                interval, burst = self._spacing(rpm)
                start = max(start, self._next_request - (burst - 1) * interval)
                self._next_request = max(self._next_request, start) + interval
            if self._tpm is not None:
                rate = self._tpm * self._headroom * self._factor / _WINDOW  # tokens per second
                expected_input = self._expected_input if tokens is None else tokens
                cost = (expected_input + self._expected_output) / rate
                allowance = max(1.0, rate * 0.03 * _WINDOW) / rate  # 3% of a minute's tokens may go at once
                start = max(start, self._next_token - allowance)
                self._next_token = max(self._next_token, start) + cost
            self._recent.append(start)
            while self._recent and self._recent[0] <= start - _WINDOW:
                self._recent.popleft()
            delay = max(0.0, start - now)
            self.stats.reserved += 1
            if delay > 0:
                self.stats.delayed += 1
                self.stats.waited += delay
            return delay

    def on_success(self, output_tokens: int | None = None, input_tokens: int | None = None) -> None:
        """A request succeeded: recover the pace a step, and learn the typical request size."""
        with self._lock:
            self._factor = min(1.0, self._factor + 0.02)
            if output_tokens is not None and output_tokens > 0:
                self._expected_output = 0.9 * self._expected_output + 0.1 * output_tokens
            if input_tokens is not None and input_tokens > 0:
                self._expected_input = 0.9 * self._expected_input + 0.1 * input_tokens
            self.stats.rpm = self.rpm

    def on_throttled(self, retry_after: float | None = None, *, default_pause: float = 1.0) -> None:
        """The service answered 429: pause every sender for ``retry_after`` and slow down.

        Args:
            retry_after: the service's ``Retry-After``, in seconds.
            default_pause: the pause when the service gave none (the client passes its first back-off delay).
        """
        with self._lock:
            now = self._clock()
            self.stats.throttled += 1
            sent = sum(1 for t in self._recent if t > now - _WINDOW)
            if self._limit_rpm is None and sent >= _MIN_SAMPLE:
                # Learn the limit: what was sent in the last minute was (just) too much.
                elapsed = min(_WINDOW, max(1.0, now - self._recent[0]))
                self._limit_rpm = max(1.0, sent * _WINDOW / elapsed)
                self._next_request = now
            # (Too few requests to tell a rate from a stray 429: only the pause below applies.)
            self._factor = max(0.1, self._factor * 0.8)
            pause = retry_after if retry_after is not None else default_pause
            self._paused_until = max(self._paused_until, now + pause)
            rpm = self.rpm
            if rpm is not None:  # no burst when the pause ends: start again at the paced rate
                interval, burst = self._spacing(rpm)
                self._next_request = max(self._next_request, self._paused_until + (burst - 1) * interval)
            self.stats.rpm = rpm

    def _spacing(self, rpm: float) -> tuple[float, int]:
        """Seconds between starts at ``rpm``, and the burst allowed after idle time."""
        return _WINDOW / rpm, self._burst if self._burst is not None else 1

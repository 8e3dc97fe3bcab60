"""Client-side pacing: stay just under the account's requests-per-minute and tokens-per-minute limits.

A cloud OCR job is bound by ``min(concurrency / latency, RPM / 60)`` pages per second. Sending faster than the
rate limit does not read pages faster; it buys 429s, retries and back-off storms. :class:`Pacer` spaces request
starts evenly at a little under the limit (a generic cell rate algorithm; no bursts by default, because the service
may also enforce RPM/60 per second), and adapts: a 429 pauses every sender for the
``Retry-After`` and lowers the pace, and successes bring it back up step by step. When no limit is known it sends
freely until the first 429, then paces at what the service just proved it accepts.

The pacer is pure arithmetic under a lock: :meth:`Pacer.reserve` returns how long the caller must wait, and the
sync client sleeps while the async client awaits, so one pacer serves threads and event loops alike.

**Late wake-ups.** A request starts when its thread wakes up, and a busy machine wakes threads late: a request
late by 60 ms while the next one is on time leaves less than a second between requests that should be a second
apart, and the service's per-second limit refuses the one too many. By default (``headroom=None``) the pacer
therefore plans starts so that any window of ``1 s + margin`` holds at most the per-second limit (``RPM // 60``),
where the margin is the lateness of this process's thread wake-ups, measured as it runs (a daemon thread that
sleeps 20 ms at a time and records how late it wakes, running only while a paced client is in use; it stops
after 10 s without requests), plus 20 ms for the way to the service, plus 50 ms for each 429 that still got
through (fading over the next 50 successes). On a quiet machine that is 2-3% under the per-second limit (the
fixed 0.95 headroom gave up 5%, and a 100-page job at RPM 1,200 reached 89% of the bound with it); under CPU load
it widens by itself. Over a minute, at most ``0.95 x RPM`` requests start (:data:`MINUTE_SHARE`: room for other
senders).
A number for ``headroom`` keeps the plain behaviour: starts evenly at that fraction of the limit, no margin.

Example::

    from qwen_ocr.pacing import Pacer

    pacer = Pacer(rpm=600)                 # qwen-vl-ocr's documented limit
    delay = pacer.reserve(tokens=1200)     # seconds to wait before sending this request
    ...
    pacer.on_throttled(retry_after=2.0)    # the service said 429: everyone waits and slows down
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["MINUTE_SHARE", "Pacer", "PacerHook", "PacerStats", "wake_lateness"]

_WINDOW = 60.0
_MIN_SAMPLE = 10  # requests in the last minute needed before a 429 teaches a rate limit
MINUTE_SHARE = 0.95
"""The share of the RPM limit used over any minute by default (room for other senders and clock skew)."""
_BASE_MARGIN = 0.02  # seconds: our send vs the service's clock when threads wake on time
_MAX_MARGIN = 0.5  # seconds: the widest per-second margin (a 33% slower pace at the per-second limit)
_THROTTLED_MARGIN = 0.05  # seconds added to the margin by a 429 that got through the pacing (decays with successes)


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

    def count(self, delay: float) -> None:
        """One request reserved a start ``delay`` seconds away."""
        self.reserved += 1
        if delay > 0:
            self.delayed += 1
            self.waited += delay


@runtime_checkable
class PacerHook(Protocol):
    """What a client asks of its pacer (``client.pacer``): a start time per request, and how each one went.

    :class:`Pacer` paces one process; another object with these methods can stand in for it, such as
    :class:`qwen_ocr.ray.SharedPacer`, which asks one limiter shared by a whole Ray cluster. Every attempt goes
    through it, retries included: :meth:`reserve` before sending, then :meth:`on_success` or :meth:`on_throttled`.

    >>> isinstance(Pacer(rpm=60), PacerHook)
    True
    """

    stats: PacerStats

    def reserve(self, tokens: int | None = None) -> float:
        """Seconds to wait before sending a request of ``tokens`` input tokens (``None``: unknown)."""
        ...

    def on_success(self, output_tokens: int | None = None, input_tokens: int | None = None) -> None:
        """A request succeeded."""
        ...

    def on_throttled(self, retry_after: float | None = None, *, default_pause: float = 1.0) -> None:
        """The service answered 429 (``retry_after``: its ``Retry-After``, in seconds)."""
        ...


class Pacer:
    """Paces request starts to a requests-per-minute and tokens-per-minute budget; thread-safe.

    Args:
        rpm: the requests-per-minute limit; ``None`` when unknown (learned from the first 429).
        tpm: the tokens-per-minute limit (input + output); ``None`` for none.
        headroom: ``None`` (default): adaptive, see the module doc (starts at the per-second limit with a margin
            for late wake-ups, at most :data:`MINUTE_SHARE` of the limit per minute, 0.95 of the token limit); a
            number: the fixed fraction of the limits to use, starts spaced evenly at it.
        burst: requests that may start back to back after idle time (default 1: the service may enforce the
            limit per second as well, RPM/60, so a burst above that is refused even under the minute's limit).
        clock: a monotonic clock in seconds (tests pass a fake one).
        lateness: seconds by which this process's threads wake up late now (default: :func:`wake_lateness` with
            the real clock, 0 with another one).

    >>> pacer = Pacer(rpm=60, headroom=1.0, burst=1, clock=lambda: 0.0)
    >>> [pacer.reserve() for _ in range(3)]
    [0.0, 1.0, 2.0]
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        *,
        headroom: float | None = None,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        lateness: Callable[[], float] | None = None,
    ) -> None:
        if rpm is not None and rpm <= 0:
            raise ValueError("rpm must be positive (or None for no limit)")
        if tpm is not None and tpm <= 0:
            raise ValueError("tpm must be positive (or None for no limit)")
        if headroom is not None and not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self._limit_rpm = rpm
        self._tpm = tpm
        self._adaptive = headroom is None
        self._headroom = MINUTE_SHARE if headroom is None else headroom
        self._burst = burst
        self._clock = clock
        self._lateness = lateness if lateness is not None else wake_lateness if clock is time.monotonic else _on_time
        self._learned_margin = 0.0  # seconds of margin taught by 429s that got through the pacing
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
        """The pace now, in requests per minute, sustained over a minute (``None``: no limit known yet)."""
        if self._limit_rpm is None:
            return None
        minute = self._limit_rpm * self._headroom * self._factor
        if not self._adaptive:
            return minute
        return min(minute, _WINDOW / self._spacing(self._limit_rpm)[0])

    @property
    def margin(self) -> float:
        """Seconds added to the per-second window for late wake-ups (0 with a fixed ``headroom``)."""
        if not self._adaptive:
            return 0.0
        measured = max(0.0, float(self._lateness()))
        return min(_MAX_MARGIN, _BASE_MARGIN + measured + self._learned_margin)

    @property
    def limit_rpm(self) -> float | None:
        """The requests-per-minute limit being paced to (given, or learned from a 429)."""
        return self._limit_rpm

    @property
    def limit_tpm(self) -> float | None:
        """The tokens-per-minute limit being paced to (``None``: none)."""
        return self._tpm

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
            limit = self._limit_rpm
            if limit is not None:
                interval, burst = self._spacing(limit)
                start = max(start, self._next_request - (burst - 1) * interval)
                if self._adaptive:
                    # At most the minute's share in any 60 s of planned starts (they are planned in order).
                    cap = max(1, math.floor(limit * self._headroom * self._factor))
                    if len(self._recent) >= cap:
                        start = max(start, self._recent[-cap] + _WINDOW)
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
            self.stats.count(delay)
            return delay

    def on_success(self, output_tokens: int | None = None, input_tokens: int | None = None) -> None:
        """A request succeeded: recover the pace a step, and learn the typical request size."""
        with self._lock:
            self._factor = min(1.0, self._factor + 0.02)
            self._learned_margin = max(0.0, self._learned_margin - _THROTTLED_MARGIN / 50)
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
            if self._limit_rpm is not None and self._adaptive:
                # Through the pacing all the same: starts reached the service closer together than planned.
                self._learned_margin = min(_MAX_MARGIN, self._learned_margin + _THROTTLED_MARGIN)
            if self._limit_rpm is None and sent >= _MIN_SAMPLE:
                # Learn the limit: what was sent in the last minute was (just) too much.
                elapsed = min(_WINDOW, max(1.0, now - self._recent[0]))
                self._limit_rpm = max(1.0, sent * _WINDOW / elapsed)
                self._next_request = now
            # (Too few requests to tell a rate from a stray 429: only the pause below applies.)
            self._factor = max(0.1, self._factor * 0.8)
            pause = retry_after if retry_after is not None else default_pause
            self._paused_until = max(self._paused_until, now + pause)
            if self._limit_rpm is not None:  # no burst when the pause ends: start again at the paced rate
                interval, burst = self._spacing(self._limit_rpm)
                self._next_request = max(self._next_request, self._paused_until + (burst - 1) * interval)
            self.stats.rpm = self.rpm

    def _spacing(self, limit: float) -> tuple[float, int]:
        """Seconds between starts under the RPM ``limit``, and the burst allowed after idle time.

        Fixed ``headroom``: evenly at that share of the limit. Adaptive: the per-second limit (``limit // 60``, at
        least 1) in any ``1 s + margin``, and never faster than the limit itself; slower after 429s (the factor)."""
        burst = self._burst if self._burst is not None else 1
        if not self._adaptive:
            return _WINDOW / (limit * self._headroom * self._factor), burst
        per_second = max(1, math.floor(limit / _WINDOW))
        interval = max((1.0 + self.margin) / per_second, _WINDOW / limit)
        return interval / self._factor, burst


def _on_time() -> float:
    return 0.0


class _WakeMonitor:
    """How late this process's threads wake up now: a daemon thread sleeps :attr:`PERIOD` at a time and records by
    how much it overslept; :meth:`lateness` is the worst of the last :attr:`SPAN` seconds. It runs only while
    asked (it stops after :attr:`IDLE` seconds without a question, and starts again at the next one)."""

    PERIOD = 0.02
    SPAN = 3.0
    IDLE = 10.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, float]] = deque()
        self._running = False
        self._asked = 0.0

    def lateness(self) -> float:
        now = time.monotonic()
        with self._lock:
            self._asked = now
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="qwen-ocr-wake-monitor", daemon=True).start()
            while self._samples and self._samples[0][0] < now - self.SPAN:
                self._samples.popleft()
            return max((late for _, late in self._samples), default=0.0)

    def _run(self) -> None:
        while True:
            due = time.monotonic() + self.PERIOD
            time.sleep(self.PERIOD)
            now = time.monotonic()
            with self._lock:
                self._samples.append((now, max(0.0, now - due)))
                if now - self._asked > self.IDLE:
                    self._running = False
                    self._samples.clear()
                    return

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._samples = deque()
        self._running = False


_monitor = _WakeMonitor()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_monitor._after_fork)


def wake_lateness() -> float:
    """Seconds by which this process's threads wake up late now (the worst of the last 3 s; see the module doc)."""
    return _monitor.lateness()

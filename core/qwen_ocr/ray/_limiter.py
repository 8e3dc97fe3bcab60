"""One rate limit for a whole Ray cluster: the :class:`RateLimiter` actor and the :class:`SharedPacer` of each worker.

The limiter is the local :class:`~qwen_ocr.pacing.Pacer` (the same arithmetic: starts spaced so that any
``1 s + margin`` holds at most ``RPM // 60`` of them, at most 0.95 x RPM in any minute, the token budget, a 429
pausing everyone and slowing the pace) living in one actor, so that every process of the cluster gets its start
times from one plan. A start time travels as a delay (seconds from the moment the limiter answers), never as a
clock reading, so the machines' clocks need not agree: a worker starts the request that long after the answer
reaches it, so later than planned by the answer's way back. Each answer carries the limiter's clock reading; the
worker's own reading on arrival minus it is the clocks' offset plus that way back, and its excess over the lowest
of the last minute (the quickest way back seen, the offset being fixed) is how much later this answer came: the
worker reports it as lateness, which widens everyone's margin. Workers call it through :class:`SharedPacer`, which
a client takes as its pacer (``client.pacer``, the :class:`~qwen_ocr.pacing.PacerHook`): every attempt, retries
included, asks it first.

Example::

    limiter = create_limiter(rpm=600)                 # on the driver
    client.pacer = SharedPacer(limiter)               # in each worker: its requests now share the limit
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from ..errors import QwenOCRError
from ..pacing import Pacer, PacerStats, wake_lateness

__all__ = ["LIMITER_NAMESPACE", "RateLimiter", "RateLimiterLostError", "SharedPacer", "create_limiter"]

logger = logging.getLogger("qwen_ocr")

LIMITER_NAMESPACE = "qwen_ocr"
"""The Ray namespace of named limiters (see :func:`create_limiter`)."""

_LATENESS_SPAN = 3.0  # seconds: a worker's reported lateness counts for this long (as the local wake monitor's)
_MAX_BATCH = 64  # start times granted in one call, at most
_GAP_SPAN = 60.0  # seconds: the quickest answer of this span stands for the clocks' offset


class RateLimiterLostError(QwenOCRError):
    """The cluster's rate limiter actor is gone (its owner, the driver, ended): no request may start unpaced."""

    default_code = "RateLimiterLost"


class RateLimiter:
    """The account's pacer, as a Ray actor: grants every worker's requests their start times, as delays.

    Create it with :func:`create_limiter`; workers reach it through :class:`SharedPacer`.

    Args:
        rpm: the requests-per-minute limit; ``None``: unknown (learned from the first 429s, as the local pacer).
        tpm: the tokens-per-minute limit; ``None`` for none.
        headroom: as :class:`~qwen_ocr.pacing.Pacer`'s (``None``: adaptive, the per-second limit with a margin).

    >>> limiter = RateLimiter(rpm=120, clock=lambda: 100.0)
    >>> limiter.grant([None, None, None])  # 2 in any second (+ a 20 ms margin) at 120 RPM
    (100.0, [0.0, 0.51, 1.02])
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        headroom: float | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._now = clock()
        self._reports: deque[tuple[float, float]] = deque()  # (when, seconds late) as the workers measured it
        self._pacer = Pacer(rpm, tpm, headroom=headroom, clock=lambda: self._now, lateness=self._lateness)
        self._granted = 0
        self._throttled = 0

    def grant(
        self,
        tokens: list[int | None],
        lateness: float = 0.0,
        outcomes: list[tuple[int | None, int | None]] | None = None,
    ) -> tuple[float, list[float]]:
        """Start times for requests of ``tokens`` input tokens each, in order, as seconds to wait from now (the
        moment of this answer): delays, not clock readings, so that workers on other machines need no clock in
        common with this one; with this limiter's clock reading now (for the worker to time the answer's way back).

        Args:
            tokens: one entry per request (``None``: size unknown).
            lateness: how late the asking worker's threads wake up now (seconds); widens the margin for everyone.
            outcomes: the ``(output_tokens, input_tokens)`` of the worker's successes since its last call.
        """
        self._now = self._clock()
        if lateness > 0:
            self._reports.append((self._now, lateness))
        for output_tokens, input_tokens in outcomes or ():
            self._pacer.on_success(output_tokens, input_tokens)
        starts = [round(self._pacer.reserve(count), 6) for count in tokens]
        self._granted += len(starts)
        return self._now, starts

    def throttled(self, retry_after: float | None = None, default_pause: float = 1.0) -> None:
        """A worker got a 429: every worker pauses and the pace slows (see :meth:`Pacer.on_throttled`)."""
        self._now = self._clock()
        self._throttled += 1
        self._pacer.on_throttled(retry_after, default_pause=default_pause)

    def stats(self) -> dict[str, Any]:
        """What the limiter has done: ``granted`` start times, ``throttled`` 429s reported, the pace (``rpm``, the
        limit ``limit_rpm``), the ``margin`` now, and the pacer's counters."""
        self._now = self._clock()
        return {
            "granted": self._granted,
            "throttled": self._throttled,
            "rpm": self._pacer.rpm,
            "limit_rpm": self._pacer.limit_rpm,
            "limit_tpm": self._pacer.limit_tpm,
            "margin": self._pacer.margin,
            **{f"pacer_{k}": v for k, v in asdict(self._pacer.stats).items()},
        }

    def _lateness(self) -> float:
        while self._reports and self._reports[0][0] < self._now - _LATENESS_SPAN:
            self._reports.popleft()
        return max((late for _, late in self._reports), default=0.0)


def create_limiter(
    rpm: float | None = None,
    tpm: float | None = None,
    *,
    headroom: float | None = None,
    name: str | None = None,
) -> Any:
    """Start a :class:`RateLimiter` actor (from the driver: it lives as long as its handle is referenced there).

    Args:
        rpm: the account's requests per minute (``None``: learned from the first 429s).
        tpm: its tokens per minute (``None``: none).
        headroom: see :class:`~qwen_ocr.pacing.Pacer`.
        name: a name in the ``qwen_ocr`` namespace: the existing actor of that name is returned if there is one,
            so independent jobs (or workers) can share it.

    Returns:
        The actor handle: pass it to the workers (``QwenOCRMapper(limiter=...)``).
    """
    import ray

    options: dict[str, Any] = {"num_cpus": 0, "max_concurrency": 1}
    if name is not None:
        options.update(name=name, namespace=LIMITER_NAMESPACE, get_if_exists=True)
    return ray.remote(RateLimiter).options(**options).remote(rpm, tpm, headroom)


class _Ticket:
    __slots__ = ("error", "start", "tokens")

    def __init__(self, tokens: int | None) -> None:
        self.tokens = tokens
        self.start: float | None = None
        self.error: BaseException | None = None


class SharedPacer:
    """A worker's pacer: asks the cluster's :class:`RateLimiter` for each request's start time; thread-safe.

    It is what a client's ``pacer`` attribute holds in a Ray worker (the :class:`~qwen_ocr.pacing.PacerHook`):
    the client asks it before every attempt (retries too) and tells it each success and each 429.

    Requests that ask while a call to the limiter is on its way are granted together by the next call (one round
    trip for all of them); a start time is only ever asked for a request that is waiting for it, so none is held
    back and used late. Successes are sent along with the next call; a 429 is sent at once.

    Args:
        limiter: the :class:`RateLimiter` actor handle.
        reconnect: called to find a limiter again when the actor is gone (a named one, re-created); ``None``: a
            lost limiter fails the request with :class:`RateLimiterLostError`.
    """

    def __init__(self, limiter: Any, *, reconnect: Callable[[], Any] | None = None) -> None:
        self._limiter = limiter
        self._reconnect = reconnect
        self._cond = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._calling = False
        self._outcomes: list[tuple[int | None, int | None]] = []
        self.calls = 0
        """Calls made to the limiter (each grants a batch of start times)."""
        self._gaps: deque[tuple[float, float]] = deque()  # (arrival, arrival - the limiter's clock): the last minute
        self.stats = PacerStats()

    def __repr__(self) -> str:
        return f"SharedPacer(calls={self.calls}, reserved={self.stats.reserved}, throttled={self.stats.throttled})"

    def reserve(self, tokens: int | None = None) -> float:
        """Seconds to wait before sending a request of ``tokens`` input tokens: its start time from the limiter."""
        ticket = _Ticket(tokens)
        with self._cond:
            self._waiting.append(ticket)
            while ticket.start is None and ticket.error is None:
                if self._calling:
                    self._cond.wait()
                    continue
                self._calling = True
                batch, self._waiting = self._waiting[:_MAX_BATCH], self._waiting[_MAX_BATCH:]
                outcomes, self._outcomes = self._outcomes, []
                self._cond.release()
                try:
                    self._settle(batch, outcomes)
                except BaseException as exc:  # (an interrupt): no ticket of the batch is left waiting for ever
                    for waiting in batch:
                        if waiting.start is None and waiting.error is None:
                            waiting.error = exc
                    raise
                finally:
                    self._cond.acquire()
                    self._calling = False
                    self._cond.notify_all()
        if ticket.error is not None:
            raise ticket.error
        assert ticket.start is not None
        delay = max(0.0, ticket.start - time.monotonic())
        with self._cond:
            self.stats.count(delay)
        return delay

    def on_success(self, output_tokens: int | None = None, input_tokens: int | None = None) -> None:
        """A request succeeded: told to the limiter with the next call."""
        with self._cond:
            self._outcomes.append((output_tokens, input_tokens))

    def on_throttled(self, retry_after: float | None = None, *, default_pause: float = 1.0) -> None:
        """A 429: told to the limiter at once (every worker pauses and slows down)."""
        with self._cond:
            self.stats.throttled += 1
        try:
            self._limiter.throttled.remote(retry_after, default_pause)  # not waited for; calls stay in order
        except Exception as exc:  # the limiter is gone: the next reserve() says so
            logger.debug("qwen_ocr: could not report a 429 to the rate limiter: %s", type(exc).__name__)

    def _settle(self, batch: list[_Ticket], outcomes: list[tuple[int | None, int | None]]) -> None:
        """Ask the limiter for the batch's start times (outside the lock); each ticket gets its start or the error."""
        import ray

        lateness = _lateness()
        for attempt in range(2):
            try:
                stamp, delays = ray.get(self._limiter.grant.remote([t.tokens for t in batch], lateness, outcomes))
                break
            except ray.exceptions.RayActorError:
                if attempt == 0 and self._reconnect is not None:
                    self._limiter = self._reconnect()
                    self._gaps.clear()  # another actor, maybe on another machine: another clock
                    continue
                error = RateLimiterLostError(
                    "the cluster's rate limiter is gone (the driver that created it ended?); requests are not sent "
                    "unpaced. Keep the Dataset's driver alive while it is read."
                )
                for ticket in batch:
                    ticket.error = error
                return
            except Exception as exc:
                for ticket in batch:
                    ticket.error = exc
                return
        self.calls += 1
        received = time.monotonic()
        _note_late(self._way_back(received, stamp))
        for ticket, delay in zip(batch, delays, strict=True):
            ticket.start = received + delay

    def _way_back(self, received: float, stamp: float) -> float:
        """How much later than the quickest answer of the last minute this one arrived: the delays count from the
        limiter's answer, so every start of the batch is that much later than planned (said next time, as lateness).

        ``received - stamp`` is the two clocks' offset (fixed, whatever it is) plus the answer's way back; the
        lowest of the last minute stands for the offset (a minute also bounds the clocks' drift)."""
        gap = received - stamp
        while self._gaps and self._gaps[0][0] < received - _GAP_SPAN:
            self._gaps.popleft()
        while self._gaps and self._gaps[-1][1] >= gap:
            self._gaps.pop()  # a later, lower gap makes the higher ones before it irrelevant to the minimum
        self._gaps.append((received, gap))
        return gap - self._gaps[0][1]


_late_lock = threading.Lock()
_late: deque[tuple[float, float]] = deque()


def _lateness() -> float:
    """How late this worker starts requests now: its threads' wake-ups (:func:`~qwen_ocr.pacing.wake_lateness`) or
    its grants arriving after their start time, whichever is worse over the last few seconds."""
    now = time.monotonic()
    with _late_lock:
        while _late and _late[0][0] < now - _LATENESS_SPAN:
            _late.popleft()
        late = max((seconds for _, seconds in _late), default=0.0)
    return max(late, wake_lateness())


def _note_late(seconds: float) -> None:
    """Record how late this worker's starts are against the limiter's plan (folded into the lateness it reports)."""
    now = time.monotonic()
    with _late_lock:
        _late.append((now, seconds))
        while _late and _late[0][0] < now - _LATENESS_SPAN:
            _late.popleft()

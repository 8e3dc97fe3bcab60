"""The retry policy: which failures are sent again, and how long to wait (exponential backoff with jitter).

Retried: throttling (429 except billing codes), 408 and 5xx, dropped connections, timeouts and garbled replies;
``Retry-After`` is honoured. Never retried: 400, 401, 403, 404, 413, 415 and billing errors.

Example::

    from qwen_ocr import QwenOCR, RetryPolicy
    client = QwenOCR(retry=RetryPolicy(max_retries=5, initial_delay=1.0, max_delay=30.0))

A synchronous request cannot be interrupted from another thread once it is on the wire, but everything around it
can: inside :func:`cancel_scope`, the sync client checks the scope's event before each attempt and wakes from its
retry and pacing waits as soon as the event is set, raising :class:`~qwen_ocr.errors.RequestCancelledError`
(never retried). :func:`qwen_ocr.read_document` runs its pages in such a scope, so closing a reading sends no
further request. (Async requests need none of this: cancelling the task cancels the request.)
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._checks import MAX_RETRIES, check_number, check_whole
from .errors import RequestCancelledError, is_retryable

if TYPE_CHECKING:  # tenacity is imported by tenacity_kwargs only (issue 17: the client's import stays light)
    from tenacity import RetryCallState

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "cancel_scope",
    "cancellable_sleep",
    "current_cancel_event",
    "raise_if_cancelled",
    "retry_delay",
    "tenacity_kwargs",
]

logger = logging.getLogger("qwen_ocr")


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: seconds before the first retry; doubled for each further one.
        max_delay: the longest wait between two attempts.
        jitter: fraction of the delay drawn at random, so that parallel clients do not retry in lockstep.
        max_retry_after: the longest ``Retry-After`` we honour; longer values are capped.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        # InvalidArgumentError is a ValueError too, as these checks raised before.
        check_whole("max_retries", self.max_retries, minimum=0, maximum=MAX_RETRIES, code="InvalidRetryPolicy")
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            check_number(name, getattr(self, name), inclusive=True, unit=" of seconds", code="InvalidRetryPolicy")
        check_number("jitter", self.jitter, inclusive=True, maximum=1.0, code="InvalidRetryPolicy")


def backoff_delay(
    policy: RetryPolicy, attempt: int, retry_after: float | None = None, *, rng: random.Random | None = None
) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based); ``Retry-After`` wins when present.

    >>> backoff_delay(RetryPolicy(jitter=0), 3)
    2.0
    >>> backoff_delay(RetryPolicy(), 1, retry_after=5)
    5.0
    """
    if retry_after is not None:
        return float(min(max(0.0, retry_after), policy.max_retry_after))
    base: float = min(policy.max_delay, policy.initial_delay * 2.0 ** max(0, attempt - 1))
    if policy.jitter:
        draw: float = (rng or random).random()
        base *= 1 - policy.jitter * draw
    return base


def retry_delay(policy: RetryPolicy, attempt: int, error: BaseException) -> float | None:
    """Seconds to wait before the next attempt, after attempt number ``attempt`` (1-based) failed with ``error``;
    ``None`` when it is not retried (not a retryable failure, or no retries left). Both clients retry by this.

    >>> from qwen_ocr.errors import ServerError
    >>> retry_delay(RetryPolicy(jitter=0), 1, ServerError("busy", status_code=503))
    0.5
    >>> retry_delay(RetryPolicy(max_retries=1), 2, ServerError("busy", status_code=503)) is None
    True
    """
    if attempt > policy.max_retries or not is_retryable(error):
        return None
    return backoff_delay(policy, attempt, _retry_after(error))


def _retry_after(error: BaseException | None) -> float | None:
    """The ``Retry-After`` hint an error carries, in seconds."""
    retry_after = getattr(error, "retry_after", None)
    return float(retry_after) if isinstance(retry_after, (int, float)) else None


def _wait(policy: RetryPolicy) -> Any:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        return backoff_delay(policy, state.attempt_number, _retry_after(exc))

    return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    logger.info("qwen_ocr: attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, delay)


def tenacity_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` that implement this policy (for your own retry
    loops; the clients retry by :func:`retry_delay`)."""
    from tenacity import retry_if_exception, stop_after_attempt

    return {
        "stop": stop_after_attempt(policy.max_retries + 1),
        "wait": _wait(policy),
        "retry": retry_if_exception(is_retryable),
        "reraise": True,
        "before_sleep": _log_retry,
    }


_cancel_event: ContextVar[threading.Event | None] = ContextVar("qwen_ocr_cancel_event", default=None)


@contextlib.contextmanager
def cancel_scope(event: threading.Event) -> Iterator[threading.Event]:
    """Make the sync client's requests in this block (this thread, this context) stop when ``event`` is set.

    Once it is set, no attempt is started and no retry or pacing wait goes on: they raise
    :class:`~qwen_ocr.errors.RequestCancelledError`. A request already on the wire runs to its end (its answer,
    or the client's ``timeout``) and is not retried.

    Example::

        stop = threading.Event()
        def work() -> None:
            with cancel_scope(stop):
                client.ocr("scan.png")   # raises RequestCancelledError once stop is set, instead of retrying
        threading.Thread(target=work).start()
        stop.set()
    """
    token = _cancel_event.set(event)
    try:
        yield event
    finally:
        _cancel_event.reset(token)


def current_cancel_event() -> threading.Event | None:
    """The event of the innermost :func:`cancel_scope`, if any."""
    return _cancel_event.get()


def raise_if_cancelled() -> None:
    """Raise :class:`~qwen_ocr.errors.RequestCancelledError` if the current :func:`cancel_scope` was cancelled."""
    event = _cancel_event.get()
    if event is not None and event.is_set():
        raise RequestCancelledError("the reading was closed: this request is not sent.")


def cancellable_sleep(seconds: float) -> None:
    """``time.sleep`` that ends early, raising :class:`~qwen_ocr.errors.RequestCancelledError`, when the current
    :func:`cancel_scope` is cancelled (a plain sleep outside any scope)."""
    event = _cancel_event.get()
    if event is None:
        time.sleep(seconds)
        return
    if event.wait(max(0.0, seconds)):
        raise RequestCancelledError("the reading was closed while waiting to retry: the request is not sent again.")

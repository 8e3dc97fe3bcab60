"""The retry policy: which failures are sent again, and how long to wait (exponential backoff with jitter).

Retried: throttling (429 except billing codes), 408 and 5xx, dropped connections, timeouts and garbled replies;
``Retry-After`` is honoured. Never retried: 400, 401, 403, 404, 413, 415 and billing errors.

Example::

    from qwen_ocr import QwenOCR, RetryPolicy
    client = QwenOCR(retry=RetryPolicy(max_retries=5, initial_delay=1.0, max_delay=30.0))
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from ._checks import MAX_RETRIES, check_number, check_whole
from .errors import is_retryable

__all__ = ["RetryPolicy", "backoff_delay", "tenacity_kwargs"]

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


def _wait(policy: RetryPolicy) -> Any:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        retry_after = getattr(exc, "retry_after", None)
        hint = float(retry_after) if isinstance(retry_after, (int, float)) else None
        return backoff_delay(policy, state.attempt_number, hint)

    return wait


def _log_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    delay = state.next_action.sleep if state.next_action is not None else 0.0
    logger.info("qwen_ocr: attempt %d failed (%s); retrying in %.2fs", state.attempt_number, exc, delay)


def tenacity_kwargs(policy: RetryPolicy) -> dict[str, Any]:
    """Arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` that implement this policy."""
    return {
        "stop": stop_after_attempt(policy.max_retries + 1),
        "wait": _wait(policy),
        "retry": retry_if_exception(is_retryable),
        "reraise": True,
        "before_sleep": _log_retry,
    }

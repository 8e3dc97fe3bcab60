"""Checks of numeric arguments, shared by the clients and the retry policy so that both clients say the same thing.

Each check raises :class:`~qwen_ocr.errors.InvalidArgumentError` naming the argument, the accepted range and the
value received; ``bool`` is refused where a number is expected (``True`` is an ``int`` to Python, never what was
meant), and so are NaN and infinities.
"""

from __future__ import annotations

import math
from typing import Any

from .errors import InvalidArgumentError

__all__ = ["MAX_CONCURRENCY", "MAX_RETRIES", "check_number", "check_whole"]

MAX_CONCURRENCY = 1024
"""The most requests one client (or one ``ocr_many`` call) keeps in flight: far above any account's rate limit."""
MAX_RETRIES = 100
"""The most retries a policy may ask for."""


def check_whole(name: str, value: Any, *, minimum: int, maximum: int, code: str = "InvalidArgument") -> int:
    """``value`` when it is a whole number within ``[minimum, maximum]``; else an error naming ``name``.

    >>> check_whole("max_concurrency", 4, minimum=1, maximum=8)
    4
    """
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise InvalidArgumentError(
            f"{name} must be a whole number from {minimum} to {maximum} (got {_shown(value)}).", code=code
        )
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float = 0.0,
    inclusive: bool = False,
    maximum: float | None = None,
    unit: str = "",
    extra: str = "",
    code: str = "InvalidArgument",
) -> float:
    """``value`` when it is a finite number above ``minimum`` (or equal to it with ``inclusive``) and at most
    ``maximum``; else an error naming ``name``. ``extra`` names further accepted values (``", or None"``).

    >>> check_number("timeout", 2.5, unit=" seconds")
    2.5
    """
    ok = (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)
        and (value >= minimum if inclusive else value > minimum)
        and (maximum is None or value <= maximum)
    )
    if not ok:
        if maximum is not None:
            bounds = f"within {'[' if inclusive else '('}{minimum:g}, {maximum:g}]"
        else:
            bounds = f"{'>=' if inclusive else '>'} {minimum:g}"
        raise InvalidArgumentError(
            f"{name} must be a finite number{unit} {bounds}{extra} (got {_shown(value)}).", code=code
        )
    return float(value)


def _shown(value: Any) -> str:
    """The value as the message shows it: its repr, shortened; never an exception of its own."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 80 else text[:77] + "..."

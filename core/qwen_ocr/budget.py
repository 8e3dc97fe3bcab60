"""The pixel budget of a request: how many pixels of an image the model reads, hence its tokens and price (pure).

The service resizes every image into ``[min_pixels, max_pixels]`` (the documented ``smart_resize``) and bills
``pixels / patch**2 + 2`` image tokens. Sent without a budget, it applies a default of its own that matches no
documented setting (a recorded call was billed 1,862 tokens, about 1.9 MP, where the documented default says 8,194),
so the client states the budget on **every** request, and prepares, renders, estimates and sends one and the same
budget: the one chosen here.

**Levels** (``resolution=`` of ``ocr()``, ``stream()``, ``ocr_many()``, ``read_document``, ``open_document``,
``estimate_tokens``, ``estimate_document`` and the integrations), in image tokens, so the same on 32-px and 28-px
models:

- ``"standard"`` (the default): 2,560 tokens, 2,621,440 px at 32-px patches (about 170 dpi on a Letter or A4
  page), close to what the service reads by default today. Body text of 9 pt and up, receipts, forms, photos of
  documents.
- ``"high"``: the documented default budget, 8,192 tokens (8,388,608 px at 32 px, 6,422,528 at 28 px; 300 dpi on
  a Letter page). Small print (6-8 pt footnotes, contracts, dense tables), what the client sent before.
- ``"max"``: the model's ceiling, 30,000 tokens (30,720,000 px at 32 px): pages larger than A4 (A3, drawings,
  posters, newspapers) and large photos; a Letter page rendered from a PDF stays at 300 dpi (``dpi=``).

Or a number: ``max_pixels=`` is sent as given (and ``min_pixels=``, default the model's documented minimum).

After a reply, :func:`image_tokens_mismatch` compares the bill with the estimate; the client logs a large
difference once per model (:func:`note_mismatch`), so that a change of the service's own rules shows.

Example::

    >>> from qwen_ocr.models import model_spec
    >>> pixel_budget(model_spec("qwen-vl-ocr"))
    PixelBudget(min_pixels=3072, max_pixels=2621440)
    >>> pixel_budget(model_spec("qwen-vl-ocr"), resolution="high").max_pixels
    8388608
    >>> pixel_budget(model_spec("qwen-vl-ocr-2025-08-28")).max_pixels       # 2,560 tokens of 28 x 28 px
    2007040
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Literal

from .errors import InvalidArgumentError
from .models import ModelSpec

__all__ = [
    "DEFAULT_RESOLUTION",
    "MISMATCH_RATIO",
    "RESOLUTIONS",
    "STANDARD_TOKENS",
    "PixelBudget",
    "Resolution",
    "check_resolution",
    "image_tokens_mismatch",
    "note_mismatch",
    "pixel_budget",
]

logger = logging.getLogger("qwen_ocr")

Resolution = Literal["standard", "high", "max"]
"""A budget level: ``"standard"`` (default, 2,560 tokens), ``"high"`` (the documented default), ``"max"`` (the
model's ceiling)."""
RESOLUTIONS: tuple[Resolution, ...] = ("standard", "high", "max")
DEFAULT_RESOLUTION: Resolution = "standard"
STANDARD_TOKENS = 2560
"""Image tokens of the ``"standard"`` budget: 2,621,440 px at 32-px patches, 2,007,040 px at 28-px ones."""
MISMATCH_RATIO = 1.25
"""A bill more than this many times the estimate, or less than its inverse, is a large mismatch."""
_MISMATCH_TOKENS = 32
"""...and it must differ by more than this many tokens (tiny images: a few tokens either way are not news)."""


@dataclass(frozen=True)
class PixelBudget:
    """The pixel budget of one image: the service resizes it into ``[min_pixels, max_pixels]``."""

    min_pixels: int
    max_pixels: int


def check_resolution(value: object) -> Resolution | None:
    """``value`` as a :data:`Resolution`, or ``None``; anything else is an :class:`InvalidArgumentError`.

    >>> check_resolution("high"), check_resolution(None)
    ('high', None)
    """
    if value is None:
        return None
    if isinstance(value, str) and value in RESOLUTIONS:
        return value
    raise InvalidArgumentError(
        f"resolution={value!r} is not a level; use 'standard', 'high' or 'max' (or max_pixels= for a number).",
        code="InvalidResolution",
    )


def pixel_budget(
    spec: ModelSpec,
    *,
    resolution: Resolution | None = None,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
) -> PixelBudget:
    """The budget an image is prepared for, estimated at and sent with.

    ``max_pixels`` is taken as given; else the ``resolution`` level (default ``"standard"``), never above the
    model's ceiling. ``min_pixels`` is taken as given; else the model's documented minimum (lowered to
    ``max_pixels`` if that is smaller).

    Raises:
        InvalidArgumentError: an unknown ``resolution``, or both ``resolution`` and ``max_pixels``.
    """
    level = check_resolution(resolution)
    if level is not None and max_pixels is not None:
        raise InvalidArgumentError(
            f"pass either resolution= or max_pixels=, not both (got resolution={level!r} and "
            f"max_pixels={max_pixels!r}).",
            code="InvalidPixels",
        )
    if max_pixels is None:
        max_pixels = _level_pixels(spec, level or DEFAULT_RESOLUTION)
    if min_pixels is None:
        min_pixels = min(spec.min_pixels, max_pixels)
    return PixelBudget(min_pixels=min_pixels, max_pixels=max_pixels)


def _level_pixels(spec: ModelSpec, level: Resolution) -> int:
    if level == "max":
        return spec.max_pixels_ceiling
    if level == "high":
        return spec.max_pixels
    # Never above the model's own default (a registered model with a small budget keeps it).
    return min(STANDARD_TOKENS * spec.patch * spec.patch, spec.max_pixels)


def image_tokens_mismatch(estimated: int, billed: int) -> float | None:
    """``billed / estimated`` when the bill is far from the estimate (see :data:`MISMATCH_RATIO`), else ``None``
    (also when either is unknown, i.e. 0).

    >>> image_tokens_mismatch(8194, 1862)        # the recorded call of issue 16, against the old estimate
    0.22723944349524042
    >>> image_tokens_mismatch(2562, 2560) is None
    True
    """
    if estimated <= 0 or billed <= 0 or abs(billed - estimated) <= _MISMATCH_TOKENS:
        return None
    ratio = billed / estimated
    if 1 / MISMATCH_RATIO <= ratio <= MISMATCH_RATIO:
        return None
    return ratio


_noted: set[str] = set()
_noted_lock = threading.Lock()


def note_mismatch(
    *,
    model: str,
    estimated: int,
    billed: int,
    budget: PixelBudget,
    sent_size: tuple[int, int],
) -> bool:
    """Log (once per model and process) a bill far from the estimate; whether it was logged now."""
    ratio = image_tokens_mismatch(estimated, billed)
    if ratio is None:
        return False
    with _noted_lock:
        if model in _noted:
            return False
        _noted.add(model)
    logger.warning(
        "qwen_ocr: the service billed %s image tokens for an image the client estimated at %s (%s, %dx%d px sent, "
        "budget %s..%s px stated): %.2fx the estimate. The service's pixel budget may have changed; "
        "estimate_tokens and estimate_document are off by as much until the client follows it. Logged once per model.",
        f"{billed:,}",
        f"{estimated:,}",
        model,
        sent_size[0],
        sent_size[1],
        f"{budget.min_pixels:,}",
        f"{budget.max_pixels:,}",
        ratio,
    )
    return True


def _reset_calibration() -> None:
    """Forget which models were logged (for tests)."""
    with _noted_lock:
        _noted.clear()

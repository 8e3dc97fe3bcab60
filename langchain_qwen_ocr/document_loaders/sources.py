"""Moved to :mod:`qwen_ocr.sources` (the engine's, shared by every integration); kept importable from here."""

from __future__ import annotations

from qwen_ocr.sources import *  # noqa: F403
from qwen_ocr.sources import __all__ as __all__

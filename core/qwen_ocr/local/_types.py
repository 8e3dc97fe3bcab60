"""Plain data shared by the RapidOCR wrapper and the engine (no third-party imports)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DET_MODEL", "REC_MODEL", "RawLine"]

DET_MODEL = "PP-OCRv6_det_small.onnx"
"""The text detector bundled in the rapidocr 3.10 wheel."""
REC_MODEL = "PP-OCRv6_rec_small.onnx"
"""The text recogniser bundled in the rapidocr 3.10 wheel."""


@dataclass(frozen=True)
class RawLine:
    """One line as the engine found it: four corners (clockwise from the line's top-left), text, confidence."""

    points: tuple[tuple[float, float], ...]
    text: str
    score: float

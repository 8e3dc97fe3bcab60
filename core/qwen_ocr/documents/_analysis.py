"""What a PDF page's objects say (:class:`PageAnalysis`) and the lock around PDFium: no PDFium import here (pure).

:mod:`qwen_ocr.documents._pdf` imports pypdfium2 (20-30 ms), only when a PDF is opened; these two names are needed
before that.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

__all__ = ["PDFIUM_LOCK", "PageAnalysis"]

PDFIUM_LOCK = threading.RLock()
"""Held around every PDFium call of this package. Take it too if you call pypdfium2 from other threads."""

_SCAN_MAX_PATHS = 16  # scanners and OCR tools add a few rules and boxes; a drawn page has many more


@dataclass(frozen=True)
class PageAnalysis:
    """What a page's objects say about its text layer.

    Attributes:
        text: the page's text layer, cleaned (:func:`~qwen_ocr.documents.textlayer.clean_text_layer`).
        image_coverage: share of the page covered by its largest image (0 to 1).
        invisible_share: share of its text objects drawn invisibly (render mode 3), 0 when it has none.
        text_objects: number of text objects.
        path_objects: number of vector path objects (lines, shapes, text drawn as curves).
        image_dpi: the resolution of the finest image covering at least a quarter of the page (its pixels per
            inch as placed on the page); 0 when there is none. A scan stored at 600 dpi says 600 here.
        bilevel_images: the page has images and every one is 1 bit per pixel (a black-and-white scan: CCITT,
            JBIG2, ...), so it can be rendered without smoothing and sent as a 1-bit PNG with nothing lost.
    """

    text: str
    image_coverage: float
    invisible_share: float
    text_objects: int
    image_dpi: float = 0.0
    path_objects: int = 0
    bilevel_images: bool = False

    @property
    def looks_scanned(self) -> bool:
        """Whether the page is a picture of a page: an image over half of it, no visible text, hardly any vector
        drawing. Its pixels come from a raster, not from crisp text."""
        visible_text = self.text_objects * (1.0 - self.invisible_share)
        return self.image_coverage >= 0.5 and visible_text < 0.5 and self.path_objects <= _SCAN_MAX_PATHS

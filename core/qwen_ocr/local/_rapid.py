"""The only module that touches RapidOCR (``rapidocr`` + ``onnxruntime``): typed wrappers around its untyped calls.

Nothing here can download: the detector and recogniser are the ONNX files bundled in the ``rapidocr`` wheel, passed
by path (with a path RapidOCR never runs its downloader), the orientation classifier is never loaded, and images
are handed over as pixel arrays (a string would make RapidOCR fetch URLs). Importing this module imports
``rapidocr``; the rest of ``qwen_ocr`` imports it only when a local reading is asked for.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rapidocr
from PIL import Image
from rapidocr import RapidOCR
from rapidocr.utils.process_img import get_rotate_crop_image

from ._types import DET_MODEL, REC_MODEL, RawLine

__all__ = ["DET_MODEL", "REC_MODEL", "Pixels", "RapidBackend", "model_dir", "rapidocr_version", "to_pixels"]

_WINDOW = 8
"""Orientation checks read this many line heights from the start of a line."""

Pixels = npt.NDArray[np.uint8]
"""An image as RapidOCR takes it: height x width x 3, BGR, uint8."""


def rapidocr_version() -> str:
    """The installed RapidOCR version, e.g. ``"3.10.0"`` (``"unknown"`` when it has no distribution metadata)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rapidocr")
    except PackageNotFoundError:  # pragma: no cover - importable but not installed as a distribution
        return "unknown"


def model_dir() -> Path:
    """The folder of ONNX models inside the ``rapidocr`` wheel."""
    return Path(rapidocr.__file__).resolve().parent / "models"


def to_pixels(image: Image.Image) -> Pixels:
    """A PIL image as a contiguous BGR uint8 array."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return np.ascontiguousarray(rgb[:, :, ::-1])


class RapidBackend:
    """RapidOCR with the classifier off, bundled models only, and a lock around every inference.

    Args:
        det_limit: the detector sees the page scaled so that its longer side is at most this many pixels.
        threads: onnxruntime intra-op threads; ``None`` lets onnxruntime use every core.
    """

    def __init__(self, *, det_limit: int = 960, threads: int | None = None) -> None:
        models = model_dir()
        det, rec = models / DET_MODEL, models / REC_MODEL
        missing = [p.name for p in (det, rec) if not p.is_file()]
        if missing:
            raise FileNotFoundError(
                f"the rapidocr install has no bundled {', '.join(missing)} in {models}; reinstall rapidocr==3.10.0"
            )
        params: dict[str, Any] = {
            "Global.use_cls": False,
            "Global.log_level": "error",
            "Det.model_path": str(det),
            "Rec.model_path": str(rec),
            "Det.limit_type": "max",
            "Det.limit_side_len": int(det_limit),
            # The page is cut into line images at up to this size; the detector limit above is separate.
            "Global.max_side_len": 4000,
            # One line image per inference: no padding to the widest line of a batch; measured 10-15% faster.
            "Rec.rec_batch_num": 1,
        }
        if threads is not None:
            params["EngineConfig.onnxruntime.intra_op_num_threads"] = int(threads)
        self._ocr: Any = RapidOCR(params=params)
        self._lock = threading.Lock()
        self.det_limit = int(det_limit)

    def read(self, pixels: Pixels) -> list[RawLine]:
        """Detect and recognise every line of a BGR image; boxes in its pixels."""
        with self._lock:
            out: Any = self._ocr(pixels, use_det=True, use_cls=False, use_rec=True)
        boxes = getattr(out, "boxes", None)
        txts = getattr(out, "txts", None)
        scores = getattr(out, "scores", None)
        if boxes is None or txts is None or scores is None:
            return []
        lines: list[RawLine] = []
        for box, text, score in zip(boxes, txts, scores, strict=False):
            pts = tuple((float(x), float(y)) for x, y in np.asarray(box, dtype=np.float64).reshape(4, 2))
            lines.append(RawLine(points=pts, text=str(text), score=float(score)))
        return lines

    def recognize(self, crops: list[Pixels]) -> list[tuple[str, float]]:
        """Recognise line images (no detection); ``("", 0.0)`` for a crop that reads as nothing."""
        results: list[tuple[str, float]] = []
        with self._lock:
            for crop in crops:
                out: Any = self._ocr(crop, use_det=False, use_cls=False, use_rec=True)
                txts = getattr(out, "txts", None) or ("",)
                scores = getattr(out, "scores", None) or (0.0,)
                results.append((str(txts[0]), float(scores[0])))
        return results

    @staticmethod
    def crop(pixels: Pixels, points: tuple[tuple[float, float], ...]) -> Pixels:
        """The line image under four corners, straightened (RapidOCR's own cropping)."""
        quad = np.asarray(points, dtype=np.float32).reshape(4, 2)
        cropped: Pixels = get_rotate_crop_image(pixels, quad)
        return cropped

    def orientation_scores(self, pixels: Pixels, quads: list[tuple[tuple[float, float], ...]]) -> tuple[float, float]:
        """Sum of score x length of the start of these lines read as they are and read turned by 180 degrees.

        Only a window of each line (8 line heights long, about 15 characters) is read: enough to tell, and cheap.
        """
        crops = []
        for quad in quads:
            crop = self.crop(pixels, quad)
            crops.append(np.ascontiguousarray(crop[:, : max(1, crop.shape[0]) * _WINDOW]))
        turned = [self.rotate_180(crop) for crop in crops]
        weights = [score * len(text) for text, score in self.recognize(crops + turned)]
        return sum(weights[: len(crops)]), sum(weights[len(crops) :])

    @staticmethod
    def rotate_180(pixels: Pixels) -> Pixels:
        """The image turned by 180 degrees."""
        return np.ascontiguousarray(pixels[::-1, ::-1])

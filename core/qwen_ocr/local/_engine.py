"""``LocalEngine``: offline OCR with RapidOCR, answering in the same ``OCRResult`` shape as the service."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from PIL import Image

from ..errors import QwenOCRError, UnsupportedTaskError
from ..imaging import ImageInput
from ..results import OCRResult, TextLine, Usage
from ..tasks import Task, resolve_task
from . import geometry
from ._image import load_image
from ._types import RawLine

if TYPE_CHECKING:
    from ._rapid import Pixels, RapidBackend

__all__ = [
    "DEFAULT_DET_LIMIT",
    "SUPPORTED_TASKS",
    "UNSUPPORTED_TASKS",
    "LocalEngine",
    "LocalEngineUnavailableError",
]

DEFAULT_DET_LIMIT = 960
"""Longer side, in pixels, of the page as the text detector sees it (see ``benchmarks/LOCAL.md``)."""

SUPPORTED_TASKS: frozenset[Task | None] = frozenset(
    {None, Task.TEXT_RECOGNITION, Task.MULTI_LAN, Task.ADVANCED_RECOGNITION}
)
"""What the local provider can read: plain text (``None``, ``text_recognition``, ``multi_lan``) and text lines with
boxes (``advanced_recognition``). ``lines`` are filled for every one of them."""

UNSUPPORTED_TASKS: frozenset[Task] = frozenset(
    {Task.KEY_INFORMATION_EXTRACTION, Task.TABLE_PARSING, Task.DOCUMENT_PARSING, Task.FORMULA_RECOGNITION}
)
"""Tasks that need the Qwen-OCR model itself (fields, tables, LaTeX): they raise ``UnsupportedTaskError``."""

_ORIENTATION_SAMPLE = 6
"""How many of the longest lines are read both ways up when a page may be upside down."""
_CONFIDENT = 0.85
"""A reading whose length-weighted mean score reaches this is taken as upright without further checks."""


class LocalEngineUnavailableError(QwenOCRError):
    """The local provider cannot run here: the ``local`` extra (rapidocr, onnxruntime) or its models are missing."""

    default_code = "MissingDependency"


class LocalEngine:
    """Offline OCR with RapidOCR (PP-OCRv6 ONNX models bundled in the ``rapidocr`` wheel): no key, no network.

    Results look like the service's: ``text`` is the page in reading order, one line per line, and ``lines`` holds
    every text line with its box (``location``, ``rotate_rect``) and confidence, in pixels of the image as you passed
    it in, for every task (they cost nothing extra). It reads Chinese and English best (the models' training
    languages); other Latin-script text works with lower accuracy. Tables, key-value fields and LaTeX need the
    Qwen-OCR model: those tasks raise :class:`~qwen_ocr.errors.UnsupportedTaskError`.

    Pages are read with the orientation classifier off (it garbles upright pages); a page whose longest lines read
    better upside down is read again turned by 180 degrees, and the reading with the larger sum of
    ``score x length`` is kept. Pages turned by 90 degrees are not detected: turn them first (photos with an EXIF
    orientation are turned for you).

    One engine can be shared by threads: inference is serialised by a lock (onnxruntime already uses every core).
    The models load on the first call (about a second); importing ``qwen_ocr`` never imports ``rapidocr``.

    Args:
        det_limit: longer side, in pixels, of the page as the text detector sees it; larger finds smaller text but
            is slower. Recognition always works on the lines cut from the full-resolution page.
        threads: onnxruntime threads; ``None`` uses every core.
        check_orientation: detect upside-down pages (costs a few line recognitions per page).

    Example::

        from qwen_ocr.local import get_engine
        result = get_engine().ocr("scan.png", task="advanced_recognition")
        print(result.text)
        result.lines[0].location      # (x1, y1, x2, y2, x3, y3, x4, y4), clockwise from top-left
        result.lines[0].rotate_rect   # (cx, cy, width, height, angle): upright lines have angle 90
    """

    provider = "local"

    def __init__(
        self,
        *,
        det_limit: int = DEFAULT_DET_LIMIT,
        threads: int | None = None,
        check_orientation: bool = True,
    ) -> None:
        if det_limit < 32:
            raise ValueError(f"det_limit must be at least 32 pixels, got {det_limit}")
        self.det_limit = det_limit
        self.threads = threads
        self.check_orientation = check_orientation
        self._backend: RapidBackend | None = None
        self._init_lock = threading.Lock()
        self._version: str | None = None

    def __repr__(self) -> str:
        return f"LocalEngine(det_limit={self.det_limit}, threads={self.threads})"

    @property
    def model(self) -> str:
        """``"rapidocr-<version>"``, the name results carry in ``OCRResult.model``."""
        if self._version is None:
            self._version = _installed_version()
        return f"rapidocr-{self._version}"

    def load(self) -> LocalEngine:
        """Load the models now rather than at the first :meth:`ocr` call; returns the engine.

        Raises:
            LocalEngineUnavailableError: the ``local`` extra is not installed (``pip install 'qwen-ocr[local]'``).
        """
        self._get_backend()
        return self

    def ocr(
        self,
        image: ImageInput,
        *,
        task: Task | str | None = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        **ignored: Any,
    ) -> OCRResult:
        """Read one image offline.

        Args:
            image: a path, a ``data:`` URL, bytes, or a ``PIL.Image`` (URLs to fetch are refused: no network).
            task: ``None``, ``"text_recognition"``, ``"multi_lan"`` or ``"advanced_recognition"``.
            min_pixels: accepted for compatibility with the service's options; the engine never upscales.
            max_pixels: if the image has more pixels than this, it is read downscaled (faster); boxes are still
                given in pixels of the image as passed in.
            **ignored: the service's other options (``max_tokens``, ``temperature``, a custom ``prompt``, ...) have no
                meaning here and are ignored, except ``schema``: fields need ``provider="dashscope"``.

        Returns:
            an :class:`~qwen_ocr.results.OCRResult` with ``provider="local"``, zero ``usage``,
            ``finish_reason="stop"``, ``image_size`` and ``lines`` set; ``metadata`` holds ``orientation`` (0 or
            180) and ``seconds``.

        Raises:
            UnsupportedTaskError: tables, fields (also ``schema=``), LaTeX and formulas need ``provider="dashscope"``.
            InvalidImageError: the image cannot be used.
            LocalEngineUnavailableError: the ``local`` extra is not installed.

        Example::

            result = LocalEngine().ocr("scan.png")
            result.text, result.provider, result.model     # ('...', 'local', 'rapidocr-3.10.0')
        """
        del min_pixels
        started = time.perf_counter()
        the_task = resolve_task(task, ignored.get("schema"))  # a schema asks for fields
        if the_task in UNSUPPORTED_TASKS:
            raise UnsupportedTaskError(_unsupported_message(the_task))
        picture = load_image(image)
        width, height = picture.size
        work, sx, sy = _downscale(picture, max_pixels)
        backend = self._get_backend()
        from ._rapid import to_pixels

        pixels = to_pixels(work)
        raw, orientation = self._read_upright(backend, pixels)
        frame_height, frame_width = pixels.shape[:2]
        lines: list[TextLine] = []
        # Reading order is decided in the frame where the text stands upright, then corners go back to the image.
        for i in geometry.reading_order([line.points for line in raw]):
            points: Sequence[tuple[float, float]] = raw[i].points
            if orientation == 180:
                points = geometry.rotate_points_180(points, frame_width, frame_height)
            points = geometry.scale_points(points, sx, sy)
            lines.append(
                TextLine(
                    text=raw[i].text,
                    location=geometry.location_from_points(points),
                    rotate_rect=geometry.rotate_rect_from_points(points),
                    score=round(raw[i].score, 4),
                )
            )
        text = "\n".join(line.text for line in lines)
        return OCRResult(
            text=text,
            raw_text=text,
            task=the_task,
            model=self.model,
            finish_reason="stop",
            usage=Usage(),
            lines=lines,
            image_size=(width, height),
            provider="local",
            metadata={
                "orientation": orientation,
                "det_limit": self.det_limit,
                "seconds": round(time.perf_counter() - started, 3),
            },
        )

    # ----------------------------------------------------------------------------------------------------------

    def _get_backend(self) -> RapidBackend:
        backend = self._backend
        if backend is not None:
            return backend
        with self._init_lock:
            if self._backend is None:
                self._backend = _make_backend(self.det_limit, self.threads)
            return self._backend

    def _read_upright(self, backend: RapidBackend, pixels: Pixels) -> tuple[list[RawLine], int]:
        """Read the page; returns its lines in the frame where they stand upright, and that frame's turn (0/180).

        A page read with confidence (length-weighted mean score >= 0.85; upright pages score about 0.99, upside-down
        ones about 0.6-0.7) is taken as it is. Otherwise the start of its longest lines is read both ways up, and
        if the turned reading is better the whole page is read again turned by 180 degrees; of the two full
        readings the one with the larger sum of score x length wins.
        """
        upright = backend.read(pixels)
        if not self.check_orientation or not upright or _mean_score(upright) >= _CONFIDENT:
            return upright, 0
        longest = sorted(upright, key=lambda line: _length(line.points), reverse=True)[:_ORIENTATION_SAMPLE]
        as_is, turned = backend.orientation_scores(pixels, [line.points for line in longest])
        if turned <= as_is:
            return upright, 0
        flipped = backend.read(backend.rotate_180(pixels))
        if _weight(flipped) > _weight(upright):
            return flipped, 180
        return upright, 0


def _weight(lines: Sequence[RawLine]) -> float:
    """The sum of score x length: how much confidently read text a reading holds."""
    return sum(line.score * len(line.text) for line in lines)


def _mean_score(lines: Sequence[RawLine]) -> float:
    characters = sum(len(line.text) for line in lines)
    return _weight(lines) / characters if characters else 0.0


def _length(points: Sequence[tuple[float, float]]) -> float:
    return math.dist(points[0], points[1])


def _downscale(picture: Image.Image, max_pixels: int | None) -> tuple[Image.Image, float, float]:
    width, height = picture.size
    if not max_pixels or width * height <= max_pixels:
        return picture, 1.0, 1.0
    factor = math.sqrt(max_pixels / (width * height))
    size = (max(1, int(width * factor)), max(1, int(height * factor)))
    work = picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return work, width / size[0], height / size[1]


def _unsupported_message(task: Task) -> str:
    what = {
        Task.KEY_INFORMATION_EXTRACTION: "extracting key-value fields",
        Task.TABLE_PARSING: "parsing tables",
        Task.DOCUMENT_PARSING: "transcribing a page to LaTeX",
        Task.FORMULA_RECOGNITION: "recognising formulas",
    }[task]
    return (
        f"task {task.value!r} ({what}) needs the Qwen-OCR model; the local provider reads plain text and text "
        "lines only (tasks None, 'text_recognition', 'multi_lan', 'advanced_recognition'). Use "
        "provider='dashscope' with a DASHSCOPE_API_KEY for this task."
    )


_MISSING = "the local provider needs the 'local' extra (rapidocr and onnxruntime): pip install 'qwen-ocr[local]'"


def _make_backend(det_limit: int, threads: int | None) -> RapidBackend:
    try:
        from ._rapid import RapidBackend
    except ImportError as exc:
        raise LocalEngineUnavailableError(f"{_MISSING} ({exc}).") from exc
    try:
        return RapidBackend(det_limit=det_limit, threads=threads)
    except FileNotFoundError as exc:
        raise LocalEngineUnavailableError(f"{exc}. {_MISSING}.") from exc


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rapidocr")
    except PackageNotFoundError:
        return "unavailable"

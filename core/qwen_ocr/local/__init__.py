"""The offline ``local`` provider: OCR on this machine with RapidOCR, no API key, no network.

Install the extra with ``pip install 'qwen-ocr[local]'`` (``rapidocr==3.10.0`` and ``onnxruntime``; the models are
inside the wheel, nothing is downloaded). It reads Chinese and English best; other Latin-script text works with
lower accuracy. It does plain text (``task=None``, ``"text_recognition"``, ``"multi_lan"``) and text lines with
boxes (``"advanced_recognition"``); tables, key-value fields, LaTeX and formulas need ``provider="dashscope"``.
On two cores it takes about 0.6-0.8 s for a page scanned at 150 dpi and 2.6 s for a dense two-column
Letter page at 300 dpi, twice that for a page that is upside down (``benchmarks/LOCAL.md``).

Example::

    from qwen_ocr.local import get_engine, is_available

    if is_available():
        result = get_engine().ocr("scan.png", task="advanced_recognition")
        print(result.text)
        for line in result.lines[:3]:
            print(line.text, line.location, line.rotate_rect, line.score)

Importing this package does not import ``rapidocr``; the models load on the first reading.
"""

from __future__ import annotations

import threading
from importlib.util import find_spec
from pathlib import Path

from ._engine import DEFAULT_DET_LIMIT as DEFAULT_DET_LIMIT
from ._engine import SUPPORTED_TASKS as SUPPORTED_TASKS
from ._engine import UNSUPPORTED_TASKS as UNSUPPORTED_TASKS
from ._engine import LocalEngine as LocalEngine
from ._engine import LocalEngineUnavailableError as LocalEngineUnavailableError
from ._engine import __all__ as _engine_names
from ._types import DET_MODEL, REC_MODEL
from .metrics import cer

__all__ = ["cer", "get_engine", "is_available"]
__all__ += _engine_names

_engine: LocalEngine | None = None
_engine_lock = threading.Lock()


def get_engine() -> LocalEngine:
    """The process-wide :class:`LocalEngine` with default settings (created once; its models load on first use).

    >>> get_engine() is get_engine()
    True
    """
    global _engine  # a lazily created singleton
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = LocalEngine()
    return _engine


def is_available() -> bool:
    """Whether the local provider can run: ``rapidocr`` and ``onnxruntime`` are installed with their models.

    Nothing is imported or loaded to answer.

    >>> isinstance(is_available(), bool)
    True
    """
    try:
        rapid = find_spec("rapidocr")
        ort = find_spec("onnxruntime")
    except (ImportError, ValueError):
        return False
    if rapid is None or ort is None or not rapid.submodule_search_locations:
        return False
    models = Path(next(iter(rapid.submodule_search_locations))) / "models"
    return (models / DET_MODEL).is_file() and (models / REC_MODEL).is_file()

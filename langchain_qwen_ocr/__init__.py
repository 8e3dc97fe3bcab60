"""LangChain integration for Qwen-OCR: images in chats become text, scans and PDFs become Documents.

Example::

    from langchain_qwen_ocr import ImageReader, QwenOCRLoader, QwenOCRTool

    chain = ImageReader() | llm                                  # any text model can now read the images
    docs = QwenOCRLoader("scans/*.pdf").lazy_load()              # one Document per page, with its page number
    tool = QwenOCRTool()                                          # an agent reads an image on demand

Subpackages, one per component kind: :mod:`.image_reader`, :mod:`.agents`, :mod:`.document_loaders`, :mod:`.tools`.
``ImageReaderMiddleware`` needs ``langchain`` 1.x.

Each name is imported on first use (PEP 562): ``import langchain_qwen_ocr`` loads nothing else, and the loader
alone does not load what only a chain needs (LangChain's runnables, tracers and LangSmith, about 200 ms).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_ocr._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "ImageReader": ".image_reader",
    "ImageReaderMiddleware": ".agents.middleware",
    "ImageReadingChatModel": ".agents",
    "image_reader_hook": ".agents",
    "with_image_reader": ".agents",
    "QwenOCRLoader": ".document_loaders",
    "QwenOCRParser": ".document_loaders",
    "QwenOCRTool": ".tools",
}
"""Where each public name lives; add a new export here (and under ``TYPE_CHECKING`` and in ``__all__``)."""

if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from .agents import ImageReadingChatModel, image_reader_hook, with_image_reader
    from .agents.middleware import ImageReaderMiddleware
    from .document_loaders import QwenOCRLoader, QwenOCRParser
    from .image_reader import ImageReader
    from .tools import QwenOCRTool

__all__ = [
    "ImageReader",
    "ImageReaderMiddleware",
    "ImageReadingChatModel",
    "QwenOCRLoader",
    "QwenOCRParser",
    "QwenOCRTool",
    "image_reader_hook",
    "with_image_reader",
]


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())

"""LangChain integration for Qwen-OCR: images in chats become text, scans and PDFs become Documents.

Example::

    from langchain_qwen_ocr import ImageReader, ImageReaderMiddleware, QwenOCRLoader, QwenOCRTool, with_image_reader

    chain = ImageReader() | llm                                  # any text model can now read the images
    agent = create_agent(llm, tools, middleware=[ImageReaderMiddleware()])   # ... inside a LangChain v1 agent
    model = with_image_reader(llm)                               # ... as a chat model: bind_tools and all
    docs = QwenOCRLoader("scans/*.pdf").lazy_load()              # one Document per page, with its page number
    tool = QwenOCRTool()                                          # an agent reads an image on demand

Subpackages, one per component kind: :mod:`.image_reader`, :mod:`.agents`, :mod:`.document_loaders`, :mod:`.tools`.
``ImageReaderMiddleware`` needs ``langchain`` 1.x and is imported only when used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .agents import ImageReadingChatModel, image_reader_hook, with_image_reader
from .document_loaders import QwenOCRLoader, QwenOCRParser
from .image_reader import ImageReader
from .tools import QwenOCRTool

if TYPE_CHECKING:
    from .agents.middleware import ImageReaderMiddleware

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


def __getattr__(name: str) -> Any:
    if name == "ImageReaderMiddleware":  # langchain (and LangGraph under it) only when the middleware is used
        from .agents.middleware import ImageReaderMiddleware

        return ImageReaderMiddleware
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
